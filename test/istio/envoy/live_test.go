package envoy

import (
	"net"
	"strings"
	"testing"
	"time"
)

// boundary runs the scenario's two gateways as real Envoys on loopback with a backend behind the provider.
type boundary struct {
	backend          *Backend
	provider, egress *Process
	sidecarClient    func(ca *CA, identity string) *Client
	authority        string
}

func startBoundary(t *testing.T, sc *scenario, proto Protocol) *boundary {
	t.Helper()
	requireEnvoy(t)
	var err error
	b := &boundary{}
	b.backend, err = StartBackend("myreviews-v2", "127.0.0.4", sc.providerCA, "spiffe://"+providerTD+"/ns/bookinfo/sa/myreviews", proto)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.backend.Close)

	start := time.Now()
	b.provider, err = StartProxy("provider-gateway", sc.provider, LiveOptions{IP: "127.0.0.3", Ports: []uint32{15443},
		Endpoints: map[string]string{net.JoinHostPort(reviewsIP, "9080"): b.backend.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.provider.Stop)
	t.Logf("provider gateway ready in %s on %s", time.Since(start).Round(time.Millisecond), b.provider.Addr(15443))

	start = time.Now()
	b.egress, err = StartProxy("egress-gateway", sc.egress, LiveOptions{IP: "127.0.0.2", Ports: []uint32{15443},
		Endpoints: map[string]string{net.JoinHostPort(providerLB, "15443"): b.provider.Addr(15443)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.egress.Stop)
	t.Logf("egress gateway ready in %s on %s", time.Since(start).Round(time.Millisecond), b.egress.Addr(15443))

	// The client sidecar's cluster to the egress gateway gives SNI, ALPN and the SANs it verifies.
	name := "outbound|15443|mf-bind-cluster2-bookinfo-myreviews|meshfed-egress.istio-meshfed.svc.cluster.local"
	var sni string
	var alpn, sans []string
	for _, c := range sc.sleep.Clusters {
		if c.Name == name {
			if sni, alpn, sans, err = SidecarTLS(c); err != nil {
				t.Fatal(err)
			}
		}
	}
	if sni != exportHost {
		t.Fatalf("client sidecar cluster %s: SNI %q, want %q", name, sni, exportHost)
	}
	b.sidecarClient = func(ca *CA, identity string) *Client {
		chain, key, err := ca.Workload(identity)
		if err != nil {
			t.Fatal(err)
		}
		return &Client{CertChainPEM: chain, KeyPEM: key, RootPEM: sc.consumerCA.RootPEM, SNI: sni, ALPN: alpn, SANs: sans}
	}
	b.authority = exportHost // the import VirtualService's authority rewrite
	return b
}

const sleepID = "spiffe://" + consumerTD + "/ns/default/sa/sleep"

func TestLiveBoundaryHTTPAdmittedConsumerReachesTheBackend(t *testing.T) {
	sc := newScenario(t, fedPrincipal, HTTP)
	b := startBoundary(t, sc, HTTP)
	resp, err := b.sidecarClient(sc.consumerCA, sleepID).Get(b.egress.Addr(15443), b.authority, "/reviews/0")
	if err != nil {
		t.Fatalf("request through the gateways: %v\negress: %s\nprovider: %s", err, b.egress.Output(), b.provider.Output())
	}
	if resp.Status != 200 || !strings.Contains(resp.Body, "backend myreviews-v2 reached: GET "+exportHost+"/reviews/0") {
		t.Fatalf("got %d %q, want 200 from the backend", resp.Status, resp.Body)
	}
	// The backend was reached over Istio mTLS by the provider gateway's own workload identity.
	peers := b.backend.Peers()
	if len(peers) == 0 || peers[0] != sc.provider.Identity {
		t.Fatalf("backend peers %v, want %s", peers, sc.provider.Identity)
	}
}

func TestLiveBoundaryHTTPConsumerNotAdmittedGets403(t *testing.T) {
	// The provider admits another consumer only.
	sc := newScenario(t, "cluster9.meshfed.internal/ns/istio-meshfed/sa/meshfed-egress", HTTP)
	b := startBoundary(t, sc, HTTP)
	resp, err := b.sidecarClient(sc.consumerCA, sleepID).Get(b.egress.Addr(15443), b.authority, "/reviews/0")
	if err != nil {
		t.Fatalf("request through the gateways: %v", err)
	}
	if resp.Status != 403 || !strings.Contains(resp.Body, "RBAC: access denied") {
		t.Fatalf("got %d %q, want 403 RBAC: access denied from the provider gateway", resp.Status, resp.Body)
	}
	if n := len(b.backend.Peers()); n != 0 {
		t.Fatalf("the backend was reached %d times", n)
	}
	if n := b.provider.Counter(".rbac.denied"); n != 1 {
		t.Errorf("provider gateway counts %d RBAC denials, want 1:\n%s", n, b.provider.Stats("rbac"))
	}
}

func TestLiveCallerFromAnotherMeshIsRefusedAtTheEgressHandshake(t *testing.T) {
	sc := newScenario(t, fedPrincipal, HTTP)
	b := startBoundary(t, sc, HTTP)
	other, err := NewCA("some other mesh CA")
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.sidecarClient(other, sleepID).Get(b.egress.Addr(15443), b.authority, "/reviews/0")
	if err == nil {
		t.Fatal("the egress gateway accepted a client certificate its mesh CA did not sign")
	}
	t.Logf("refused: %v", err)
}

func TestLiveBoundaryTCPAdmittedConsumerGetsTheEcho(t *testing.T) {
	sc := newScenario(t, fedPrincipal, TCP)
	b := startBoundary(t, sc, TCP)
	got, err := b.sidecarClient(sc.consumerCA, sleepID).Line(b.egress.Addr(15443), "meshfed probe")
	if err != nil {
		t.Fatalf("TCP through the gateways: %v\negress: %s\nprovider: %s", err, b.egress.Output(), b.provider.Output())
	}
	if got != "backend myreviews-v2 echo: meshfed probe" {
		t.Fatalf("got %q, want the backend's echo", got)
	}
}

func TestLiveBoundaryTCPConsumerNotAdmittedIsClosed(t *testing.T) {
	sc := newScenario(t, "cluster9.meshfed.internal/ns/istio-meshfed/sa/meshfed-egress", TCP)
	b := startBoundary(t, sc, TCP)
	got, err := b.sidecarClient(sc.consumerCA, sleepID).Line(b.egress.Addr(15443), "meshfed probe")
	if err == nil && got != "" {
		t.Fatalf("got %q through the gateways, want the connection closed by the provider's RBAC", got)
	}
	if lines := b.backend.Lines(); len(lines) != 0 {
		t.Fatalf("the backend received %q", lines)
	}
	if n := b.provider.Counter(".rbac.denied"); n != 1 {
		t.Errorf("provider gateway counts %d RBAC denials, want 1:\n%s", n, b.provider.Stats("rbac"))
	}
}
