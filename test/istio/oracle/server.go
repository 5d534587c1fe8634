package oracle

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pilot/test/xdstest"
	istiolog "istio.io/istio/pkg/log"
	"istio.io/istio/pkg/spiffe"
)

// ProxyIstioVersion is the version the oracle's proxies claim to istiod: the oracle judges current Istio.
const ProxyIstioVersion = "1.31.0"

var quietOnce sync.Once

// quietIstioLogs turns Istio's own logging off: the CLI's stdout is one JSON object.
func quietIstioLogs() {
	quietOnce.Do(func() {
		o := istiolog.DefaultOptions()
		o.SetDefaultOutputLevel(istiolog.OverrideScopeName, istiolog.NoneLevel)
		o.OutputPaths = []string{}
		o.ErrorOutputPaths = []string{}
		_ = istiolog.Configure(o)
	})
}

// clusterServer is istiod for one cluster: Istio's fake discovery server (the real config translator over an
// in-memory config store and a fake Kubernetes API server holding the cluster's objects).
type clusterServer struct {
	c       *Cluster
	fds     *xds.FakeDiscoveryServer
	proxies map[string]*builtProxy
}

type builtProxy struct {
	pod   *corev1.Pod
	proxy *model.Proxy
	xds   *ProxyXDS
	// validation holds xdstest problems; empty means the config passed.
	validation []string
}

func newClusterServer(f *failer, c *Cluster) (cs *clusterServer, err error) {
	quietIstioLogs()
	defer func() {
		if r := recover(); r != nil {
			if a, ok := r.(abort); ok {
				err = fmt.Errorf("Istio could not build cluster %s: %s", c.Name, a.msg)
				return
			}
			panic(r)
		}
	}()
	fds := xds.NewFakeDiscoveryServer(f, xds.FakeOptions{
		Configs:           c.Configs,
		KubernetesObjects: c.Objects,
		MeshConfig:        c.Mesh,
	})
	return &clusterServer{c: c, fds: fds, proxies: map[string]*builtProxy{}}, nil
}

// ProxyKind says what a pod runs: no proxy, a sidecar or a gateway (router).
type ProxyKind int

const (
	NoProxy ProxyKind = iota
	Sidecar
	Gateway
)

func hasProxyContainer(p *corev1.Pod) (proxy bool, others bool) {
	for _, ct := range p.Spec.Containers {
		if ct.Name == "istio-proxy" || strings.Contains(ct.Image, "proxyv2") {
			proxy = true
		} else {
			others = true
		}
	}
	return proxy, others
}

// PodProxyKind decides how Istio would run the pod's proxy: the gateway injection template
// (annotation inject.istio.io/templates: gateway, as Istio's gateway charts and `istioctl` gateways set) or a
// pod whose only container is the proxy (proxyv2 running `proxy router`) is a gateway; a pod with an
// istio-proxy container beside its own, or in a namespace labelled for injection
// (istio-injection=enabled or istio.io/rev) without sidecar.istio.io/inject=false, has a sidecar.
func (c *Cluster) PodProxyKind(p *corev1.Pod) ProxyKind {
	if strings.Contains(p.Annotations["inject.istio.io/templates"], "gateway") {
		return Gateway
	}
	proxy, others := hasProxyContainer(p)
	if proxy && !others {
		return Gateway
	}
	for _, ct := range p.Spec.Containers {
		if ct.Name == "istio-proxy" {
			for _, a := range ct.Args {
				if a == "router" {
					return Gateway
				}
			}
		}
	}
	if proxy {
		return Sidecar
	}
	if _, ok := p.Annotations["sidecar.istio.io/status"]; ok {
		return Sidecar
	}
	if p.Labels["sidecar.istio.io/inject"] == "false" || p.Annotations["sidecar.istio.io/inject"] == "false" {
		return NoProxy
	}
	if ns, ok := c.Namespaces[p.Namespace]; ok {
		if ns.Labels["istio-injection"] == "enabled" || ns.Labels["istio.io/rev"] != "" {
			return Sidecar
		}
	}
	if p.Labels["sidecar.istio.io/inject"] == "true" {
		return Sidecar
	}
	return NoProxy
}

// PodIdentity is the SPIFFE id istiod issues to the pod's proxy: spiffe://<trust domain>/ns/<ns>/sa/<sa>
// (pkg/spiffe/spiffe.go MustGenSpiffeURI with the mesh config's trustDomain).
func (c *Cluster) PodIdentity(p *corev1.Pod) string {
	sa := p.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	return spiffe.MustGenSpiffeURIForTrustDomain(c.Mesh.GetTrustDomain(), p.Namespace, sa)
}

func (cs *clusterServer) build(hop string, p *corev1.Pod) (bp *builtProxy, err error) {
	key := p.Namespace + "/" + p.Name
	if b, ok := cs.proxies[key]; ok {
		return b, nil
	}
	defer func() {
		if r := recover(); r != nil {
			if a, ok := r.(abort); ok {
				err = fmt.Errorf("Istio could not build the config of %s/%s: %s", cs.c.Name, key, a.msg)
				return
			}
			err = fmt.Errorf("Istio's translator failed on %s/%s: %v", cs.c.Name, key, r)
		}
	}()
	kind := cs.c.PodProxyKind(p)
	if kind == NoProxy {
		return nil, fmt.Errorf("pod %s/%s has no Istio proxy", cs.c.Name, key)
	}
	sa := p.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	var ips []string
	for _, ip := range p.Status.PodIPs {
		ips = append(ips, ip.IP)
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("pod %s/%s has no IP (status.podIP)", cs.c.Name, key)
	}
	labels := map[string]string{}
	for k, v := range p.Labels {
		labels[k] = v
	}
	// istio-agent sends the proxy container's ISTIO_META_* variables as node metadata (NETWORK,
	// REQUESTED_NETWORK_VIEW, ...; pkg/model/proxy.go NodeMetadata json names).
	md := &model.NodeMetadata{}
	raw := map[string]any{}
	for _, ct := range p.Spec.Containers {
		if ct.Name != "istio-proxy" {
			continue
		}
		for _, e := range ct.Env {
			if k, ok := strings.CutPrefix(e.Name, "ISTIO_META_"); ok && e.Value != "" {
				raw[k] = e.Value
			}
		}
	}
	if len(raw) > 0 {
		j, _ := json.Marshal(raw)
		if err := json.Unmarshal(j, md); err != nil {
			return nil, fmt.Errorf("pod %s/%s: ISTIO_META_* environment: %v", cs.c.Name, key, err)
		}
		md.Raw = raw
	}
	md.Labels, md.Namespace, md.ServiceAccount, md.IstioVersion = labels, p.Namespace, sa, ProxyIstioVersion
	md.WorkloadName, md.Annotations, md.InstanceIPs, md.ClusterID = p.Name, p.Annotations, ips, "Kubernetes"
	proxy := &model.Proxy{
		Type:             model.SidecarProxy,
		IPAddresses:      ips,
		ID:               p.Name + "." + p.Namespace,
		ConfigNamespace:  p.Namespace,
		DNSDomain:        p.Namespace + ".svc.cluster.local",
		Labels:           labels,
		Metadata:         md,
		VerifiedIdentity: &spiffe.Identity{TrustDomain: cs.c.Mesh.GetTrustDomain(), Namespace: p.Namespace, ServiceAccount: sa},
	}
	if kind == Gateway {
		proxy.Type = model.Router
	}
	proxy = cs.fds.SetupProxy(proxy)
	ls := cs.fds.Listeners(proxy)
	cl := cs.fds.Clusters(proxy)
	rs := cs.fds.RoutesFromListeners(proxy, ls)
	eps := cs.fds.Endpoints(proxy)
	bp = &builtProxy{pod: p, proxy: proxy}
	bp.xds = &ProxyXDS{
		Hop: hop, Cluster: cs.c.Name, Namespace: p.Namespace, Pod: p.Name, Router: kind == Gateway,
		Identity: cs.c.PodIdentity(p), IPs: ips, TrustDomain: cs.c.Mesh.GetTrustDomain(),
		Listeners: ls, Clusters: cl, Routes: rs, Endpoints: eps, Secrets: map[string]*SecretMaterial{},
	}
	// Istio's own config checks (the ones its simulation tests run on every generated config).
	tb := &collectTB{}
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(abort); !ok {
					tb.errs = append(tb.errs, fmt.Sprint(r))
				}
			}
		}()
		xdstest.ValidateListeners(tb, ls)
		xdstest.ValidateClusters(tb, cl)
		for _, rc := range rs {
			for _, vh := range rc.GetVirtualHosts() {
				xdstest.ValidateRoutes(tb, vh.GetRoutes())
			}
		}
	}()
	bp.validation = tb.errs
	// Resolve every SDS name the config refers to.
	names := map[string]bool{}
	for _, c := range cl {
		for _, n := range xdstest.ExtractClusterSecretResources(cs.fds.T(), c) {
			names[n] = true
		}
	}
	for _, l := range ls {
		for _, n := range xdstest.ExtractListenerSecretResources(cs.fds.T(), l) {
			names[n] = true
		}
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		if n == "" {
			continue
		}
		if m, err := resolveSDS(cs.c, p.Namespace, bp.xds.Identity, n); err == nil {
			bp.xds.Secrets[n] = m
		}
	}
	cs.proxies[key] = bp
	return bp, nil
}

// Pod finds a pod by namespace/name.
func (c *Cluster) Pod(ns, name string) *corev1.Pod {
	for _, p := range c.Pods {
		if p.Namespace == ns && p.Name == name {
			return p
		}
	}
	return nil
}
