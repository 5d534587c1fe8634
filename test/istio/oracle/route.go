package oracle

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// request is the HTTP request as one proxy sees it.
type request struct {
	method    string
	authority string
	path      string // incl. query
	headers   map[string]string
}

func (r request) headerMap() map[string]string {
	m := map[string]string{":authority": r.authority, ":path": r.path, ":method": r.method, ":scheme": "http"}
	for k, v := range r.headers {
		m[strings.ToLower(k)] = v
	}
	return m
}

// matchRoute is Envoy's route selection within a virtual host: the first route whose path, header and query
// matchers all match. (Istio's simulator matches the path only; VirtualServices match on headers too.)
func matchRoute(vh *routepb.VirtualHost, req request) (*routepb.Route, error) {
	hm := req.headerMap()
	pathOnly := req.path
	query := ""
	if i := strings.Index(pathOnly, "?"); i >= 0 {
		pathOnly, query = pathOnly[:i], pathOnly[i+1:]
	}
	for _, r := range vh.GetRoutes() {
		m := r.GetMatch()
		cs := m.GetCaseSensitive() == nil || m.GetCaseSensitive().GetValue()
		p, pfx := pathOnly, ""
		ok := false
		switch ps := m.GetPathSpecifier().(type) {
		case *routepb.RouteMatch_Prefix:
			pfx = ps.Prefix
			if cs {
				ok = strings.HasPrefix(p, pfx)
			} else {
				ok = strings.HasPrefix(strings.ToLower(p), strings.ToLower(pfx))
			}
		case *routepb.RouteMatch_Path:
			ok = p == ps.Path || (!cs && strings.EqualFold(p, ps.Path))
		case *routepb.RouteMatch_SafeRegex:
			ok = regexFull(ps.SafeRegex.GetRegex(), p)
		case *routepb.RouteMatch_PathSeparatedPrefix:
			pfx = ps.PathSeparatedPrefix
			ok = p == pfx || strings.HasPrefix(p, pfx+"/") || strings.HasPrefix(p, pfx+"?")
		default:
			return nil, fmt.Errorf("route %q: path matcher %T not modelled", r.GetName(), ps)
		}
		if !ok {
			continue
		}
		ev := &rbacEval{req: RBACRequest{HTTP: true, Headers: hm}, unjudged: map[string]bool{}}
		for _, h := range m.GetHeaders() {
			if !ev.header(h) {
				ok = false
				break
			}
		}
		if len(ev.unjudged) > 0 {
			return nil, fmt.Errorf("route %q: header matchers not modelled", r.GetName())
		}
		if !ok {
			continue
		}
		if len(m.GetQueryParameters()) > 0 {
			q, _ := url.ParseQuery(query)
			for _, qp := range m.GetQueryParameters() {
				vals, present := q[qp.GetName()]
				switch {
				case qp.GetPresentMatch():
					ok = ok && present
				case qp.GetStringMatch() != nil:
					ok = ok && present && len(vals) > 0 && StringMatch(qp.GetStringMatch(), vals[0])
				default:
					ok = ok && present
				}
			}
		}
		if !ok {
			continue
		}
		if m.GetRuntimeFraction() != nil || len(m.GetDynamicMetadata()) > 0 || m.GetFilterState() != nil {
			return nil, fmt.Errorf("route %q: runtime/metadata matchers not modelled", r.GetName())
		}
		_ = pfx
		return r, nil
	}
	return nil, nil
}

// routeTarget is one upstream a route sends to (one per weighted cluster).
type routeTarget struct {
	cluster   string
	weight    uint32
	authority string
	path      string
	headers   map[string]string
}

func applyHeaderMutations(hs []*corev3.HeaderValueOption, authority *string, headers map[string]string) {
	for _, h := range hs {
		k := strings.ToLower(h.GetHeader().GetKey())
		v := h.GetHeader().GetValue()
		if k == "host" || k == ":authority" {
			*authority = v
			continue
		}
		headers[k] = v
	}
}

// routeTargets computes where a matched route sends the request and with which authority and path:
// host_rewrite_literal (VirtualService rewrite.authority), request_headers_to_add setting host/:authority
// (headers.request.set.host), prefix_rewrite / regex_rewrite (rewrite.uri), weighted clusters.
func routeTargets(vh *routepb.VirtualHost, r *routepb.Route, req request) ([]routeTarget, error) {
	ra := r.GetRoute()
	base := routeTarget{authority: req.authority, path: req.path, headers: map[string]string{}}
	for k, v := range req.headers {
		base.headers[strings.ToLower(k)] = v
	}
	if lit := ra.GetHostRewriteLiteral(); lit != "" {
		base.authority = lit
	}
	if pr := ra.GetPrefixRewrite(); pr != "" {
		if pfx := r.GetMatch().GetPrefix(); pfx != "" && strings.HasPrefix(base.path, pfx) {
			base.path = pr + strings.TrimPrefix(base.path, pfx)
		} else if pfx := r.GetMatch().GetPath(); pfx != "" {
			base.path = pr
		}
	}
	if rr := ra.GetRegexRewrite(); rr != nil {
		re, err := regexp.Compile(rr.GetPattern().GetRegex())
		if err != nil {
			return nil, err
		}
		p, q := base.path, ""
		if i := strings.Index(p, "?"); i >= 0 {
			p, q = p[:i], p[i:]
		}
		base.path = re.ReplaceAllString(p, strings.ReplaceAll(rr.GetSubstitution(), `\`, "$")) + q
	}
	if ra.GetHostRewriteHeader() != "" || ra.GetHostRewritePathRegex() != nil {
		return nil, fmt.Errorf("route %q: host rewrite from a header/path not modelled", r.GetName())
	}
	applyHeaderMutations(vh.GetRequestHeadersToAdd(), &base.authority, base.headers)
	applyHeaderMutations(r.GetRequestHeadersToAdd(), &base.authority, base.headers)
	switch cs := ra.GetClusterSpecifier().(type) {
	case *routepb.RouteAction_Cluster:
		base.cluster = cs.Cluster
		base.weight = 100
		return []routeTarget{base}, nil
	case *routepb.RouteAction_WeightedClusters:
		var out []routeTarget
		for _, wc := range cs.WeightedClusters.GetClusters() {
			if wc.GetWeight().GetValue() == 0 {
				continue
			}
			t := base
			t.headers = map[string]string{}
			for k, v := range base.headers {
				t.headers[k] = v
			}
			t.cluster = wc.GetName()
			t.weight = wc.GetWeight().GetValue()
			if lit := wc.GetHostRewriteLiteral(); lit != "" {
				t.authority = lit
			}
			applyHeaderMutations(wc.GetRequestHeadersToAdd(), &t.authority, t.headers)
			out = append(out, t)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("route %q: cluster specifier %T not modelled", r.GetName(), cs)
	}
}
