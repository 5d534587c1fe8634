package oracle

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointpb "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcppb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/types/known/structpb"
	corev1 "k8s.io/api/core/v1"

	networking "istio.io/api/networking/v1alpha3"

	"istio.io/istio/pilot/pkg/simulation"
	"istio.io/istio/pilot/test/xdstest"
)

// IstioLine is the Istio release line of the translator the oracle is built with (see README).
const IstioLine = "1.31-dev"

// Options tune a trace.
type Options struct {
	// Judge, if set, judges every proxy config built along the path (e.g. envoy --mode validate).
	Judge ProxyConfigJudge
	// Headers are extra request headers the app sends (HTTP only).
	Headers map[string]string
	// Method is the HTTP method (default GET).
	Method string
}

// Next is what a hop hands to the next one.
type Next struct {
	Address            string   `json:"address"`
	Port               int      `json:"port"`
	SNI                string   `json:"sni,omitempty"`
	Authority          string   `json:"authority,omitempty"`
	Path               string   `json:"path,omitempty"`
	TLS                string   `json:"tls"`
	ALPN               []string `json:"alpn,omitempty"`
	ClientCertSecret   string   `json:"clientCertSecret,omitempty"`
	PresentedPrincipal string   `json:"presentedPrincipal,omitempty"`
	ValidationSecret   string   `json:"validationSecret,omitempty"`
	Endpoints          int      `json:"endpoints"`
	To                 string   `json:"to,omitempty"`
}

// Hop is one proxy on the path.
type Hop struct {
	Hop             string       `json:"hop"`
	Cluster         string       `json:"cluster"`
	Proxy           string       `json:"proxy"`
	Identity        string       `json:"identity,omitempty"`
	Outcome         string       `json:"outcome"`
	Reason          string       `json:"reason,omitempty"`
	Listener        string       `json:"listener,omitempty"`
	FilterChain     string       `json:"filterChain,omitempty"`
	RouteConfig     string       `json:"routeConfig,omitempty"`
	VirtualHost     string       `json:"virtualHost,omitempty"`
	Route           string       `json:"route,omitempty"`
	UpstreamCluster string       `json:"upstreamCluster,omitempty"`
	Next            *Next        `json:"next,omitempty"`
	RBAC            *RBACOutcome `json:"rbac,omitempty"`
	Validation      []string     `json:"validation"`
	Detail          string       `json:"detail"`
}

// Branch is one weighted route branch's outcome (a request may take any branch).
type Branch struct {
	Via       string  `json:"via"`
	Verdict   string  `json:"verdict"`
	RefusedAt *string `json:"refusedAt"`
	Reason    *string `json:"reason"`
	Hops      []Hop   `json:"hops"`
}

// CallInfo echoes the traced call.
type CallInfo struct {
	From string `json:"from"`
	URL  string `json:"url"`
}

// Result is the trace's JSON document.
type Result struct {
	Istio        string            `json:"istio"`
	Call         CallInfo          `json:"call"`
	Verdict      string            `json:"verdict"`
	RefusedAt    *string           `json:"refusedAt"`
	Reason       *string           `json:"reason"`
	Hops         []Hop             `json:"hops"`
	Branches     []Branch          `json:"branches,omitempty"`
	CannotJudge  string            `json:"cannotJudge,omitempty"`
	ClusterIstio map[string]string `json:"clusterIstio,omitempty"`
	Rejected     []Problem         `json:"rejected,omitempty"`
	Notes        []string          `json:"notes,omitempty"`
	// Live is the outcome of the real request through real Envoy processes (--envoy live).
	Live *LiveOutcome `json:"live,omitempty"`
	// Proxies are the configs built along the path (for a live Envoy run); not part of the JSON.
	Proxies []*ProxyXDS `json:"-"`
}

// tlsState is the TLS session a connection carries, as its originator set it up.
type tlsState struct {
	mode       string // ISTIO_MUTUAL, MUTUAL, SIMPLE
	sni        string
	alpn       []string
	clientSDS  string
	clientCert *SecretMaterial
	principal  string
	uriSAN     string
	caSDS      string
	caPEM      []byte
	vc         *tlsv3.CertificateValidationContext
	origin     string
}

// conn is a connection arriving at a proxy.
type conn struct {
	srcIP   string
	dstIP   string
	dstPort int
	http    bool
	req     request
	tls     *tlsState
}

type tracer struct {
	st      *State
	opts    Options
	f       *failer
	servers map[string]*clusterServer
	proxies []*ProxyXDS
	seen    map[*ProxyXDS]bool
	judged  map[*ProxyXDS]error
}

// outcome of one path.
type pathOutcome struct {
	hops      []Hop
	verdict   string
	refusedAt string
	reason    string
	via       string
	cannot    string
}

// Trace traces one call through the state. fromCluster/ns/pod name the calling pod; rawURL is
// http://host[:port]/path or tcp://host:port.
func Trace(st *State, from string, rawURL string, opts Options) (res *Result, err error) {
	parts := strings.Split(from, "/")
	if len(parts) != 3 {
		return nil, usageError{fmt.Sprintf("--from %q: want <cluster>/<namespace>/<pod>", from)}
	}
	cname, ns, podName := parts[0], parts[1], parts[2]
	c, ok := st.Clusters[cname]
	if !ok {
		return nil, usageError{fmt.Sprintf("--from %q: no cluster %q in %s (clusters: %s)", from, cname, st.Dir, strings.Join(st.Order, ", "))}
	}
	pod := c.Pod(ns, podName)
	if pod == nil {
		return nil, usageError{fmt.Sprintf("--from %q: no pod %s/%s in cluster %s", from, ns, podName, cname)}
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "tcp") || u.Hostname() == "" {
		return nil, usageError{fmt.Sprintf("--url %q: want http://<host>[:port]/path or tcp://<host>:<port>", rawURL)}
	}
	port := 80
	if u.Port() != "" {
		port, err = strconv.Atoi(u.Port())
		if err != nil || port <= 0 || port > 65535 {
			return nil, usageError{fmt.Sprintf("--url %q: bad port", rawURL)}
		}
	} else if u.Scheme == "tcp" {
		return nil, usageError{fmt.Sprintf("--url %q: a tcp:// URL needs a port", rawURL)}
	}
	res = &Result{Istio: IstioLine, Call: CallInfo{From: from, URL: rawURL}, ClusterIstio: map[string]string{}}
	for _, n := range st.Order {
		cl := st.Clusters[n]
		if cl.IstioVersion != "" {
			res.ClusterIstio[n] = cl.IstioVersion
		}
		res.Rejected = append(res.Rejected, cl.Rejected...)
		for _, note := range cl.Notes {
			res.Notes = append(res.Notes, n+": "+note)
		}
	}
	t := &tracer{st: st, opts: opts, f: newFailer(), servers: map[string]*clusterServer{}, seen: map[*ProxyXDS]bool{}, judged: map[*ProxyXDS]error{}}
	defer t.f.Close()
	defer func() {
		if r := recover(); r != nil {
			a, ok := r.(abort)
			if !ok {
				a = abort{fmt.Sprint(r)}
			}
			res.Verdict = "cannot-judge"
			res.CannotJudge = a.msg
			res.Hops = nil
			err = nil
		}
	}()

	// Resolve the host as the pod's resolver would.
	host := u.Hostname()
	vip, how, rerr := resolveHost(c, ns, host)
	if rerr != nil {
		res.Verdict = "refused"
		rs, ra := "dns-unresolved", "client-sidecar"
		res.RefusedAt, res.Reason = &ra, &rs
		res.Hops = []Hop{{Hop: "client-sidecar", Cluster: cname, Proxy: ns + "/" + podName, Outcome: "refused", Reason: rs,
			Validation: []string{}, Detail: rerr.Error()}}
		return res, nil
	}
	method := opts.Method
	if method == "" {
		method = http.MethodGet
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	}
	authority := u.Host // curl sends host[:port] as typed
	in := conn{srcIP: pod.Status.PodIP, dstIP: vip, dstPort: port, http: u.Scheme == "http",
		req: request{method: method, authority: authority, path: path, headers: opts.Headers}}
	var outs []pathOutcome
	switch c.PodProxyKind(pod) {
	case Sidecar:
		outs = t.hop("client-sidecar", c, pod, in, nil, "resolved "+host+" to "+vip+" ("+how+")")
	case NoProxy:
		// No sidecar: the app's plaintext connection goes where the address leads (kube-proxy for a
		// ClusterIP), outside the mesh's routing.
		h := Hop{Hop: "client-sidecar", Cluster: cname, Proxy: ns + "/" + podName, Outcome: "passed", Validation: []string{},
			Detail: fmt.Sprintf("the pod has no sidecar: the app connects to %s:%d itself in plaintext (resolved %s: %s)", vip, port, host, how)}
		outs = t.handOff(c, pod, h, nil, in)
	default:
		res.Verdict = "cannot-judge"
		res.CannotJudge = fmt.Sprintf("pod %s/%s/%s is a gateway: the oracle traces calls from application pods", cname, ns, podName)
		return res, nil
	}
	res.Proxies = t.proxies
	summarize(res, outs)
	return res, nil
}

type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

// IsUsageError says whether Trace failed on its arguments.
func IsUsageError(err error) bool {
	var u usageError
	return errors.As(err, &u)
}

func summarize(res *Result, outs []pathOutcome) {
	// The verdict: refused if any branch a request may take is refused; cannot-judge if none is refused
	// and one cannot be judged; reached otherwise.
	var pick *pathOutcome
	for i := range outs {
		if outs[i].verdict == "refused" {
			pick = &outs[i]
			break
		}
	}
	if pick == nil {
		for i := range outs {
			if outs[i].verdict == "cannot-judge" {
				pick = &outs[i]
				break
			}
		}
	}
	if pick == nil {
		pick = &outs[0]
	}
	res.Verdict = pick.verdict
	res.Hops = pick.hops
	if pick.verdict == "refused" {
		a, r := pick.refusedAt, pick.reason
		res.RefusedAt, res.Reason = &a, &r
	}
	if pick.verdict == "cannot-judge" {
		res.CannotJudge = pick.cannot
	}
	if len(outs) > 1 {
		for _, o := range outs {
			b := Branch{Via: o.via, Verdict: o.verdict, Hops: o.hops}
			if o.verdict == "refused" {
				a, r := o.refusedAt, o.reason
				b.RefusedAt, b.Reason = &a, &r
			}
			res.Branches = append(res.Branches, b)
		}
	}
}

// resolveHost resolves a host name as the pod would: a literal IP; a Kubernetes Service through the
// DNS search path <ns>.svc.cluster.local svc.cluster.local cluster.local (ClusterIP, or a ready pod's IP for
// a headless Service); a ServiceEntry host with addresses (its first address).
func resolveHost(c *Cluster, ns, host string) (string, string, error) {
	if ip := net.ParseIP(host); ip != nil {
		return host, "an IP address", nil
	}
	h := strings.TrimSuffix(host, ".")
	cands := []string{}
	if !strings.HasSuffix(host, ".") {
		for _, s := range []string{ns + ".svc.cluster.local", "svc.cluster.local", "cluster.local"} {
			cands = append(cands, h+"."+s)
		}
	}
	cands = append(cands, h)
	for _, fq := range cands {
		for _, svc := range c.Services {
			if fq != svc.Name+"."+svc.Namespace+".svc.cluster.local" {
				continue
			}
			if svc.Spec.Type == corev1.ServiceTypeExternalName {
				return "", "", fmt.Errorf("%s is an ExternalName Service (%s): not modelled", fq, svc.Spec.ExternalName)
			}
			if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
				for _, p := range sortedPods(c.ServicePods(svc)) {
					if PodReady(p) {
						return p.Status.PodIP, "headless Service " + svc.Namespace + "/" + svc.Name + " -> pod " + p.Name, nil
					}
				}
				return "", "", fmt.Errorf("%s: headless Service without ready pods", fq)
			}
			return svc.Spec.ClusterIP, "Service " + svc.Namespace + "/" + svc.Name + " ClusterIP", nil
		}
	}
	for _, cfg := range c.Configs {
		if cfg.GroupVersionKind.Kind != "ServiceEntry" {
			continue
		}
		hosts, addrs := serviceEntryHostsAddrs(cfg.Spec)
		for _, sh := range hosts {
			for _, fq := range cands {
				if sh == fq && len(addrs) > 0 {
					a := addrs[0]
					if i := strings.Index(a, "/"); i >= 0 {
						a = a[:i]
					}
					return a, "ServiceEntry " + cfg.Namespace + "/" + cfg.Name + " address", nil
				}
			}
		}
	}
	return "", "", fmt.Errorf("%s does not resolve in %s (no Service through the search path, no ServiceEntry with addresses)", host, c.Name)
}

func sortedPods(ps []*corev1.Pod) []*corev1.Pod {
	out := append([]*corev1.Pod{}, ps...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (t *tracer) server(c *Cluster) *clusterServer {
	if s, ok := t.servers[c.Name]; ok {
		return s
	}
	s, err := newClusterServer(t.f, c)
	if err != nil {
		panic(abort{err.Error()})
	}
	t.servers[c.Name] = s
	return s
}

func refuse(h Hop, prev []Hop, reason, detail string) []pathOutcome {
	h.Outcome = "refused"
	h.Reason = reason
	if h.Detail == "" {
		h.Detail = detail
	} else if detail != "" {
		h.Detail += "; " + detail
	}
	return []pathOutcome{{hops: append(append([]Hop{}, prev...), h), verdict: "refused", refusedAt: h.Hop, reason: reason}}
}

func cannot(h Hop, prev []Hop, detail string) []pathOutcome {
	h.Outcome = "cannot-judge"
	h.Detail = detail
	return []pathOutcome{{hops: append(append([]Hop{}, prev...), h), verdict: "cannot-judge", cannot: h.Hop + " (" + h.Cluster + " " + h.Proxy + "): " + detail}}
}

var simReasons = []struct {
	err    error
	reason string
}{
	{simulation.ErrNoListener, "no-listener"},
	{simulation.ErrNoFilterChain, "no-filter-chain"},
	{simulation.ErrMultipleFilterChain, "overlapping-filter-chains"},
	{simulation.ErrNoRoute, "no-route"},
	{simulation.ErrNoVirtualHost, "no-virtual-host"},
	{simulation.ErrTLSRedirect, "tls-redirect"},
	{simulation.ErrProtocolError, "protocol-error"},
	{simulation.ErrTLSError, "tls-required"},
	{simulation.ErrMTLSError, "tls-mtls-mismatch"},
}

// simulate runs Istio's simulator; Fatal calls of its helpers become errors.
func simulate(x *ProxyXDS, call simulation.Call) (r simulation.Result, err error) {
	defer func() {
		if rec := recover(); rec != nil {
			err = fmt.Errorf("Istio's simulator could not evaluate the call: %v", rec)
		}
	}()
	sim := &simulation.Simulation{Listeners: x.Listeners, Clusters: x.Clusters, Routes: x.Routes}
	return sim.Run(call), nil
}

const noALPN = "(none)"

// hop runs one proxy of the path and continues to the next.
func (t *tracer) hop(name string, c *Cluster, pod *corev1.Pod, in conn, prev []Hop, detail string) []pathOutcome {
	if len(prev) > 8 {
		h := Hop{Hop: name, Cluster: c.Name, Proxy: pod.Namespace + "/" + pod.Name, Validation: []string{}}
		return refuse(h, prev, "routing-loop", "more than 8 proxies on the path")
	}
	cs := t.server(c)
	kind := c.PodProxyKind(pod)
	h := Hop{Hop: name, Cluster: c.Name, Proxy: pod.Namespace + "/" + pod.Name, Validation: []string{}}
	if kind == NoProxy {
		// A pod without a proxy: the app itself receives the connection.
		h.Hop = "workload"
		if in.tls != nil {
			return refuse(h, prev, "tls-to-plaintext-workload", "the pod has no Istio proxy: its app receives a TLS handshake it does not expect")
		}
		h.Outcome = "passed"
		h.Detail = "pod without a proxy: the app receives the request directly"
		return []pathOutcome{{hops: append(append([]Hop{}, prev...), h), verdict: "reached"}}
	}
	bp, err := cs.build(name, pod)
	if err != nil {
		return cannot(h, prev, err.Error())
	}
	x := bp.xds
	x.Hop = name
	h.Identity = x.Identity
	if !t.seen[x] {
		t.seen[x] = true
		t.proxies = append(t.proxies, x)
	}
	for i, v := range bp.validation {
		if i == 5 {
			h.Validation = append(h.Validation, fmt.Sprintf("xdstest: … %d more", len(bp.validation)-5))
			break
		}
		h.Validation = append(h.Validation, "xdstest: "+compact(v))
	}
	if len(bp.validation) > 0 {
		return refuse(h, prev, "invalid-config", "Istio's xdstest validation rejects the proxy's config")
	}
	h.Validation = append(h.Validation, "xdstest: ok")
	if t.opts.Judge != nil {
		if _, done := t.judged[x]; !done {
			t.judged[x] = t.opts.Judge.Judge(x)
		}
		if err := t.judged[x]; err != nil {
			h.Validation = append(h.Validation, t.opts.Judge.Name()+": "+err.Error())
			return refuse(h, prev, "envoy-rejected-config", t.opts.Judge.Name()+" rejects the proxy's config")
		}
		h.Validation = append(h.Validation, t.opts.Judge.Name()+": ok")
	}

	mode := simulation.CallModeGateway
	switch {
	case name == "client-sidecar":
		mode = simulation.CallModeOutbound
	case kind == Sidecar:
		mode = simulation.CallModeInbound
	}
	call := simulation.Call{Address: in.dstIP, Port: in.dstPort, Protocol: simulation.TCP, CallMode: mode, TLS: simulation.Plaintext}
	if in.http {
		call.Protocol = simulation.HTTP
		call.HostHeader = in.req.authority
		call.Path = in.req.path
		call.Headers = http.Header{}
		for k, v := range in.req.headers {
			call.Headers.Set(k, v)
		}
	}
	if in.tls != nil {
		call.TLS = simulation.TLS
		call.Sni = in.tls.sni
		if call.Sni == "" {
			call.Sni = noALPN // no SNI sent: never equal to a server name
		}
		call.Alpn = noALPN
		if len(in.tls.alpn) > 0 {
			call.Alpn = in.tls.alpn[0]
		}
	}
	r, err := simulate(x, call)
	if err == nil && errors.Is(r.Error, simulation.ErrMTLSError) && in.tls != nil {
		// The simulator tells TLS from mutual TLS by the chain's certificate being Istio's ("default") with a
		// client certificate required; the trust checks below judge the handshake itself.
		call.TLS = simulation.MTLS
		r, err = simulate(x, call)
	}
	if err != nil {
		return cannot(h, prev, err.Error())
	}
	h.Listener, h.FilterChain, h.RouteConfig, h.VirtualHost, h.Route = r.ListenerMatched, r.FilterChainMatched, r.RouteConfigMatched, r.VirtualHostMatched, r.RouteMatched
	if r.Error != nil && !errors.Is(r.Error, simulation.ErrNoRoute) {
		for _, sr := range simReasons {
			if errors.Is(r.Error, sr.err) {
				return refuse(h, prev, sr.reason, fmt.Sprintf("Istio's simulator: %v (call %s)", r.Error, describeCall(call)))
			}
		}
		return cannot(h, prev, "simulator: "+r.Error.Error())
	}
	l := xdstest.ExtractListener(r.ListenerMatched, x.Listeners)
	fc := findChain(l, r)
	if fc == nil {
		return cannot(h, prev, "could not find the matched filter chain "+r.FilterChainMatched)
	}

	// TLS termination at this hop.
	peerPrincipal, peerURI := "", ""
	terminated := false
	var inner *tlsState
	if ts := fc.GetTransportSocket(); ts != nil && in.tls != nil {
		terminated = true
		reason, d, pp, pu := t.checkHandshake(c, pod, x, ts, in.tls)
		if reason != "" {
			return refuse(h, prev, reason, d)
		}
		peerPrincipal, peerURI = pp, pu
	} else if in.tls != nil {
		inner = in.tls // passthrough: the TLS session continues end to end
	}

	// RBAC of the chain.
	rreq := RBACRequest{PeerPrincipal: peerPrincipal, PeerURISAN: peerURI, DestIP: in.dstIP, DestPort: in.dstPort, SourceIP: in.srcIP, HTTP: in.http && terminatedOrPlain(in, terminated)}
	if in.tls != nil {
		rreq.SNI = in.tls.sni
	}
	if rreq.HTTP {
		rreq.Headers = in.req.headerMap()
	}
	ro, err := EvaluateChainRBAC(fc, rreq)
	if err != nil {
		return cannot(h, prev, "RBAC: "+err.Error())
	}
	if ro != nil {
		h.RBAC = ro
		if len(ro.Unjudged) > 0 {
			return cannot(h, prev, "RBAC matchers the oracle does not model: "+strings.Join(ro.Unjudged, ", "))
		}
		if !ro.Allowed {
			who := peerPrincipal
			if who == "" {
				who = "no authenticated principal"
			}
			return refuse(h, prev, "rbac-denied", fmt.Sprintf("%s policy %s refuses %s (sni %q, port %d)", ro.Action, ro.Policy, who, rreq.SNI, in.dstPort))
		}
	}

	// Where the chain sends the request.
	var targets []routeTarget
	if hcm := extractHCM(fc); hcm != nil {
		rc := hcm.GetRouteConfig()
		if rc == nil {
			for _, rr := range x.Routes {
				if rr.GetName() == hcm.GetRds().GetRouteConfigName() {
					rc = rr
				}
			}
		}
		var vh *routepb.VirtualHost
		for _, v := range rc.GetVirtualHosts() {
			if v.GetName() == r.VirtualHostMatched {
				vh = v
			}
		}
		if vh == nil {
			return refuse(h, prev, "no-virtual-host", "no virtual host for authority "+in.req.authority)
		}
		rt, err := matchRoute(vh, in.req)
		if err != nil {
			return cannot(h, prev, err.Error())
		}
		if rt == nil {
			return refuse(h, prev, "no-route", fmt.Sprintf("no route of virtual host %s matches %s %s", vh.GetName(), in.req.method, in.req.path))
		}
		h.Route = rt.GetName()
		switch a := rt.GetAction().(type) {
		case *routepb.Route_DirectResponse:
			return refuse(h, prev, "direct-response", fmt.Sprintf("route %s answers %d itself", rt.GetName(), a.DirectResponse.GetStatus()))
		case *routepb.Route_Redirect:
			return refuse(h, prev, "redirect", "route "+rt.GetName()+" redirects")
		case *routepb.Route_Route:
		default:
			return cannot(h, prev, fmt.Sprintf("route action %T not modelled", a))
		}
		targets, err = routeTargets(vh, rt, in.req)
		if err != nil {
			return cannot(h, prev, err.Error())
		}
	} else if tcp := extractTCP(fc); tcp != nil {
		base := routeTarget{authority: in.req.authority, path: in.req.path, headers: in.req.headers}
		switch cs := tcp.GetClusterSpecifier().(type) {
		case *tcppb.TcpProxy_Cluster:
			base.cluster = cs.Cluster
			base.weight = 100
			targets = []routeTarget{base}
		case *tcppb.TcpProxy_WeightedClusters:
			for _, wc := range cs.WeightedClusters.GetClusters() {
				if wc.GetWeight() == 0 {
					continue
				}
				tt := base
				tt.cluster, tt.weight = wc.GetName(), wc.GetWeight()
				targets = append(targets, tt)
			}
		}
		for _, f := range fc.GetFilters() {
			if f.GetName() == "envoy.filters.network.sni_cluster" && in.tls != nil {
				for i := range targets {
					targets[i].cluster = in.tls.sni
				}
			}
		}
	} else {
		return cannot(h, prev, "filter chain "+fc.GetName()+" has neither an HTTP connection manager nor a TCP proxy")
	}
	if len(targets) == 0 {
		return refuse(h, prev, "no-cluster", "the route has no upstream cluster")
	}

	var outs []pathOutcome
	for _, tg := range targets {
		hh := h
		hh.UpstreamCluster = tg.cluster
		via := ""
		if len(targets) > 1 {
			via = fmt.Sprintf("%s %s weight %d", name, tg.cluster, tg.weight)
		}
		os := t.upstream(c, pod, x, kind, hh, prev, in, tg, inner)
		for i := range os {
			if via != "" && os[i].via == "" {
				os[i].via = via
			}
		}
		outs = append(outs, os...)
	}
	return outs
}

func terminatedOrPlain(in conn, terminated bool) bool { return in.tls == nil || terminated }

func describeCall(c simulation.Call) string {
	s := fmt.Sprintf("%s %s:%d %s", c.CallMode, c.Address, c.Port, c.Protocol)
	if c.TLS != simulation.Plaintext {
		s += fmt.Sprintf(" tls=%s sni=%s alpn=%s", c.TLS, c.Sni, c.Alpn)
	}
	if c.HostHeader != "" {
		s += " host=" + c.HostHeader + " path=" + c.Path
	}
	return s
}

func findChain(l *listenerpb.Listener, r simulation.Result) *listenerpb.FilterChain {
	if l == nil {
		return nil
	}
	var cands []*listenerpb.FilterChain
	all := append([]*listenerpb.FilterChain{}, l.GetFilterChains()...)
	if l.GetDefaultFilterChain() != nil {
		all = append(all, l.GetDefaultFilterChain())
	}
	for _, fc := range all {
		if fc.GetName() == r.FilterChainMatched {
			cands = append(cands, fc)
		}
	}
	if len(cands) <= 1 {
		if len(cands) == 1 {
			return cands[0]
		}
		return nil
	}
	for _, fc := range cands {
		if hcm := extractHCM(fc); hcm != nil && r.RouteConfigMatched != "" && hcm.GetRds().GetRouteConfigName() == r.RouteConfigMatched {
			return fc
		}
		if tcp := extractTCP(fc); tcp != nil && r.ClusterMatched != "" && tcp.GetCluster() == r.ClusterMatched {
			return fc
		}
	}
	return cands[0]
}

func extractHCM(fc *listenerpb.FilterChain) *hcmpb.HttpConnectionManager {
	for _, f := range fc.GetFilters() {
		if f.GetName() == "envoy.filters.network.http_connection_manager" {
			h := &hcmpb.HttpConnectionManager{}
			if f.GetTypedConfig().UnmarshalTo(h) == nil {
				return h
			}
		}
	}
	return nil
}

func extractTCP(fc *listenerpb.FilterChain) *tcppb.TcpProxy {
	for _, f := range fc.GetFilters() {
		if f.GetName() == "envoy.filters.network.tcp_proxy" {
			t := &tcppb.TcpProxy{}
			if f.GetTypedConfig().UnmarshalTo(t) == nil {
				return t
			}
		}
	}
	return nil
}

// checkHandshake judges the TLS handshake between the session's originator and this proxy's chain: the
// server certificate behind the chain's SDS name must chain to the CA the originator validates with and
// match its SAN matchers; a client certificate is needed when the chain requires one, must chain to the
// chain's validation CA and match its SAN matchers (Istio writes the trust domains it accepts, incl.
// meshConfig.trustDomainAliases, into those matchers). Returns a refusal reason or the peer principal.
func (t *tracer) checkHandshake(c *Cluster, pod *corev1.Pod, x *ProxyXDS, ts *corepb.TransportSocket, cl *tlsState) (reason, detail, principal, uri string) {
	dtc := &tlsv3.DownstreamTlsContext{}
	if err := ts.GetTypedConfig().UnmarshalTo(dtc); err != nil {
		return "invalid-config", err.Error(), "", ""
	}
	ctc := dtc.GetCommonTlsContext()
	certs := ctc.GetTlsCertificateSdsSecretConfigs()
	if len(certs) == 0 {
		return "", "", "", "" // inline certificates (not emitted by Istio)
	}
	certName := certs[0].GetName()
	server, err := proxySDS(c, pod, x, certName)
	if err != nil {
		if errors.Is(err, errMissingSecret) {
			return "tls-missing-secret", "server certificate: " + err.Error(), "", ""
		}
		return "tls-untrusted-peer", err.Error(), "", ""
	}
	// The originator validates the server certificate.
	if len(cl.caPEM) > 0 {
		if err := verifyChain(server.CertChainPEM, cl.caPEM, x509.ExtKeyUsageServerAuth); err != nil {
			return "tls-untrusted-peer", fmt.Sprintf("the client (%s) does not trust the server certificate %s (%s) with its CA %s: %v", cl.origin, certName, server.Source, cl.caSDS, err), "", ""
		}
	}
	if cl.vc != nil {
		leaf, err := FirstCertificate(server.CertChainPEM)
		if err != nil {
			return "tls-untrusted-peer", err.Error(), "", ""
		}
		if ok, why := sanMatches(cl.vc, leaf); !ok {
			return "tls-untrusted-peer", fmt.Sprintf("the client (%s) rejects the server certificate %s: %s", cl.origin, certName, why), "", ""
		}
	}
	// The server validates the client certificate.
	var vc *tlsv3.CertificateValidationContext
	caName := ""
	switch v := ctc.GetValidationContextType().(type) {
	case *tlsv3.CommonTlsContext_CombinedValidationContext:
		vc = v.CombinedValidationContext.GetDefaultValidationContext()
		caName = v.CombinedValidationContext.GetValidationContextSdsSecretConfig().GetName()
	case *tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig:
		caName = v.ValidationContextSdsSecretConfig.GetName()
	case *tlsv3.CommonTlsContext_ValidationContext:
		vc = v.ValidationContext
	}
	requestsCert := caName != "" || vc != nil
	if dtc.GetRequireClientCertificate().GetValue() && cl.clientCert == nil {
		return "tls-client-cert-required", fmt.Sprintf("the chain requires a client certificate; the client (%s) presents none", cl.origin), "", ""
	}
	if cl.clientCert == nil || !requestsCert {
		return "", "", "", ""
	}
	if caName != "" {
		ca, err := proxySDS(c, pod, x, caName)
		if err != nil {
			if errors.Is(err, errMissingSecret) {
				return "tls-missing-secret", "client CA: " + err.Error(), "", ""
			}
			return "tls-untrusted-peer", err.Error(), "", ""
		}
		if err := verifyChain(cl.clientCert.CertChainPEM, ca.CACertPEM, x509.ExtKeyUsageClientAuth); err != nil {
			return "tls-untrusted-peer", fmt.Sprintf("the server's CA %s (%s) does not trust the client certificate %s of %s: %v", caName, ca.Source, cl.clientSDS, cl.origin, err), "", ""
		}
	}
	leaf, err := FirstCertificate(cl.clientCert.CertChainPEM)
	if err != nil {
		return "tls-untrusted-peer", err.Error(), "", ""
	}
	if vc != nil {
		if ok, why := sanMatches(vc, leaf); !ok {
			return "tls-untrusted-peer", "the server rejects the client certificate: " + why, "", ""
		}
	}
	p, u := certPrincipal(leaf)
	return "", "", p, u
}

// upstream follows one route target: the cluster, its endpoints, the upstream TLS, the next proxy.
func (t *tracer) upstream(c *Cluster, pod *corev1.Pod, x *ProxyXDS, kind ProxyKind, h Hop, prev []Hop, in conn, tg routeTarget, inner *tlsState) []pathOutcome {
	name := h.Hop
	out := conn{srcIP: pod.Status.PodIP, http: in.http, req: request{method: in.req.method, authority: tg.authority, path: tg.path, headers: tg.headers}}
	if kind == Sidecar && name == "workload" {
		// Inbound: the cluster is the app itself.
		if strings.HasPrefix(tg.cluster, "inbound|") || tg.cluster == "InboundPassthroughCluster" || tg.cluster == "InboundPassthroughClusterIpv4" || tg.cluster == "InboundPassthroughClusterIpv6" {
			h.Outcome = "passed"
			h.Detail = fmt.Sprintf("delivered to the app on port %d through %s", in.dstPort, tg.cluster)
			return []pathOutcome{{hops: append(append([]Hop{}, prev...), h), verdict: "reached"}}
		}
	}
	if tg.cluster == "BlackHoleCluster" {
		return refuse(h, prev, "blackhole", "the request is sent to BlackHoleCluster")
	}
	var cl *clusterpb.Cluster
	for _, cc := range x.Clusters {
		if cc.GetName() == tg.cluster {
			cl = cc
		}
	}
	if cl == nil {
		return refuse(h, prev, "no-cluster", "cluster "+tg.cluster+" is not in the proxy's CDS")
	}
	// Endpoints.
	type ep struct {
		ip   string
		port int
		md   *corepb.Metadata
	}
	var eps []ep
	addLB := func(cla *endpointpb.ClusterLoadAssignment) error {
		for _, lle := range cla.GetEndpoints() {
			for _, le := range lle.GetLbEndpoints() {
				hs := le.GetHealthStatus()
				if hs != corepb.HealthStatus_UNKNOWN && hs != corepb.HealthStatus_HEALTHY {
					continue
				}
				sa := le.GetEndpoint().GetAddress().GetSocketAddress()
				if sa == nil {
					return fmt.Errorf("cluster %s has an endpoint that is not a socket address (internal listener/tunnel): not modelled", tg.cluster)
				}
				eps = append(eps, ep{ip: sa.GetAddress(), port: int(sa.GetPortValue()), md: le.GetMetadata()})
			}
		}
		return nil
	}
	switch ct := cl.GetType(); {
	case cl.GetClusterDiscoveryType() == nil:
		return cannot(h, prev, "cluster "+tg.cluster+" has a custom cluster type: not modelled")
	case ct == clusterpb.Cluster_ORIGINAL_DST:
		eps = append(eps, ep{ip: in.dstIP, port: in.dstPort})
	case ct == clusterpb.Cluster_EDS:
		for _, cla := range x.Endpoints {
			if cla.GetClusterName() == tg.cluster {
				if err := addLB(cla); err != nil {
					return cannot(h, prev, err.Error())
				}
			}
		}
	default:
		if err := addLB(cl.GetLoadAssignment()); err != nil {
			return cannot(h, prev, err.Error())
		}
		for i := range eps {
			if net.ParseIP(eps[i].ip) == nil && !t.isLoadBalancerHostname(eps[i].ip) {
				ip, _, err := resolveHost(c, pod.Namespace, eps[i].ip+".")
				if err != nil {
					return cannot(h, prev, fmt.Sprintf("cluster %s endpoint %s is a DNS name outside the clusters: not modelled", tg.cluster, eps[i].ip))
				}
				eps[i].ip = ip
			}
		}
	}
	if len(eps) == 0 {
		return refuse(h, prev, "no-endpoints", "cluster "+tg.cluster+" has no healthy endpoint")
	}
	sort.SliceStable(eps, func(i, j int) bool { return eps[i].ip < eps[j].ip })
	e := eps[0]
	out.dstIP, out.dstPort = e.ip, e.port
	nx := &Next{Address: e.ip, Port: e.port, Authority: tg.authority, Endpoints: len(eps), TLS: "DISABLE"}
	if in.http {
		nx.Path = tg.path
	} else {
		nx.Authority = ""
	}
	h.Next = nx
	// Upstream TLS (transport socket, or the first transport_socket_matches entry the endpoint matches).
	ts := cl.GetTransportSocket()
	if ts == nil {
		for _, m := range cl.GetTransportSocketMatches() {
			if metadataSubset(m.GetMatch().GetFields(), e.md) {
				ts = m.GetTransportSocket()
				break
			}
		}
	}
	var up *tlsState
	if ts != nil && ts.GetName() == "envoy.transport_sockets.tls" {
		utc := &tlsv3.UpstreamTlsContext{}
		if err := ts.GetTypedConfig().UnmarshalTo(utc); err != nil {
			return cannot(h, prev, err.Error())
		}
		var reason, d string
		up, reason, d = t.upstreamTLS(c, pod, x, utc, in.http)
		if reason != "" {
			return refuse(h, prev, reason, d)
		}
		nx.TLS, nx.SNI, nx.ALPN, nx.ClientCertSecret, nx.PresentedPrincipal, nx.ValidationSecret = up.mode, up.sni, up.alpn, up.clientSDS, up.principal, up.caSDS
	} else if ts != nil && ts.GetName() != "envoy.transport_sockets.raw_buffer" {
		return cannot(h, prev, "upstream transport socket "+ts.GetName()+" not modelled")
	}
	switch {
	case inner != nil && up != nil:
		return cannot(h, prev, "TLS originated around a passed-through TLS session: not modelled")
	case inner != nil:
		out.tls = inner
		nx.TLS, nx.SNI, nx.ALPN, nx.PresentedPrincipal = "PASSTHROUGH("+inner.mode+")", inner.sni, inner.alpn, inner.principal
	default:
		out.tls = up
	}

	h.Outcome = "passed"
	if h.Detail == "" {
		h.Detail = fmt.Sprintf("%s -> %s -> %s:%d", h.Listener, tg.cluster, e.ip, e.port)
	}
	return t.handOff(c, pod, h, prev, out)
}

// handOff delivers a connection leaving pod (in cluster c) to the pod that receives it and runs that hop.
func (t *tracer) handOff(c *Cluster, pod *corev1.Pod, h Hop, prev []Hop, out conn) []pathOutcome {
	nc, npod, port, how, err := t.locate(c, out.dstIP, out.dstPort)
	if err != nil {
		return refuse(h, prev, "unreachable-address", err.Error())
	}
	if npod == nil {
		return refuse(h, prev, "no-endpoints", how)
	}
	if h.Next != nil {
		h.Next.To = fmt.Sprintf("%s/%s/%s:%d (%s)", nc.Name, npod.Namespace, npod.Name, port, how)
	} else {
		h.Detail += fmt.Sprintf(" -> %s/%s/%s:%d (%s)", nc.Name, npod.Namespace, npod.Name, port, how)
	}
	out.dstIP, out.dstPort = npod.Status.PodIP, port
	nkind := nc.PodProxyKind(npod)
	next := "workload"
	if nkind == Gateway {
		next = "provider-gateway"
		if nc.Name == c.Name && h.Hop == "client-sidecar" && !nc.exposed(npod) {
			// A gateway of the caller's own cluster that no LoadBalancer exposes is the consumer's egress
			// gateway; an exposed one (an ingress/east-west gateway) serves the provider side.
			next = "egress-gateway"
		}
	}
	if h.Hop == "client-sidecar" && npod.Namespace == pod.Namespace && npod.Name == pod.Name {
		return cannot(h, prev, "the call loops back to the calling pod")
	}
	return t.hop(next, nc, npod, out, append(append([]Hop{}, prev...), h), "")
}

func metadataSubset(want map[string]*structpb.Value, md *corepb.Metadata) bool {
	if len(want) == 0 {
		return true
	}
	got := md.GetFilterMetadata()["envoy.transport_socket_match"].GetFields()
	for k, v := range want {
		g, ok := got[k]
		if !ok || g.GetStringValue() != v.GetStringValue() {
			return false
		}
	}
	return true
}

// upstreamTLS builds the TLS session this proxy originates from an UpstreamTlsContext.
func (t *tracer) upstreamTLS(c *Cluster, pod *corev1.Pod, x *ProxyXDS, utc *tlsv3.UpstreamTlsContext, httpReq bool) (*tlsState, string, string) {
	ctc := utc.GetCommonTlsContext()
	st := &tlsState{sni: utc.GetSni(), alpn: ctc.GetAlpnProtocols(), origin: c.Name + " " + pod.Namespace + "/" + pod.Name}
	if certs := ctc.GetTlsCertificateSdsSecretConfigs(); len(certs) > 0 {
		st.clientSDS = certs[0].GetName()
		m, err := proxySDS(c, pod, x, st.clientSDS)
		if err != nil {
			if errors.Is(err, errMissingSecret) {
				return nil, "tls-missing-secret", "client certificate: " + err.Error()
			}
			return nil, "tls-untrusted-peer", err.Error()
		}
		st.clientCert = m
		leaf, err := FirstCertificate(m.CertChainPEM)
		if err != nil {
			return nil, "tls-untrusted-peer", fmt.Sprintf("client certificate %s (%s): %v", st.clientSDS, m.Source, err)
		}
		st.principal, st.uriSAN = certPrincipal(leaf)
	}
	switch {
	case st.clientSDS == "default":
		st.mode = "ISTIO_MUTUAL"
		if httpReq {
			// Istio's istio.alpn HTTP filter overrides the ALPN of ISTIO_MUTUAL upstreams for HTTP
			// (pilot/pkg/xds/filters/filters.go Alpn: istio-http/1.0, istio-http/1.1, istio-h2).
			st.alpn = []string{"istio-http/1.1"}
		}
	case st.clientSDS != "":
		st.mode = "MUTUAL"
	default:
		st.mode = "SIMPLE"
	}
	switch v := ctc.GetValidationContextType().(type) {
	case *tlsv3.CommonTlsContext_CombinedValidationContext:
		st.vc = v.CombinedValidationContext.GetDefaultValidationContext()
		st.caSDS = v.CombinedValidationContext.GetValidationContextSdsSecretConfig().GetName()
	case *tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig:
		st.caSDS = v.ValidationContextSdsSecretConfig.GetName()
	case *tlsv3.CommonTlsContext_ValidationContext:
		st.vc = v.ValidationContext
		if v.ValidationContext.GetTrustedCa() != nil {
			if b := v.ValidationContext.GetTrustedCa().GetInlineBytes(); len(b) > 0 {
				st.caPEM = b
			} else {
				return nil, "", "" // a CA file on the proxy's disk: trust not judged (see README)
			}
		}
	}
	if st.caSDS != "" {
		m, err := proxySDS(c, pod, x, st.caSDS)
		if err != nil {
			if errors.Is(err, errMissingSecret) {
				return nil, "tls-missing-secret", "validation CA: " + err.Error()
			}
			return nil, "tls-untrusted-peer", err.Error()
		}
		st.caPEM = m.CACertPEM
	}
	return st, "", ""
}

// locate maps an address a proxy connects to onto the pod that receives the connection: a pod IP of the
// same cluster; a ClusterIP of the same cluster (kube-proxy picks a ready pod); a Service's LoadBalancer
// ingress address in any cluster (the load balancer forwards to that Service's ready pods).
func (t *tracer) locate(c *Cluster, ip string, port int) (*Cluster, *corev1.Pod, int, string, error) {
	for _, p := range sortedPods(c.Pods) {
		for _, pip := range p.Status.PodIPs {
			if pip.IP == ip {
				return c, p, port, "pod IP", nil
			}
		}
	}
	viaService := func(cl *Cluster, svc *corev1.Service, how string) (*Cluster, *corev1.Pod, int, string, error) {
		for _, sp := range svc.Spec.Ports {
			if int(sp.Port) != port {
				continue
			}
			for _, p := range sortedPods(cl.ServicePods(svc)) {
				if !PodReady(p) {
					continue
				}
				tp, ok := TargetPort(sp, p)
				if !ok {
					continue
				}
				return cl, p, int(tp), fmt.Sprintf("%s of Service %s/%s in %s", how, svc.Namespace, svc.Name, cl.Name), nil
			}
			return cl, nil, 0, fmt.Sprintf("%s %s:%d is Service %s/%s in %s, which has no ready pod", how, ip, port, svc.Namespace, svc.Name, cl.Name), nil
		}
		return nil, nil, 0, "", fmt.Errorf("%s %s is Service %s/%s in %s, which has no port %d", how, ip, svc.Namespace, svc.Name, cl.Name, port)
	}
	for _, svc := range c.Services {
		if svc.Spec.ClusterIP == ip {
			return viaService(c, svc, "ClusterIP")
		}
	}
	for _, n := range t.st.Order {
		cl := t.st.Clusters[n]
		for _, svc := range cl.Services {
			for _, ing := range svc.Status.LoadBalancer.Ingress {
				if ing.IP == ip || (ing.Hostname != "" && ing.Hostname == ip) {
					return viaService(cl, svc, "LoadBalancer address")
				}
			}
		}
	}
	return nil, nil, 0, "", fmt.Errorf("%s:%d is no pod, ClusterIP or LoadBalancer address of any cluster", ip, port)
}

func serviceEntryHostsAddrs(spec any) ([]string, []string) {
	se, ok := spec.(*networking.ServiceEntry)
	if !ok {
		return nil, nil
	}
	return se.GetHosts(), se.GetAddresses()
}

// compact puts a multi-line message (xdstest prints JSON) on one line, at most 800 characters.
func compact(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 800 {
		s = s[:800] + "…"
	}
	return s
}

// exposed says whether a Service with a LoadBalancer selects the pod.
func (c *Cluster) exposed(p *corev1.Pod) bool {
	for _, svc := range c.Services {
		if svc.Namespace != p.Namespace || !selectorMatches(svc.Spec.Selector, p.Labels) {
			continue
		}
		if svc.Spec.Type == corev1.ServiceTypeLoadBalancer || len(svc.Status.LoadBalancer.Ingress) > 0 {
			return true
		}
	}
	return false
}

// proxySDS is the material behind an SDS name of one proxy, resolved once (the proxy's workload certificate
// stays the same for every use).
func proxySDS(c *Cluster, pod *corev1.Pod, x *ProxyXDS, name string) (*SecretMaterial, error) {
	if m, ok := x.Secrets[name]; ok {
		return m, nil
	}
	m, err := resolveSDS(c, pod.Namespace, x.Identity, name)
	if err != nil {
		return nil, err
	}
	x.Secrets[name] = m
	return m, nil
}

// isLoadBalancerHostname says whether a name is a Service's LoadBalancer ingress hostname in some cluster
// (cloud load balancers publish a DNS name instead of an IP).
func (t *tracer) isLoadBalancerHostname(name string) bool {
	for _, n := range t.st.Order {
		for _, svc := range t.st.Clusters[n].Services {
			for _, ing := range svc.Status.LoadBalancer.Ingress {
				if ing.Hostname != "" && ing.Hostname == name {
					return true
				}
			}
		}
	}
	return false
}
