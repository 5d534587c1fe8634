package envoy

import (
	"errors"
	"strings"
	"testing"

	"istio.io/istio/pilot/test/xds"

	"meshfed.test/istio/oracle"
)

type oracleSecret = oracle.SecretMaterial

// The standard east-west gateway of a multi-network mesh: AUTO_PASSTHROUGH for *.local on 15443
// (samples/multicluster/expose-services.yaml). Its listener uses sni_cluster and an SNI-routed
// tcp_proxy; upstream Envoy must accept it as Istio builds it.
const eastWestConfig = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: cross-network-gateway, namespace: istio-meshfed}
spec:
  selector: {istio: meshfed-ingress}
  servers:
  - port: {number: 15443, name: tls, protocol: TLS}
    tls: {mode: AUTO_PASSTHROUGH}
    hosts: ["*.local"]
`

func TestEastWestAutoPassthroughGatewayPassesEnvoyValidate(t *testing.T) {
	requireEnvoy(t)
	s := xds.NewFakeDiscoveryServer(t, xds.FakeOptions{
		MeshConfig:             meshConfig(providerTD),
		ConfigString:           eastWestConfig,
		KubernetesObjectString: render(t, providerKube, map[string]any{"PortName": "http", "ExportSecret": ""}),
	})
	p := proxyXDS(s, gatewayProxy("istio-meshfed", "meshfed-ingress-6c4b", ingressIP, "meshfed-ingress", "meshfed-ingress"),
		"provider-gateway", "cluster2", "istio-meshfed", "meshfed-ingress-6c4b", "spiffe://"+providerTD+"/ns/istio-meshfed/sa/meshfed-ingress", providerTD, true)
	ca, err := NewCA("cluster2 mesh CA")
	if err != nil {
		t.Fatal(err)
	}
	chain, key, err := ca.Workload(p.Identity)
	if err != nil {
		t.Fatal(err)
	}
	p.Secrets["default"] = &oracleSecret{CertChainPEM: chain, PrivateKeyPEM: key}
	p.Secrets["ROOTCA"] = &oracleSecret{CACertPEM: ca.RootPEM}
	r, err := Build(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Bootstrap.StaticResources.Listeners) == 0 {
		t.Fatal("Istio built no listener for the AUTO_PASSTHROUGH server")
	}
	if err := Validate(r.Bootstrap); err != nil {
		t.Fatal(err)
	}
	j, _ := JSON(r.Bootstrap)
	t.Logf("%d listeners, %d clusters, removed %v; %d bytes", len(r.Bootstrap.StaticResources.Listeners), len(r.Bootstrap.StaticResources.Clusters), r.Dropped, len(j))
}

// kubectl meshfed's shared-root export as it places it on an existing east-west gateway
// (test/fixtures/shared-root-grpc-existing-gateway): a second AUTO_PASSTHROUGH server on the same port for
// the exported host, beside the standard *.local one.
const sharedRootExportBesideEastWest = eastWestConfig + `---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: meshfed-eastwest, namespace: istio-meshfed}
spec:
  selector: {istio: meshfed-ingress}
  servers:
  - port: {number: 15443, name: tls-passthrough, protocol: TLS}
    tls: {mode: AUTO_PASSTHROUGH}
    hosts: [myreviews.bookinfo.svc.cluster.local]
`

// Istio builds one filter chain per service for each AUTO_PASSTHROUGH server, so the exported host's
// SNI gets two identical filter chain matches, and Envoy rejects the whole 15443 listener. A running
// gateway NACKs the update and keeps its previous listener: the export is never served, and every later
// change to that listener (other exports, the mesh's own services) is refused with it.
func TestSharedRootExportBesideEastWestServerIsRejectedByEnvoy(t *testing.T) {
	requireEnvoy(t)
	s := xds.NewFakeDiscoveryServer(t, xds.FakeOptions{
		MeshConfig:             meshConfig(providerTD),
		ConfigString:           sharedRootExportBesideEastWest,
		KubernetesObjectString: render(t, providerKube, map[string]any{"PortName": "http", "ExportSecret": ""}),
	})
	p := proxyXDS(s, gatewayProxy("istio-meshfed", "meshfed-ingress-6c4b", ingressIP, "meshfed-ingress", "meshfed-ingress"),
		"provider-gateway", "cluster2", "istio-meshfed", "meshfed-ingress-6c4b", "spiffe://"+providerTD+"/ns/istio-meshfed/sa/meshfed-ingress", providerTD, true)
	ca, err := NewCA("cluster2 mesh CA")
	if err != nil {
		t.Fatal(err)
	}
	chain, key, err := ca.Workload(p.Identity)
	if err != nil {
		t.Fatal(err)
	}
	p.Secrets["default"] = &oracleSecret{CertChainPEM: chain, PrivateKeyPEM: key}
	p.Secrets["ROOTCA"] = &oracleSecret{CACertPEM: ca.RootPEM}
	r, err := Build(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range r.Bootstrap.StaticResources.Listeners {
		for _, fc := range l.FilterChains {
			t.Logf("%s: %v", l.Name, fc.GetFilterChainMatch())
		}
	}
	err = Validate(r.Bootstrap)
	var rej *RejectedError
	if !errors.As(err, &rej) || !strings.Contains(rej.Output, "has the same matching rules") ||
		!strings.Contains(rej.Output, `"outbound_.9080_._.myreviews.bookinfo.svc.cluster.local"`) {
		t.Fatalf("want Envoy to reject the duplicate filter chain of the exported host, got %v", err)
	}
	t.Logf("envoy: %s", rej.Output)
}
