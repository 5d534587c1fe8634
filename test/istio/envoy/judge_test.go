package envoy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"meshfed.test/istio/oracle"
)

// stateDir writes the scenario as cluster dumps (<dir>/<cluster>.yaml) the oracle loads: the same
// objects the scenario gave Istio's translator, plus each mesh's config and its CA (istio-system/cacerts).
func stateDir(t *testing.T, principal string, proto Protocol) (string, *scenario) {
	t.Helper()
	sc := newScenario(t, principal, proto)
	vars := map[string]any{"TCP": proto == TCP, "PortName": "http", "Principal": principal}
	if proto == TCP {
		vars["PortName"] = "tcp-reviews"
	}
	dir := t.TempDir()
	write := func(name, td string, ca *CA, kube, cfg string, secret string) {
		data, err := ca.CACertsData()
		if err != nil {
			t.Fatal(err)
		}
		docs := []string{
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: |\n    trustDomain: " + td + "\n",
			"apiVersion: v1\nkind: Namespace\nmetadata: {name: istio-system}\n",
			secretYAML("istio-system", "cacerts", "Opaque", data),
			render(t, kube, map[string]any{"PortName": vars["PortName"], "BindSecret": secret, "ExportSecret": secret}),
			render(t, cfg, vars),
		}
		if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(strings.Join(docs, "\n---\n")), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("cluster1", consumerTD, sc.consumerCA, consumerKube, consumerConfig,
		secretYAML("istio-meshfed", "mf-bind-cluster2-bookinfo-myreviews", "Opaque", map[string][]byte{
			"tls.crt": sc.egressFedChain, "tls.key": sc.egressFedKey, "ca.crt": sc.fedCA.RootPEM}))
	write("cluster2", providerTD, sc.providerCA, providerKube, providerConfig,
		secretYAML("istio-meshfed", "mf-export-bookinfo-myreviews", "kubernetes.io/tls", map[string][]byte{
			"tls.crt": sc.exportChain, "tls.key": sc.exportKey, "ca.crt": sc.fedCA.RootPEM}))
	return dir, sc
}

func traceLive(t *testing.T, dir, url string) (*oracle.Result, *oracle.LiveOutcome) {
	t.Helper()
	requireEnvoy(t)
	st, err := oracle.LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	judge, err := NewValidateJudge()
	if err != nil {
		t.Fatal(err)
	}
	res, err := oracle.Trace(st, "cluster1/default/sleep-7d9c", url, oracle.Options{Judge: judge})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range res.Hops {
		t.Logf("%s %s: %s %v", h.Hop, h.Outcome, h.Reason, h.Validation)
	}
	for _, tm := range judge.Timings() {
		t.Logf("envoy --mode validate %s: %s", tm.Proxy, tm.Duration)
	}
	lr := &LiveRunner{}
	lo, err := lr.Live(res)
	if err != nil {
		t.Fatalf("live run: %v", err)
	}
	for _, tm := range lr.Timings {
		t.Logf("%s: %s", tm.Proxy, tm.Duration)
	}
	t.Logf("live: reached=%v %s", lo.Reached, lo.Detail)
	return res, lo
}

func TestJudgeOnTheOracleTraceHTTP(t *testing.T) {
	dir, _ := stateDir(t, fedPrincipal, HTTP)
	res, lo := traceLive(t, dir, "http://myreviews.default:9080/reviews/0")
	if res.Verdict != "reached" {
		t.Fatalf("oracle verdict %s (%s)", res.Verdict, res.CannotJudge)
	}
	for _, h := range res.Hops {
		if len(h.Validation) == 0 || h.Validation[len(h.Validation)-1] != "envoy: ok" {
			t.Errorf("%s: validation %v, want envoy: ok", h.Hop, h.Validation)
		}
	}
	if !lo.Reached || !strings.Contains(lo.Detail, "HTTP 200 from the backend") {
		t.Fatalf("live: %+v", lo)
	}
}

func TestJudgeOnTheOracleTraceHTTPNotAdmitted(t *testing.T) {
	dir, _ := stateDir(t, "cluster9.meshfed.internal/ns/istio-meshfed/sa/meshfed-egress", HTTP)
	res, lo := traceLive(t, dir, "http://myreviews.default:9080/reviews/0")
	if res.Verdict != "refused" || *res.RefusedAt != "provider-gateway" {
		t.Fatalf("oracle verdict %s at %v", res.Verdict, res.RefusedAt)
	}
	if lo.Reached || !strings.Contains(lo.Detail, "HTTP 403") || !strings.Contains(lo.Detail, "[provider-gateway: RBAC denied 1]") {
		t.Fatalf("live: %+v", lo)
	}
}

func TestJudgeOnTheOracleTraceTCP(t *testing.T) {
	dir, _ := stateDir(t, fedPrincipal, TCP)
	res, lo := traceLive(t, dir, "tcp://myreviews.default:9080")
	if res.Verdict != "reached" {
		t.Fatalf("oracle verdict %s (%s)", res.Verdict, res.CannotJudge)
	}
	if !lo.Reached || !strings.Contains(lo.Detail, "echo: meshfed live probe") {
		t.Fatalf("live: %+v", lo)
	}
	dir, _ = stateDir(t, "cluster9.meshfed.internal/ns/istio-meshfed/sa/meshfed-egress", TCP)
	res, lo = traceLive(t, dir, "tcp://myreviews.default:9080")
	// refused by the provider gateway's RBAC, not by a failed upstream connection
	if res.Verdict != "refused" || lo.Reached || !strings.HasSuffix(lo.Detail, "[provider-gateway: RBAC denied 1]") {
		t.Fatalf("not admitted: oracle %s, live %+v", res.Verdict, lo)
	}
}
