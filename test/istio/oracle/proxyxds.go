package oracle

import (
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// ProxyXDS is everything Istio's translator produced for one proxy on the traced path, in the shape a
// proxy would receive it over xDS (LDS, CDS, RDS, EDS) plus the material behind every SDS name the
// config refers to. It is what a ProxyConfigJudge (a real Envoy) is given.
type ProxyXDS struct {
	// Hop is the hop name of the contract: client-sidecar, egress-gateway, provider-gateway or workload.
	Hop string
	// Cluster is the Kubernetes cluster (the file name of <dir>/<cluster>.yaml).
	Cluster string
	// Namespace and Pod name the proxy's pod.
	Namespace string
	Pod       string
	// Router is true for a gateway (Istio proxy type "router"), false for a sidecar.
	Router bool
	// Identity is the SPIFFE id of the proxy's workload certificate (spiffe://<trust domain>/ns/<ns>/sa/<sa>).
	Identity string
	// IPs are the pod's IP addresses (the proxy's node IPs).
	IPs []string
	// TrustDomain of the proxy's mesh.
	TrustDomain string

	Listeners []*listener.Listener
	Clusters  []*cluster.Cluster
	Routes    []*route.RouteConfiguration
	// Endpoints are the ClusterLoadAssignments (EDS) for every EDS cluster in Clusters.
	Endpoints []*endpoint.ClusterLoadAssignment

	// Secrets maps an SDS resource name used in the config (e.g. "default", "ROOTCA",
	// "kubernetes://meshfed-ca", "kubernetes://meshfed-ca-cacert", "file-root:...") to its material.
	// Names the oracle could not resolve are absent (the trace reports them).
	Secrets map[string]*SecretMaterial
}

// SecretMaterial is what Envoy would get over SDS for one resource name: a certificate chain and key
// (a TLS certificate) and/or a CA bundle (a validation context). PEM encoded.
type SecretMaterial struct {
	CertChainPEM  []byte
	PrivateKeyPEM []byte
	CACertPEM     []byte
	// Source says where it came from: "Secret <ns>/<name>" for a credentialName, or
	// "minted by the oracle from the mesh CA <ns>/<name>" / "minted by the oracle (self-signed)" for the
	// istio-agent's workload certificate ("default") and root ("ROOTCA"), which istiod never stores in a Secret.
	Source string
}

// ProxyConfigJudge judges one proxy's config outside Istio's translator, e.g. `envoy --mode validate`
// on a static bootstrap built from ProxyXDS. A non-nil error means the proxy would reject the config;
// the hop is then refused with reason "envoy-rejected-config" and the error text in its validation list.
type ProxyConfigJudge interface {
	// Name is a short label for the validation list ("envoy").
	Name() string
	Judge(p *ProxyXDS) error
}

// LiveJudge runs the gateways of a traced path as real Envoy processes (with a backend standing in for the
// workload) and sends the traced request through them (`--envoy live`).
type LiveJudge interface {
	Live(res *Result) (*LiveOutcome, error)
}

// LiveOutcome is what the real request did.
type LiveOutcome struct {
	// Reached is true when the backend answered (HTTP 200 / the TCP echo).
	Reached bool `json:"reached"`
	// Detail says what happened (status code, handshake error, ...).
	Detail string `json:"detail"`
}
