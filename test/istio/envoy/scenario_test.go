package envoy

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"text/template"

	meshconfig "istio.io/api/mesh/v1alpha1"
	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pkg/config/mesh"

	"meshfed.test/istio/oracle"
)

// A minimal boundary federation of one HTTP service, in the shape kubectl meshfed writes it
// (test/fixtures/seed-blog-boundary-http): the consumer cluster1 sends myreviews.default through its
// federation egress gateway, which originates mTLS with a federation certificate to the provider
// cluster2's federation ingress gateway, which routes to the myreviews pods over Istio mTLS. The
// provider's AuthorizationPolicy admits the consumer's egress identity for the export's SNI.

const (
	exportHost   = "myreviews.bookinfo.cluster2.export.meshfed.internal"
	providerLB   = "203.0.113.20"
	egressIP     = "10.1.0.7"
	sleepIP      = "10.1.0.3"
	ingressIP    = "10.2.0.9"
	reviewsIP    = "10.2.0.5"
	consumerTD   = "cluster1.local"
	providerTD   = "cluster2.local"
	fedConsumer  = "spiffe://cluster1.meshfed.internal/ns/istio-meshfed/sa/meshfed-egress"
	fedPrincipal = "cluster1.meshfed.internal/ns/istio-meshfed/sa/meshfed-egress"
)

type scenario struct {
	consumerCA, providerCA, fedCA *CA
	// the federation certificates of the consumer's egress gateway (client) and the export (server)
	egressFedChain, egressFedKey, exportChain, exportKey []byte

	egress, provider, sleep *oracle.ProxyXDS
}

func secretYAML(ns, name, typ string, data map[string][]byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\ntype: %s\ndata:\n", name, ns, typ)
	for k, v := range data {
		fmt.Fprintf(&b, "  %s: %s\n", k, base64.StdEncoding.EncodeToString(v))
	}
	return b.String()
}

func render(t *testing.T, s string, v any) string {
	t.Helper()
	var b bytes.Buffer
	if err := template.Must(template.New("").Parse(s)).Execute(&b, v); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

const consumerKube = `apiVersion: v1
kind: Namespace
metadata: {name: istio-meshfed}
---
apiVersion: v1
kind: Pod
metadata:
  name: meshfed-egress-5d8f
  namespace: istio-meshfed
  labels: {istio: meshfed-egress, app: meshfed-egress}
spec: {serviceAccountName: meshfed-egress, containers: [{name: istio-proxy, image: 'docker.io/istio/proxyv2:1.24.2', args: [proxy, router], ports: [{containerPort: 15443}]}]}
status: {podIP: ` + egressIP + `, phase: Running, conditions: [{type: Ready, status: 'True'}]}
---
apiVersion: v1
kind: Service
metadata: {name: meshfed-egress, namespace: istio-meshfed}
spec:
  clusterIP: 10.96.1.7
  selector: {istio: meshfed-egress}
  ports: [{name: tls, port: 15443, targetPort: 15443, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: meshfed-egress-1
  namespace: istio-meshfed
  labels: {kubernetes.io/service-name: meshfed-egress}
addressType: IPv4
endpoints:
- addresses: [` + egressIP + `]
  targetRef: {kind: Pod, name: meshfed-egress-5d8f, namespace: istio-meshfed}
ports: [{name: tls, port: 15443, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: myreviews, namespace: default}
spec:
  clusterIP: 10.96.1.20
  ports: [{name: {{.PortName}}, port: 9080, targetPort: 9080, protocol: TCP}]
---
apiVersion: v1
kind: Pod
metadata:
  name: sleep-7d9c
  namespace: default
  labels: {app: sleep, security.istio.io/tlsMode: istio}
spec: {serviceAccountName: sleep, containers: [{name: sleep, image: curlimages/curl}, {name: istio-proxy, image: 'docker.io/istio/proxyv2:1.24.2', args: [proxy, sidecar]}]}
status: {podIP: ` + sleepIP + `, phase: Running, conditions: [{type: Ready, status: 'True'}]}
---
{{.BindSecret}}
`

const consumerConfig = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: mf-bind-cluster2-bookinfo-myreviews, namespace: istio-meshfed}
spec:
  hosts: [` + exportHost + `]
  exportTo: [.]
  location: MESH_EXTERNAL
  ports: [{{if .TCP}}{number: 15443, name: tcp-federation, protocol: TCP}{{else}}{number: 15443, name: http-federation, protocol: HTTP}{{end}}]
  resolution: STATIC
  endpoints: [{address: ` + providerLB + `}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: mf-bind-cluster2-bookinfo-myreviews, namespace: istio-meshfed}
spec:
  host: ` + exportHost + `
  exportTo: [.]
  trafficPolicy:
    tls:
      mode: MUTUAL
      credentialName: mf-bind-cluster2-bookinfo-myreviews
      sni: ` + exportHost + `
      subjectAltNames: [` + exportHost + `]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: meshfed-egress-routes, namespace: istio-meshfed}
spec:
  host: meshfed-egress.istio-meshfed.svc.cluster.local
  exportTo: ["*"]
  subsets:
  - name: mf-bind-cluster2-bookinfo-myreviews
    trafficPolicy:
{{if not .TCP}}      connectionPool: {http: {useClientProtocol: true}}
{{end}}      tls: {mode: ISTIO_MUTUAL, sni: ` + exportHost + `}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: mf-bind-cluster2-bookinfo-myreviews, namespace: istio-meshfed}
spec:
  selector: {istio: meshfed-egress}
  servers:
  - port: {{if .TCP}}{number: 15443, name: tls-mf-bind, protocol: TLS}{{else}}{number: 15443, name: https-mf-bind, protocol: HTTPS}{{end}}
    hosts: [` + exportHost + `]
    tls: {mode: ISTIO_MUTUAL}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: mf-bind-cluster2-bookinfo-myreviews, namespace: istio-meshfed}
spec:
  hosts: [` + exportHost + `]
  gateways: [mf-bind-cluster2-bookinfo-myreviews]
  exportTo: [.]
  {{if .TCP}}tcp{{else}}http{{end}}:
  - match: [{port: 15443}]
    route: [{destination: {host: ` + exportHost + `, port: {number: 15443}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: mf-import-myreviews, namespace: default}
spec:
  hosts: [myreviews.default.svc.cluster.local]
  {{if .TCP}}tcp{{else}}http{{end}}:
  - {{if .TCP}}match: [{port: 9080}]
    {{end}}route:
    - destination:
        host: meshfed-egress.istio-meshfed.svc.cluster.local
        port: {number: 15443}
        subset: mf-bind-cluster2-bookinfo-myreviews
{{if not .TCP}}    rewrite: {authority: ` + exportHost + `}
{{end}}
`

const providerKube = `apiVersion: v1
kind: Namespace
metadata: {name: istio-meshfed}
---
apiVersion: v1
kind: Namespace
metadata: {name: bookinfo}
---
apiVersion: v1
kind: Pod
metadata:
  name: meshfed-ingress-6c4b
  namespace: istio-meshfed
  labels: {istio: meshfed-ingress, app: meshfed-ingress}
spec: {serviceAccountName: meshfed-ingress, containers: [{name: istio-proxy, image: 'docker.io/istio/proxyv2:1.24.2', args: [proxy, router], ports: [{containerPort: 15443}]}]}
status: {podIP: ` + ingressIP + `, phase: Running, conditions: [{type: Ready, status: 'True'}]}
---
apiVersion: v1
kind: Service
metadata: {name: meshfed-ingress, namespace: istio-meshfed}
spec:
  type: LoadBalancer
  clusterIP: 10.96.2.9
  selector: {istio: meshfed-ingress}
  ports: [{name: tls, port: 15443, targetPort: 15443, protocol: TCP}]
status: {loadBalancer: {ingress: [{ip: ` + providerLB + `}]}}
---
apiVersion: v1
kind: Pod
metadata:
  name: myreviews-v2-8f7d
  namespace: bookinfo
  labels: {app: myreviews, version: v2, security.istio.io/tlsMode: istio}
spec: {serviceAccountName: myreviews, containers: [{name: reviews, image: 'docker.io/istio/examples-bookinfo-reviews-v2:1.20.2'}, {name: istio-proxy, image: 'docker.io/istio/proxyv2:1.24.2', args: [proxy, sidecar]}]}
status: {podIP: ` + reviewsIP + `, phase: Running, conditions: [{type: Ready, status: 'True'}]}
---
apiVersion: v1
kind: Service
metadata: {name: myreviews, namespace: bookinfo}
spec:
  clusterIP: 10.96.2.20
  selector: {app: myreviews}
  ports: [{name: {{.PortName}}, port: 9080, targetPort: 9080, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: myreviews-1
  namespace: bookinfo
  labels: {kubernetes.io/service-name: myreviews}
addressType: IPv4
endpoints:
- addresses: [` + reviewsIP + `]
  targetRef: {kind: Pod, name: myreviews-v2-8f7d, namespace: bookinfo}
ports: [{name: {{.PortName}}, port: 9080, protocol: TCP}]
---
{{.ExportSecret}}
`

const providerConfig = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: mf-subsets-bookinfo-myreviews, namespace: istio-meshfed}
spec:
  host: myreviews.bookinfo.svc.cluster.local
  exportTo: [.]
  subsets: [{name: version-v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: mf-export-bookinfo-myreviews, namespace: istio-meshfed}
spec:
  selector: {istio: meshfed-ingress}
  servers:
  - port: {{if .TCP}}{number: 15443, name: tls-mf-export, protocol: TLS}{{else}}{number: 15443, name: https-mf-export, protocol: HTTPS}{{end}}
    hosts: [` + exportHost + `]
    tls: {mode: MUTUAL, credentialName: mf-export-bookinfo-myreviews}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: mf-export-bookinfo-myreviews, namespace: istio-meshfed}
spec:
  hosts: [` + exportHost + `]
  gateways: [mf-export-bookinfo-myreviews]
  exportTo: [.]
  {{if .TCP}}tcp{{else}}http{{end}}:
  - {{if .TCP}}match: [{port: 15443}]
    {{end}}route:
    - destination:
        host: myreviews.bookinfo.svc.cluster.local
        port: {number: 9080}
        subset: version-v2
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: mf-export-bookinfo-myreviews, namespace: istio-meshfed}
spec:
  selector: {matchLabels: {istio: meshfed-ingress}}
  action: ALLOW
  rules:
  - from: [{source: {principals: [{{.Principal}}]}}]
{{if not .TCP}}    to: [{operation: {hosts: [` + exportHost + `]}}]
{{end}}    when: [{key: connection.sni, values: [` + exportHost + `]}]
`

func meshConfig(td string) *meshconfig.MeshConfig {
	m := mesh.DefaultMeshConfig()
	m.TrustDomain = td
	return m
}

// proxyXDS builds one proxy's xDS with Istio's translator, in the shape oracle.ProxyXDS carries it.
func proxyXDS(s *xds.FakeDiscoveryServer, p *model.Proxy, hop, clusterName, ns, pod, identity, td string, router bool) *oracle.ProxyXDS {
	p = s.SetupProxy(p)
	l := s.Listeners(p)
	return &oracle.ProxyXDS{
		Hop: hop, Cluster: clusterName, Namespace: ns, Pod: pod, Router: router, Identity: identity,
		IPs: p.IPAddresses, TrustDomain: td,
		Listeners: l,
		Clusters:  s.Clusters(p),
		Routes:    s.RoutesFromListeners(p, l),
		Endpoints: s.Endpoints(p),
		Secrets:   map[string]*oracle.SecretMaterial{},
	}
}

func gatewayProxy(ns, pod, ip, istioLabel, sa string) *model.Proxy {
	labels := map[string]string{"istio": istioLabel, "app": istioLabel}
	return &model.Proxy{
		Type: model.Router, ID: pod + "." + ns, ConfigNamespace: ns, IPAddresses: []string{ip}, Labels: labels,
		Metadata: &model.NodeMetadata{Namespace: ns, Labels: labels, ServiceAccount: sa, IstioVersion: "1.31.0"},
	}
}

// newScenario builds the three proxies' configs. principal is the consumer identity the provider's
// AuthorizationPolicy admits.
func newScenario(t *testing.T, principal string, proto Protocol) *scenario {
	t.Helper()
	var err error
	sc := &scenario{}
	if sc.consumerCA, err = NewCA("cluster1 mesh CA"); err != nil {
		t.Fatal(err)
	}
	if sc.providerCA, err = NewCA("cluster2 mesh CA"); err != nil {
		t.Fatal(err)
	}
	if sc.fedCA, err = NewCA("meshfed federation CA cluster2"); err != nil {
		t.Fatal(err)
	}
	if sc.egressFedChain, sc.egressFedKey, err = sc.fedCA.Issue("cluster1 federation egress", []string{fedConsumer}, nil); err != nil {
		t.Fatal(err)
	}
	if sc.exportChain, sc.exportKey, err = sc.fedCA.Issue(exportHost, nil, []string{exportHost}); err != nil {
		t.Fatal(err)
	}

	vars := map[string]any{"TCP": proto == TCP, "PortName": "http", "Principal": principal}
	if proto == TCP {
		vars["PortName"] = "tcp-reviews"
	}
	consumer := xds.NewFakeDiscoveryServer(t, xds.FakeOptions{
		MeshConfig:   meshConfig(consumerTD),
		ConfigString: render(t, consumerConfig, vars),
		KubernetesObjectString: render(t, consumerKube, map[string]any{
			"PortName": vars["PortName"],
			"BindSecret": secretYAML("istio-meshfed", "mf-bind-cluster2-bookinfo-myreviews", "Opaque", map[string][]byte{
				"tls.crt": sc.egressFedChain, "tls.key": sc.egressFedKey, "ca.crt": sc.fedCA.RootPEM}),
		}),
	})
	provider := xds.NewFakeDiscoveryServer(t, xds.FakeOptions{
		MeshConfig:   meshConfig(providerTD),
		ConfigString: render(t, providerConfig, vars),
		KubernetesObjectString: render(t, providerKube, map[string]any{
			"PortName": vars["PortName"],
			"ExportSecret": secretYAML("istio-meshfed", "mf-export-bookinfo-myreviews", "kubernetes.io/tls", map[string][]byte{
				"tls.crt": sc.exportChain, "tls.key": sc.exportKey, "ca.crt": sc.fedCA.RootPEM}),
		}),
	})

	egressID := "spiffe://" + consumerTD + "/ns/istio-meshfed/sa/meshfed-egress"
	sc.egress = proxyXDS(consumer, gatewayProxy("istio-meshfed", "meshfed-egress-5d8f", egressIP, "meshfed-egress", "meshfed-egress"),
		"egress-gateway", "cluster1", "istio-meshfed", "meshfed-egress-5d8f", egressID, consumerTD, true)
	ingressID := "spiffe://" + providerTD + "/ns/istio-meshfed/sa/meshfed-ingress"
	sc.provider = proxyXDS(provider, gatewayProxy("istio-meshfed", "meshfed-ingress-6c4b", ingressIP, "meshfed-ingress", "meshfed-ingress"),
		"provider-gateway", "cluster2", "istio-meshfed", "meshfed-ingress-6c4b", ingressID, providerTD, true)
	sleepLabels := map[string]string{"app": "sleep"}
	sc.sleep = proxyXDS(consumer, &model.Proxy{
		Type: model.SidecarProxy, ID: "sleep-7d9c.default", ConfigNamespace: "default", IPAddresses: []string{sleepIP}, Labels: sleepLabels,
		Metadata: &model.NodeMetadata{Namespace: "default", Labels: sleepLabels, ServiceAccount: "sleep", IstioVersion: "1.31.0"},
	}, "client-sidecar", "cluster1", "default", "sleep-7d9c", "spiffe://"+consumerTD+"/ns/default/sa/sleep", consumerTD, false)

	// The material behind the SDS names: the istio-agent's workload certificate and root of each proxy
	// (signed by its own cluster's cacerts), and the Secrets the credentialNames name.
	workload := func(p *oracle.ProxyXDS, ca *CA) {
		chain, key, err := ca.Workload(p.Identity)
		if err != nil {
			t.Fatal(err)
		}
		p.Secrets["default"] = &oracle.SecretMaterial{CertChainPEM: chain, PrivateKeyPEM: key, Source: "test CA"}
		p.Secrets["ROOTCA"] = &oracle.SecretMaterial{CACertPEM: ca.RootPEM, Source: "test CA"}
	}
	workload(sc.egress, sc.consumerCA)
	workload(sc.sleep, sc.consumerCA)
	workload(sc.provider, sc.providerCA)
	sc.egress.Secrets["kubernetes://mf-bind-cluster2-bookinfo-myreviews"] = &oracle.SecretMaterial{
		CertChainPEM: sc.egressFedChain, PrivateKeyPEM: sc.egressFedKey, Source: "Secret istio-meshfed/mf-bind-cluster2-bookinfo-myreviews"}
	sc.egress.Secrets["kubernetes://mf-bind-cluster2-bookinfo-myreviews-cacert"] = &oracle.SecretMaterial{
		CACertPEM: sc.fedCA.RootPEM, Source: "Secret istio-meshfed/mf-bind-cluster2-bookinfo-myreviews"}
	sc.provider.Secrets["kubernetes://mf-export-bookinfo-myreviews"] = &oracle.SecretMaterial{
		CertChainPEM: sc.exportChain, PrivateKeyPEM: sc.exportKey, Source: "Secret istio-meshfed/mf-export-bookinfo-myreviews"}
	sc.provider.Secrets["kubernetes://mf-export-bookinfo-myreviews-cacert"] = &oracle.SecretMaterial{
		CACertPEM: sc.fedCA.RootPEM, Source: "Secret istio-meshfed/mf-export-bookinfo-myreviews"}
	return sc
}
