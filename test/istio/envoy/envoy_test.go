package envoy

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/proto"

	"meshfed.test/istio/oracle"
)

// requireEnvoy fails (never skips) when Envoy is missing: CI installs it.
func requireEnvoy(t *testing.T) {
	t.Helper()
	if _, err := Binary(); err != nil {
		t.Fatalf("these tests run a real Envoy: %v", err)
	}
	v, err := Version()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("envoy %s", v)
}

func TestIstioConfigOfEveryProxyPassesEnvoyValidate(t *testing.T) {
	requireEnvoy(t)
	sc := newScenario(t, fedPrincipal, HTTP)
	tcp := newScenario(t, fedPrincipal, TCP)
	for _, p := range []*oracle.ProxyXDS{sc.sleep, sc.egress, sc.provider, tcp.sleep, tcp.egress, tcp.provider} {
		r, err := Build(p, Options{})
		if err != nil {
			t.Fatalf("%s: %v", p.Hop, err)
		}
		if len(r.MissingSecrets) > 0 {
			t.Fatalf("%s: missing secrets %v", p.Hop, r.MissingSecrets)
		}
		start := time.Now()
		if err := Validate(r.Bootstrap); err != nil {
			t.Fatalf("%s: %v", p.Hop, err)
		}
		t.Logf("%s: envoy --mode validate ok in %s (%d listeners, %d clusters, %d extensions removed)",
			p.Hop, time.Since(start).Round(time.Millisecond), len(r.Bootstrap.StaticResources.Listeners),
			len(r.Bootstrap.StaticResources.Clusters), len(r.Dropped))
		for _, d := range r.Dropped {
			if _, known := istioOnly[d.Type]; !known {
				t.Errorf("%s: removed %s (%s), which is not a known Istio-only extension", p.Hop, d.Name, d.Type)
			}
		}
	}
	// Removing Istio-only extensions keeps what decides traffic: the provider gateway's RBAC filter,
	// its TLS context and the inline route to the subset.
	r, err := Build(sc.provider, Options{})
	if err != nil {
		t.Fatal(err)
	}
	pretty, err := JSON(r.Bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	var j bytes.Buffer
	if err := json.Compact(&j, pretty); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"name":"envoy.filters.http.rbac"`, `"exact":"spiffe://` + fedPrincipal + `"`, `"require_client_certificate":true`,
		`"tls_certificate_sds_secret_configs":[{"name":"kubernetes://mf-export-bookinfo-myreviews"}]`,
		`"cluster":"outbound|9080|version-v2|myreviews.bookinfo.svc.cluster.local"`,
	} {
		if !strings.Contains(j.String(), want) {
			t.Errorf("provider gateway bootstrap lacks %s", want)
		}
	}
}

func TestEnvoyRejectsTwoFilterChainsWithTheSameMatch(t *testing.T) {
	requireEnvoy(t)
	sc := newScenario(t, fedPrincipal, HTTP)
	p := *sc.provider
	p.Listeners = nil
	for _, l := range sc.provider.Listeners {
		l = proto.Clone(l).(*listener.Listener)
		if l.Name == "0.0.0.0_15443" {
			// a second server for the same SNI on the same port, as two Gateways claiming one host would give
			l.FilterChains = append(l.FilterChains, proto.Clone(l.FilterChains[0]).(*listener.FilterChain))
		}
		p.Listeners = append(p.Listeners, l)
	}
	r, err := Build(&p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = Validate(r.Bootstrap)
	var rej *RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("envoy accepted a listener with two identical filter chain matches (err=%v)", err)
	}
	if !strings.Contains(rej.Output, "has the same matching rules defined as") {
		t.Fatalf("unexpected rejection: %s", rej.Output)
	}
	if strings.Contains(rej.Output, "PRIVATE KEY") {
		t.Fatalf("envoy's message carries key material")
	}
	t.Logf("envoy: %s", rej.Output)
}

func TestMissingSecretIsReported(t *testing.T) {
	sc := newScenario(t, fedPrincipal, HTTP)
	delete(sc.provider.Secrets, "kubernetes://mf-export-bookinfo-myreviews")
	r, err := Build(sc.provider, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.MissingSecrets) != 1 || r.MissingSecrets[0] != "kubernetes://mf-export-bookinfo-myreviews" {
		t.Fatalf("missing secrets: %v", r.MissingSecrets)
	}
}

func TestValidateVerdictsAreCachedByConfig(t *testing.T) {
	requireEnvoy(t)
	sc := newScenario(t, fedPrincipal, HTTP)
	j, err := NewValidateJudge()
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Judge(sc.provider); err != nil {
		t.Fatal(err)
	}
	// The same config with a freshly minted workload certificate: Envoy's verdict is known.
	chain, key, err := sc.providerCA.Workload(sc.provider.Identity)
	if err != nil {
		t.Fatal(err)
	}
	again := *sc.provider
	again.Secrets = map[string]*oracle.SecretMaterial{}
	for k, v := range sc.provider.Secrets {
		again.Secrets[k] = v
	}
	again.Secrets["default"] = &oracle.SecretMaterial{CertChainPEM: chain, PrivateKeyPEM: key, Source: "workload certificate minted by the oracle from the mesh CA"}
	sc.provider.Secrets["default"].Source = again.Secrets["default"].Source
	if err := j.Judge(sc.provider); err != nil {
		t.Fatal(err)
	}
	n := len(j.Timings())
	if err := j.Judge(&again); err != nil {
		t.Fatal(err)
	}
	if len(j.Timings()) != n {
		t.Fatalf("envoy ran again on a config it already judged")
	}
	// A different config is judged by Envoy, and its rejection is kept with Envoy's message.
	broken := again
	broken.Listeners = nil
	for _, l := range again.Listeners {
		l = proto.Clone(l).(*listener.Listener)
		l.FilterChains = append(l.FilterChains, proto.Clone(l.FilterChains[0]).(*listener.FilterChain))
		broken.Listeners = append(broken.Listeners, l)
	}
	for i := 0; i < 2; i++ {
		err := j.Judge(&broken)
		var rej *RejectedError
		if !errors.As(err, &rej) || !strings.Contains(rej.Output, "has the same matching rules") {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	if len(j.Timings()) != n+1 {
		t.Fatalf("%d envoy runs, want %d", len(j.Timings()), n+1)
	}
}
