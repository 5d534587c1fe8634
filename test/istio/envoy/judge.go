package envoy

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"meshfed.test/istio/oracle"
)

// ValidateJudge is the oracle's proxy-config judge for `--envoy validate`: every proxy config built along
// a traced path goes through Build and `envoy --mode validate`.
type ValidateJudge struct {
	mu      sync.Mutex
	timings []Timing
}

// Timing is how long one envoy --mode validate took.
type Timing struct {
	Proxy    string
	Duration time.Duration
}

// NewValidateJudge checks that Envoy is installed.
func NewValidateJudge() (*ValidateJudge, error) {
	if _, err := Version(); err != nil {
		return nil, err
	}
	return &ValidateJudge{}, nil
}

func (j *ValidateJudge) Name() string { return "envoy" }

// Judge returns nil when Envoy accepts the proxy's config, else Envoy's own message.
//
// An SDS name the oracle has no material for (a credentialName whose Secret does not exist) is not a
// config Envoy rejects: a real Envoy keeps that listener or cluster warming. The trace reports it itself
// (tls-missing-secret); for validation the name is backed by a throwaway self-signed certificate, so the
// rest of the config is still checked.
func (j *ValidateJudge) Judge(p *oracle.ProxyXDS) error {
	r, err := Build(p, Options{})
	if err != nil {
		return err
	}
	if len(r.MissingSecrets) > 0 {
		if err := backMissingSecrets(r); err != nil {
			return err
		}
	}
	key, keyed := cacheKey(r.Bootstrap, p)
	if keyed {
		if found, rejection := cachedVerdict(key); found {
			if rejection != "" {
				return &RejectedError{Output: rejection}
			}
			return nil
		}
	}
	start := time.Now()
	err = Validate(r.Bootstrap)
	j.mu.Lock()
	j.timings = append(j.timings, Timing{Proxy: p.Hop + " " + p.Cluster + "/" + p.Namespace + "/" + p.Pod, Duration: time.Since(start)})
	j.mu.Unlock()
	var rej *RejectedError
	switch {
	case err == nil && keyed:
		storeVerdict(key, "")
	case errors.As(err, &rej) && keyed:
		storeVerdict(key, rej.Output)
	}
	return err
}

// Timings are the validate runs so far.
func (j *ValidateJudge) Timings() []Timing {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]Timing(nil), j.timings...)
}

func backMissingSecrets(r *Result) error {
	ca, err := NewCA("throwaway CA for an SDS secret the state lacks")
	if err != nil {
		return err
	}
	chain, key, err := ca.Issue("missing secret", nil, []string{"missing.invalid"})
	if err != nil {
		return err
	}
	m := &oracle.SecretMaterial{CertChainPEM: chain, PrivateKeyPEM: key, CACertPEM: ca.RootPEM}
	for _, n := range r.MissingSecrets {
		s, err := staticSecret(n, r.uses[n], m)
		if err != nil {
			return err
		}
		r.Bootstrap.StaticResources.Secrets = append(r.Bootstrap.StaticResources.Secrets, s)
	}
	return nil
}

// LiveRunner is the oracle's live judge for `--envoy live`: the gateways of the traced path run as real
// Envoy processes on loopback (127.0.0.2, 127.0.0.3, ...), each gateway's upstream cluster on the path
// points at the next one, the last at a backend standing in for the workload, and a client playing the
// calling pod's sidecar sends the traced request (HTTP GET or one TCP line) to the first gateway with the
// SNI, ALPN, authority and client certificate the trace found.
type LiveRunner struct {
	// Headers are sent with the HTTP request (the trace's --header values); Method is its method (GET).
	Headers map[string]string
	Method  string
	// Timings of the last run: gateway start-up times.
	Timings []Timing
}

// SetRequest gives the live request the traced call's extra headers and method.
func (lr *LiveRunner) SetRequest(headers map[string]string, method string) {
	lr.Headers, lr.Method = headers, method
}

// Live runs the traced path through real Envoys.
func (lr *LiveRunner) Live(res *oracle.Result) (*oracle.LiveOutcome, error) {
	lr.Timings = nil
	byHop := map[string]*oracle.ProxyXDS{}
	for _, p := range res.Proxies {
		if _, ok := byHop[p.Hop]; !ok {
			byHop[p.Hop] = p
		}
	}
	if len(res.Hops) == 0 || res.Hops[0].Hop != "client-sidecar" || res.Hops[0].Next == nil || byHop["client-sidecar"] == nil {
		return nil, errors.New("the trace has no client-sidecar hop with a next hop to send from")
	}
	var gws []oracle.Hop
	for _, h := range res.Hops[1:] {
		if h.Hop == "workload" {
			break
		}
		if byHop[h.Hop] == nil {
			return nil, fmt.Errorf("the trace built no config for the %s hop", h.Hop)
		}
		gws = append(gws, h)
	}
	if len(gws) == 0 {
		return nil, errors.New("no gateway on the traced path: --envoy live runs the federation gateways (boundary or shared-root)")
	}
	u, err := url.Parse(res.Call.URL)
	if err != nil {
		return nil, err
	}
	proto := HTTP
	if u.Scheme == "tcp" {
		proto = TCP
	}

	// The backend: the workload's own certificate and root when the trace built its config. Else (the
	// trace stopped before the workload, e.g. refused at the provider gateway) it presents a certificate of
	// a throwaway CA with the SANs the last gateway's upstream cluster verifies, and that CA is added to
	// the gateway's validation secret for this run: the mesh-internal hop is played, the federation hops
	// are untouched.
	var backend *Backend
	wl := byHop["workload"]
	backendName := "workload"
	if wl != nil {
		backendName = wl.Namespace + "/" + wl.Pod
	}
	last := gws[len(gws)-1]
	// The last gateway's upstream: the cluster the trace followed; when the trace refused the request at that
	// gateway it followed none, and every cluster of the gateway leads to the backend (any upstream
	// connection is the request leaving the gateway).
	lastUpstreams := []string{last.UpstreamCluster}
	if last.UpstreamCluster == "" {
		lastUpstreams = nil
		for _, c := range byHop[last.Hop].Clusters {
			lastUpstreams = append(lastUpstreams, c.Name)
		}
	}
	if wl != nil && wl.Secrets["default"] != nil && wl.Secrets["ROOTCA"] != nil {
		backend, err = startBackendWith(backendName, "127.0.0.250", wl.Secrets["default"], wl.Secrets["ROOTCA"].CACertPEM, proto)
	} else {
		var px *oracle.ProxyXDS
		px, backend, err = playedWorkload(byHop[last.Hop], lastUpstreams, backendName, proto)
		byHop[last.Hop] = px
	}
	if err != nil {
		return nil, fmt.Errorf("backend: %v", err)
	}
	defer backend.Close()

	// Start from the last gateway back to the first: each needs the address of the one after it.
	procs := make([]*Process, len(gws))
	defer func() {
		for _, p := range procs {
			if p != nil {
				p.Stop()
			}
		}
	}()
	next := backend.Addr
	for i := len(gws) - 1; i >= 0; i-- {
		h := gws[i]
		px := byHop[h.Hop]
		port, err := listenerPort(px, h, res.Hops, i+1)
		if err != nil {
			return nil, err
		}
		ce := map[string]string{}
		if h.UpstreamCluster != "" {
			ce[h.UpstreamCluster] = next
		}
		if i == len(gws)-1 {
			for _, c := range lastUpstreams {
				ce[c] = next
			}
		}
		start := time.Now()
		p, err := StartProxy(h.Hop, px, LiveOptions{IP: "127.0.0." + strconv.Itoa(2+i), Ports: []uint32{port}, ClusterEndpoints: ce})
		if err != nil {
			return nil, err
		}
		lr.Timings = append(lr.Timings, Timing{Proxy: h.Hop + " start-up", Duration: time.Since(start)})
		procs[i] = p
		next = p.Addr(port)
	}

	// The client plays the calling pod's sidecar.
	cs := res.Hops[0]
	sidecar := byHop["client-sidecar"]
	c := &Client{SNI: cs.Next.SNI, ALPN: cs.Next.ALPN, Headers: lr.Headers, Method: lr.Method}
	switch cs.Next.TLS {
	case "", "DISABLE", "NONE", "none", "plaintext":
		c.Plain = true
	default:
		cert := sidecar.Secrets[orDefault(cs.Next.ClientCertSecret, "default")]
		root := sidecar.Secrets[orDefault(cs.Next.ValidationSecret, "ROOTCA")]
		if cs.Next.TLS == "ISTIO_MUTUAL" || cs.Next.ClientCertSecret != "" {
			if cert == nil {
				return nil, fmt.Errorf("client sidecar: no material for SDS %q", orDefault(cs.Next.ClientCertSecret, "default"))
			}
			c.CertChainPEM, c.KeyPEM = cert.CertChainPEM, cert.PrivateKeyPEM
		}
		if root != nil {
			c.RootPEM = root.CACertPEM
		}
	}
	out := &oracle.LiveOutcome{}
	target := next
	if proto == TCP {
		got, err := c.Line(target, "meshfed live probe")
		switch {
		case err == nil && strings.HasSuffix(got, "echo: meshfed live probe"):
			out.Reached, out.Detail = true, "TCP echo from the backend: "+got
		case err != nil:
			out.Detail = "TCP: " + err.Error()
		default:
			out.Detail = fmt.Sprintf("TCP: got %q instead of the backend's echo", got)
		}
	} else {
		authority := orDefault(cs.Next.Authority, u.Host)
		path := orDefault(cs.Next.Path, u.RequestURI())
		r, err := c.Get(target, authority, path)
		switch {
		case err != nil:
			out.Detail = "HTTP: " + err.Error()
		case r.Status == 200 && strings.Contains(r.Body, "backend "+backendName+" reached"):
			out.Reached, out.Detail = true, "HTTP 200 from the backend: "+strings.TrimSpace(r.Body)
		default:
			out.Detail = fmt.Sprintf("HTTP %d: %s", r.Status, firstLine(r.Body))
		}
	}
	// What the Envoys counted: RBAC denials, failed upstream connections and handshakes.
	for i, p := range procs {
		var notes []string
		for _, c := range []struct{ suffix, what string }{
			{".rbac.denied", "RBAC denied"},
			{".upstream_cx_connect_fail", "upstream connect failures"},
			{".ssl.fail_verify_san", "upstream certificates with the wrong SAN"},
			{".ssl.fail_verify_error", "certificates failing verification"},
			{".ssl.connection_error", "TLS connection errors"},
		} {
			if n := p.Counter(c.suffix); n > 0 {
				notes = append(notes, fmt.Sprintf("%s %d", c.what, n))
			}
		}
		if len(notes) > 0 {
			out.Detail += fmt.Sprintf(" [%s: %s]", gws[i].Hop, strings.Join(notes, ", "))
		}
	}
	return out, nil
}

// playedWorkload starts a backend with a throwaway CA's certificate carrying the SANs the gateway's
// upstream cluster verifies, and returns a copy of the gateway's config whose validation secret for that
// cluster also trusts the throwaway CA.
func playedWorkload(gw *oracle.ProxyXDS, upstreams []string, name string, proto Protocol) (*oracle.ProxyXDS, *Backend, error) {
	ca, err := NewCA("throwaway CA playing the workload")
	if err != nil {
		return nil, nil, err
	}
	want := map[string]bool{}
	for _, u := range upstreams {
		want[u] = true
	}
	var sans []string
	vsNames := map[string]bool{}
	for _, c := range gw.Clusters {
		if !want[c.Name] {
			continue
		}
		if up, err := upstreamTLS(c); err == nil {
			ctx := up.GetCommonTlsContext()
			for _, m := range ctx.GetCombinedValidationContext().GetDefaultValidationContext().GetMatchSubjectAltNames() {
				if m.GetExact() != "" {
					sans = append(sans, m.GetExact())
				}
			}
			if n := ctx.GetCombinedValidationContext().GetValidationContextSdsSecretConfig().GetName(); n != "" {
				vsNames[n] = true
			}
			if n := ctx.GetValidationContextSdsSecretConfig().GetName(); n != "" {
				vsNames[n] = true
			}
		}
	}
	var uris, dns []string
	seen := map[string]bool{}
	for _, s := range sans {
		if seen[s] {
			continue
		}
		seen[s] = true
		if strings.Contains(s, "://") {
			uris = append(uris, s)
		} else {
			dns = append(dns, s)
		}
	}
	chain, key, err := ca.Issue("workload played by the oracle", uris, dns)
	if err != nil {
		return nil, nil, err
	}
	// The backend trusts the gateway's own mesh root (its client certificate "default").
	clientRoot := ca.RootPEM
	if r := gw.Secrets["ROOTCA"]; r != nil {
		clientRoot = append(append([]byte{}, r.CACertPEM...), ca.RootPEM...)
	}
	b, err := startBackendWith(name, "127.0.0.250", &oracle.SecretMaterial{CertChainPEM: chain, PrivateKeyPEM: key}, clientRoot, proto)
	if err != nil {
		return nil, nil, err
	}
	cp := *gw
	cp.Secrets = map[string]*oracle.SecretMaterial{}
	for k, v := range gw.Secrets {
		cp.Secrets[k] = v
	}
	for vsName := range vsNames {
		m := &oracle.SecretMaterial{Source: "played workload"}
		if old := gw.Secrets[vsName]; old != nil {
			m.CACertPEM = append(append([]byte{}, old.CACertPEM...), ca.RootPEM...)
		} else {
			m.CACertPEM = ca.RootPEM
		}
		cp.Secrets[vsName] = m
	}
	return &cp, b, nil
}

// listenerPort is the port of the listener the trace matched on a gateway hop (else the port the
// previous hop sent to).
func listenerPort(px *oracle.ProxyXDS, h oracle.Hop, hops []oracle.Hop, idx int) (uint32, error) {
	for _, l := range px.Listeners {
		if l.Name == h.Listener {
			if p := l.GetAddress().GetSocketAddress().GetPortValue(); p != 0 {
				return p, nil
			}
		}
	}
	if idx > 0 && hops[idx-1].Next != nil && hops[idx-1].Next.Port > 0 {
		return uint32(hops[idx-1].Next.Port), nil
	}
	return 0, fmt.Errorf("%s: no listener port", h.Hop)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
