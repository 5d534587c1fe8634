package oracle

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testPKI is a federation CA with a server certificate for the provider gateway and a client certificate
// for the consumer's egress gateway, generated per test run (no key material is checked in).
type testPKI struct {
	caPEM, serverCert, serverKey, clientCert, clientKey []byte
}

func newTestPKI(t *testing.T, serverDNS, clientURI string) *testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "federation CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, dns string, uri string, usage x509.ExtKeyUsage) ([]byte, []byte) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: dns + uri},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		if dns != "" {
			tmpl.DNSNames = []string{dns}
		}
		if uri != "" {
			u, _ := url.Parse(uri)
			tmpl.URIs = []*url.URL{u}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, k.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		kd, _ := x509.MarshalPKCS8PrivateKey(k)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
	}
	p := &testPKI{caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})}
	p.serverCert, p.serverKey = leaf(2, serverDNS, "", x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = leaf(3, "", clientURI, x509.ExtKeyUsageClientAuth)
	return p
}

func secretYAML(ns, name string, data map[string][]byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Secret\nmetadata: { name: %s, namespace: %s }\ntype: Opaque\ndata:\n", name, ns)
	for _, k := range []string{"tls.crt", "tls.key", "ca.crt"} {
		if v, ok := data[k]; ok {
			fmt.Fprintf(&b, "  %s: %s\n", k, base64.StdEncoding.EncodeToString(v))
		}
	}
	return b.String()
}

// boundaryDir writes testdata/boundary with the federation Secrets into a temporary directory, after the
// edits (old -> new, per cluster file) a test makes.
func boundaryDir(t *testing.T, edits map[string][][2]string, skipSecrets ...string) string {
	t.Helper()
	return boundaryDirWithClient(t, "spiffe://cluster1/ns/istio-meshfed/sa/istio-federation-egressgateway", edits, skipSecrets...)
}

func boundaryDirWithClient(t *testing.T, clientURI string, edits map[string][][2]string, skipSecrets ...string) string {
	t.Helper()
	pki := newTestPKI(t, "reviews.bookinfo.svc.cluster2.global", clientURI)
	dir := t.TempDir()
	if d := os.Getenv("ISTIO_ORACLE_WRITE_DIR"); d != "" {
		dir = d
	}
	skip := map[string]bool{}
	for _, s := range skipSecrets {
		skip[s] = true
	}
	secrets := map[string]string{
		"cluster1": secretYAML("istio-meshfed", "cluster2-federation-client", map[string][]byte{"tls.crt": pki.clientCert, "tls.key": pki.clientKey, "ca.crt": pki.caPEM}),
		"cluster2": secretYAML("istio-meshfed", "federation-server", map[string][]byte{"tls.crt": pki.serverCert, "tls.key": pki.serverKey, "ca.crt": pki.caPEM}),
	}
	for _, c := range []string{"cluster1", "cluster2"} {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "boundary", c+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for _, e := range edits[c] {
			if !strings.Contains(s, e[0]) {
				t.Fatalf("edit of %s: %q not found", c, e[0])
			}
			s = strings.ReplaceAll(s, e[0], e[1])
		}
		if !skip[c] {
			s += "\n" + secrets[c]
		}
		if err := os.WriteFile(filepath.Join(dir, c+".yaml"), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func trace(t *testing.T, dir, from, u string, opts Options) *Result {
	t.Helper()
	st, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Trace(st, from, u, opts)
	if err != nil {
		t.Fatal(err)
	}
	j, _ := json.MarshalIndent(res, "", "  ")
	t.Logf("%s", j)
	return res
}

func hopNames(res *Result) []string {
	var out []string
	for _, h := range res.Hops {
		out = append(out, h.Hop+":"+h.Outcome)
	}
	return out
}

func wantPath(t *testing.T, res *Result, verdict string, hops ...string) {
	t.Helper()
	if res.Verdict != verdict {
		t.Fatalf("verdict %s (%s), want %s; hops %v", res.Verdict, res.CannotJudge, verdict, hopNames(res))
	}
	if got := strings.Join(hopNames(res), " "); got != strings.Join(hops, " ") {
		t.Fatalf("hops %s, want %s", got, strings.Join(hops, " "))
	}
}

func TestSameClusterHTTPReaches(t *testing.T) {
	dir := boundaryDir(t, nil)
	res := trace(t, dir, "cluster2/bookinfo/sleep-7dc47", "http://myreviews.bookinfo:9080/reviews/0", Options{})
	wantPath(t, res, "reached", "client-sidecar:passed", "workload:passed")
	c := res.Hops[0]
	if c.UpstreamCluster != "outbound|9080||myreviews.bookinfo.svc.cluster.local" {
		t.Errorf("client cluster %s", c.UpstreamCluster)
	}
	if c.Next.TLS != "ISTIO_MUTUAL" || c.Next.PresentedPrincipal != "spiffe://cluster2/ns/bookinfo/sa/sleep" {
		t.Errorf("client hands over %+v", c.Next)
	}
	if !strings.HasPrefix(c.Next.Address, "10.245.2.1") || c.Next.Port != 9080 {
		t.Errorf("next %s:%d, want a reviews pod on 9080", c.Next.Address, c.Next.Port)
	}
}

func TestBoundaryFederationReaches(t *testing.T) {
	dir := boundaryDir(t, nil)
	res := trace(t, dir, "cluster1/default/sleep-6f8b4", "http://reviews.default:9080/reviews/0", Options{})
	wantPath(t, res, "reached", "client-sidecar:passed", "egress-gateway:passed", "provider-gateway:passed", "workload:passed")
	eg := res.Hops[1]
	if eg.Next.Address != "198.51.100.20" || eg.Next.TLS != "MUTUAL" || eg.Next.SNI != "reviews.bookinfo.svc.cluster2.global" ||
		eg.Next.ClientCertSecret != "kubernetes://cluster2-federation-client" ||
		eg.Next.PresentedPrincipal != "spiffe://cluster1/ns/istio-meshfed/sa/istio-federation-egressgateway" {
		t.Errorf("egress gateway hands over %+v", eg.Next)
	}
	pg := res.Hops[2]
	if pg.RBAC == nil || !pg.RBAC.Allowed || pg.RBAC.Principal != "spiffe://cluster1/ns/istio-meshfed/sa/istio-federation-egressgateway" {
		t.Errorf("provider gateway RBAC %+v", pg.RBAC)
	}
	if pg.UpstreamCluster != "outbound|9080|v2|myreviews.bookinfo.svc.cluster.local" || pg.Next.Address != "10.245.2.11" {
		t.Errorf("provider gateway sends to %s %s", pg.UpstreamCluster, pg.Next.Address)
	}
	if res.Hops[3].Proxy != "bookinfo/reviews-v2-5cfcfb547f-2t6l4" {
		t.Errorf("workload %s", res.Hops[3].Proxy)
	}
	if res.ClusterIstio["cluster1"] != "1.24.2" {
		t.Errorf("cluster Istio versions %v", res.ClusterIstio)
	}
	if len(res.Proxies) != 4 {
		t.Errorf("%d proxy configs for the judge, want 4", len(res.Proxies))
	}
}

func TestAllowPolicyExcludingTheCallerRefusesAtProviderGateway(t *testing.T) {
	dir := boundaryDir(t, map[string][][2]string{"cluster2": {{
		"principals: [cluster1/ns/istio-meshfed/sa/istio-federation-egressgateway]",
		"principals: [cluster1/ns/istio-meshfed/sa/someone-else]",
	}}})
	res := trace(t, dir, "cluster1/default/sleep-6f8b4", "http://reviews.default:9080/reviews/0", Options{})
	wantPath(t, res, "refused", "client-sidecar:passed", "egress-gateway:passed", "provider-gateway:refused")
	if *res.RefusedAt != "provider-gateway" || *res.Reason != "rbac-denied" {
		t.Fatalf("refused at %s: %s", *res.RefusedAt, *res.Reason)
	}
}

func TestSNIWithoutFilterChainRefusesAtProviderGateway(t *testing.T) {
	dir := boundaryDir(t, map[string][][2]string{"cluster1": {{
		"      sni: reviews.bookinfo.svc.cluster2.global\n",
		"      sni: ratings.bookinfo.svc.cluster2.global\n",
	}}})
	res := trace(t, dir, "cluster1/default/sleep-6f8b4", "http://reviews.default:9080/reviews/0", Options{})
	wantPath(t, res, "refused", "client-sidecar:passed", "egress-gateway:passed", "provider-gateway:refused")
	if *res.Reason != "no-filter-chain" {
		t.Fatalf("reason %s", *res.Reason)
	}
}

func TestMissingClientSecretRefusesAtEgressGateway(t *testing.T) {
	dir := boundaryDir(t, nil, "cluster1")
	res := trace(t, dir, "cluster1/default/sleep-6f8b4", "http://reviews.default:9080/reviews/0", Options{})
	wantPath(t, res, "refused", "client-sidecar:passed", "egress-gateway:refused")
	if *res.Reason != "tls-missing-secret" {
		t.Fatalf("reason %s", *res.Reason)
	}
}

const principalLine = "principals: [cluster1/ns/istio-meshfed/sa/istio-federation-egressgateway]"

// Istio expands a principal whose trust domain is the local one or an alias to every one of them
// (pilot/pkg/security/trustdomain/bundle.go ReplaceTrustDomainAliases, used by
// pilot/pkg/networking/plugin/authz/authorization.go): the oracle sees it through the RBAC Istio emits.
func TestTrustDomainAliasOfTheProviderAdmitsTheConsumer(t *testing.T) {
	policy := [2]string{principalLine, "principals: [cluster2/ns/istio-meshfed/sa/istio-federation-egressgateway]"}
	withAlias := boundaryDir(t, map[string][][2]string{"cluster2": {policy, {"trustDomain: cluster2\n", "trustDomain: cluster2\n    trustDomainAliases: [cluster1]\n"}}})
	res := trace(t, withAlias, "cluster1/default/sleep-6f8b4", "http://reviews.default:9080/reviews/0", Options{})
	wantPath(t, res, "reached", "client-sidecar:passed", "egress-gateway:passed", "provider-gateway:passed", "workload:passed")

	without := boundaryDir(t, map[string][][2]string{"cluster2": {policy}})
	res = trace(t, without, "cluster1/default/sleep-6f8b4", "http://reviews.default:9080/reviews/0", Options{})
	wantPath(t, res, "refused", "client-sidecar:passed", "egress-gateway:passed", "provider-gateway:refused")
	if *res.Reason != "rbac-denied" {
		t.Fatalf("reason %s", *res.Reason)
	}
}

// A principal in trust domain "cluster.local" names the provider's own trust domain (same source): a consumer
// whose certificate really says spiffe://cluster.local/... is not admitted by it.
func TestConsumerTrustDomainClusterLocalIsRewrittenToTheProvidersOwn(t *testing.T) {
	dir := boundaryDirWithClient(t, "spiffe://cluster.local/ns/istio-meshfed/sa/istio-federation-egressgateway", map[string][][2]string{
		"cluster2": {{principalLine, "principals: [cluster.local/ns/istio-meshfed/sa/istio-federation-egressgateway]"}},
	})
	res := trace(t, dir, "cluster1/default/sleep-6f8b4", "http://reviews.default:9080/reviews/0", Options{})
	wantPath(t, res, "refused", "client-sidecar:passed", "egress-gateway:passed", "provider-gateway:refused")
	if *res.Reason != "rbac-denied" || res.Hops[2].RBAC.Principal != "spiffe://cluster.local/ns/istio-meshfed/sa/istio-federation-egressgateway" {
		t.Fatalf("reason %s, principal %s", *res.Reason, res.Hops[2].RBAC.Principal)
	}
}

func TestClientCertificateFromAnotherCAIsUntrusted(t *testing.T) {
	// The consumer's client Secret holds a certificate of a CA the provider gateway does not trust.
	dir := boundaryDir(t, nil, "cluster1")
	other := newTestPKI(t, "x", "spiffe://cluster1/ns/istio-meshfed/sa/istio-federation-egressgateway")
	good, err := os.ReadFile(filepath.Join(dir, "cluster2.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// Trust the provider's server certificate (its CA) but present a client certificate of another CA.
	caLine := ""
	for _, l := range strings.Split(string(good), "\n") {
		if strings.HasPrefix(l, "  ca.crt: ") {
			caLine = strings.TrimPrefix(l, "  ca.crt: ")
		}
	}
	ca, _ := base64.StdEncoding.DecodeString(caLine)
	f, err := os.OpenFile(filepath.Join(dir, "cluster1.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("\n" + secretYAML("istio-meshfed", "cluster2-federation-client", map[string][]byte{"tls.crt": other.clientCert, "tls.key": other.clientKey, "ca.crt": ca}))
	_ = f.Close()
	res := trace(t, dir, "cluster1/default/sleep-6f8b4", "http://reviews.default:9080/reviews/0", Options{})
	wantPath(t, res, "refused", "client-sidecar:passed", "egress-gateway:passed", "provider-gateway:refused")
	if *res.Reason != "tls-untrusted-peer" {
		t.Fatalf("reason %s", *res.Reason)
	}
}

func TestCallerWithoutSidecarGoesStraightToTheService(t *testing.T) {
	dir := boundaryDir(t, map[string][][2]string{"cluster2": {{
		"  - { name: sleep, image: curlimages/curl:8.11.1, command: [sleep, '3600'] }\n  - { name: istio-proxy, image: docker.io/istio/proxyv2:1.24.2 }",
		"  - { name: sleep, image: curlimages/curl:8.11.1, command: [sleep, '3600'] }",
	}, {"name: sleep-7dc47\n  namespace: bookinfo\n  labels: { app: sleep }", "name: sleep-7dc47\n  namespace: bookinfo\n  labels: { app: sleep, sidecar.istio.io/inject: 'false' }"}}})
	res := trace(t, dir, "cluster2/bookinfo/sleep-7dc47", "http://myreviews.bookinfo:9080/reviews/0", Options{})
	wantPath(t, res, "reached", "client-sidecar:passed", "workload:passed")
	if res.Hops[1].Listener != "virtualInbound" {
		t.Errorf("the workload's sidecar takes the plaintext call on %s", res.Hops[1].Listener)
	}
}

func TestTCPAllowPolicyAdmitsOnlyTheNamedCaller(t *testing.T) {
	dir := boundaryDir(t, nil)
	res := trace(t, dir, "cluster2/bookinfo/sleep-7dc47", "tcp://tcp-echo.bookinfo:9000", Options{})
	wantPath(t, res, "reached", "client-sidecar:passed", "workload:passed")
	w := res.Hops[1]
	if w.RBAC == nil || !w.RBAC.Allowed || len(w.RBAC.Filters) == 0 || !strings.HasPrefix(w.RBAC.Filters[0].Filter, "network:") {
		t.Fatalf("the workload's network RBAC: %+v", w.RBAC)
	}

	dir = boundaryDir(t, map[string][][2]string{"cluster2": {{"principals: [cluster2/ns/bookinfo/sa/sleep]", "principals: [cluster2/ns/bookinfo/sa/other]"}}})
	res = trace(t, dir, "cluster2/bookinfo/sleep-7dc47", "tcp://tcp-echo.bookinfo:9000", Options{})
	wantPath(t, res, "refused", "client-sidecar:passed", "workload:refused")
	if *res.Reason != "rbac-denied" {
		t.Fatalf("reason %s", *res.Reason)
	}
}
