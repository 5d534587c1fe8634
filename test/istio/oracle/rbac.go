package oracle

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacpb "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	httprbac "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	netrbac "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// RBACRequest is what Envoy's RBAC filters see of one connection/request.
type RBACRequest struct {
	// PeerPrincipal is the name Envoy's Authenticated matcher takes from the peer certificate: the URI SAN,
	// else the DNS SAN, else the subject. Empty when the connection carries no verified client certificate.
	PeerPrincipal string
	// PeerURISAN is the URI SAN of the peer certificate, which Istio's proxy puts in the filter state
	// io.istio.peer_principal (matched by the FilterState principals Istio emits when it does not use
	// Authenticated).
	PeerURISAN string
	SNI        string
	DestIP     string
	DestPort   int
	SourceIP   string
	// HTTP is false for a network (TCP) RBAC evaluation.
	HTTP    bool
	Headers map[string]string // lower-case names, incl. ":authority", ":path", ":method"
}

// RBACFilterResult is one RBAC filter's decision.
type RBACFilterResult struct {
	Filter  string   `json:"filter"`
	Action  string   `json:"action"`
	Matched []string `json:"matched"`
	Allowed bool     `json:"allowed"`
}

// RBACOutcome summarises every RBAC filter of a chain, in order.
type RBACOutcome struct {
	Policy    string             `json:"policy"`
	Action    string             `json:"action"`
	Matched   bool               `json:"matched"`
	Principal string             `json:"principal"`
	Filters   []RBACFilterResult `json:"filters,omitempty"`
	Allowed   bool               `json:"allowed"`
	// Unjudged names matchers the evaluator does not model (it never guesses: the trace then cannot judge).
	Unjudged []string `json:"unjudged,omitempty"`
}

type rbacEval struct {
	req      RBACRequest
	unjudged map[string]bool
}

// EvaluateChainRBAC evaluates the RBAC filters Istio put in a filter chain: the network RBAC filters, then
// (for an HTTP connection manager) the HTTP RBAC filters, each in order, as Envoy runs them. Shadow rules
// are ignored (they never decide). Returns nil when the chain has no RBAC filter.
func EvaluateChainRBAC(fc *listener.FilterChain, req RBACRequest) (*RBACOutcome, error) {
	type entry struct {
		name  string
		rules *rbacpb.RBAC
	}
	var entries []entry
	for _, f := range fc.GetFilters() {
		switch f.GetName() {
		case "envoy.filters.network.rbac":
			cfg := &netrbac.RBAC{}
			if err := f.GetTypedConfig().UnmarshalTo(cfg); err != nil {
				return nil, err
			}
			entries = append(entries, entry{"network:" + cfg.GetStatPrefix(), cfg.GetRules()})
		case "envoy.filters.network.http_connection_manager":
			if !req.HTTP {
				continue
			}
			h := &hcm.HttpConnectionManager{}
			if err := f.GetTypedConfig().UnmarshalTo(h); err != nil {
				return nil, err
			}
			for _, hf := range h.GetHttpFilters() {
				if hf.GetName() != "envoy.filters.http.rbac" {
					continue
				}
				cfg := &httprbac.RBAC{}
				if err := hf.GetTypedConfig().UnmarshalTo(cfg); err != nil {
					return nil, err
				}
				entries = append(entries, entry{"http", cfg.GetRules()})
			}
		}
	}
	if len(entries) == 0 {
		return nil, nil
	}
	out := &RBACOutcome{Allowed: true, Principal: req.PeerPrincipal}
	ev := &rbacEval{req: req, unjudged: map[string]bool{}}
	for _, e := range entries {
		if e.rules == nil {
			continue // shadow rules only
		}
		r := RBACFilterResult{Filter: e.name, Action: e.rules.GetAction().String(), Matched: []string{}}
		names := make([]string, 0, len(e.rules.GetPolicies()))
		for n := range e.rules.GetPolicies() {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			p := e.rules.GetPolicies()[n]
			if ev.policy(p) {
				r.Matched = append(r.Matched, n)
			}
		}
		switch e.rules.GetAction() {
		case rbacpb.RBAC_ALLOW:
			r.Allowed = len(r.Matched) > 0
		case rbacpb.RBAC_DENY:
			r.Allowed = len(r.Matched) == 0
		default: // LOG never decides
			r.Allowed = true
		}
		out.Filters = append(out.Filters, r)
		if out.Action == "" || (out.Allowed && !r.Allowed) {
			out.Action = r.Action
			out.Matched = len(r.Matched) > 0
			out.Policy = strings.Join(r.Matched, ",")
		}
		if !r.Allowed && out.Allowed {
			out.Allowed = false
			out.Action = r.Action
			out.Matched = len(r.Matched) > 0
			out.Policy = strings.Join(r.Matched, ",")
			if r.Action == "ALLOW" {
				out.Policy = "(no ALLOW policy matched)"
			}
		}
	}
	for u := range ev.unjudged {
		out.Unjudged = append(out.Unjudged, u)
	}
	sort.Strings(out.Unjudged)
	return out, nil
}

func (e *rbacEval) policy(p *rbacpb.Policy) bool {
	if p.GetCondition() != nil || p.GetCheckedCondition() != nil {
		e.unjudged["policy condition (CEL)"] = true
		return false
	}
	perm := false
	for _, pm := range p.GetPermissions() {
		if e.permission(pm) {
			perm = true
			break
		}
	}
	if !perm {
		return false
	}
	for _, pr := range p.GetPrincipals() {
		if e.principal(pr) {
			return true
		}
	}
	return false
}

func (e *rbacEval) permission(p *rbacpb.Permission) bool {
	switch r := p.GetRule().(type) {
	case *rbacpb.Permission_Any:
		return r.Any
	case *rbacpb.Permission_AndRules:
		for _, x := range r.AndRules.GetRules() {
			if !e.permission(x) {
				return false
			}
		}
		return true
	case *rbacpb.Permission_OrRules:
		for _, x := range r.OrRules.GetRules() {
			if e.permission(x) {
				return true
			}
		}
		return false
	case *rbacpb.Permission_NotRule:
		return !e.permission(r.NotRule)
	case *rbacpb.Permission_DestinationPort:
		return int(r.DestinationPort) == e.req.DestPort
	case *rbacpb.Permission_DestinationPortRange:
		return int32(e.req.DestPort) >= r.DestinationPortRange.GetStart() && int32(e.req.DestPort) < r.DestinationPortRange.GetEnd()
	case *rbacpb.Permission_DestinationIp:
		return cidrContains(r.DestinationIp, e.req.DestIP)
	case *rbacpb.Permission_RequestedServerName:
		return e.stringMatch(r.RequestedServerName, e.req.SNI, true)
	case *rbacpb.Permission_Header:
		return e.header(r.Header)
	case *rbacpb.Permission_UrlPath:
		path := e.req.Headers[":path"]
		if i := strings.IndexAny(path, "?#"); i >= 0 {
			path = path[:i]
		}
		if !e.req.HTTP {
			return false
		}
		return e.stringMatch(r.UrlPath.GetPath(), path, false)
	default:
		e.unjudged[fmt.Sprintf("permission %T", r)] = true
		return false
	}
}

func (e *rbacEval) principal(p *rbacpb.Principal) bool {
	switch r := p.GetIdentifier().(type) {
	case *rbacpb.Principal_Any:
		return r.Any
	case *rbacpb.Principal_AndIds:
		for _, x := range r.AndIds.GetIds() {
			if !e.principal(x) {
				return false
			}
		}
		return true
	case *rbacpb.Principal_OrIds:
		for _, x := range r.OrIds.GetIds() {
			if e.principal(x) {
				return true
			}
		}
		return false
	case *rbacpb.Principal_NotId:
		return !e.principal(r.NotId)
	case *rbacpb.Principal_Authenticated_:
		if e.req.PeerPrincipal == "" {
			return false
		}
		if r.Authenticated.GetPrincipalName() == nil {
			return true
		}
		return e.stringMatch(r.Authenticated.GetPrincipalName(), e.req.PeerPrincipal, false)
	case *rbacpb.Principal_FilterState:
		fs := r.FilterState
		if fs.GetKey() != "io.istio.peer_principal" {
			e.unjudged["filter_state "+fs.GetKey()] = true
			return false
		}
		if e.req.PeerURISAN == "" {
			return false
		}
		if sm := fs.GetStringMatch(); sm != nil {
			return e.stringMatch(sm, e.req.PeerURISAN, false)
		}
		e.unjudged["filter_state matcher without a string match"] = true
		return false
	case *rbacpb.Principal_SourceIp:
		return cidrContains(r.SourceIp, e.req.SourceIP)
	case *rbacpb.Principal_DirectRemoteIp:
		return cidrContains(r.DirectRemoteIp, e.req.SourceIP)
	case *rbacpb.Principal_RemoteIp:
		return cidrContains(r.RemoteIp, e.req.SourceIP)
	case *rbacpb.Principal_Header:
		return e.header(r.Header)
	case *rbacpb.Principal_UrlPath:
		return e.req.HTTP && e.stringMatch(r.UrlPath.GetPath(), e.req.Headers[":path"], false)
	case *rbacpb.Principal_Metadata:
		// Istio emits dynamic-metadata principals for JWT claims (request.auth.*): the oracle's calls
		// carry no JWT, so such a principal never matches (as in Envoy without a validated token).
		if strings.HasPrefix(r.Metadata.GetFilter(), "envoy.filters.http.jwt_authn") || r.Metadata.GetFilter() == "istio_authn" {
			return false
		}
		e.unjudged["metadata "+r.Metadata.GetFilter()] = true
		return false
	default:
		e.unjudged[fmt.Sprintf("principal %T", r)] = true
		return false
	}
}

func (e *rbacEval) header(h *routepb.HeaderMatcher) bool {
	name := strings.ToLower(h.GetName())
	if name == "host" {
		name = ":authority"
	}
	v, present := e.req.Headers[name]
	if !e.req.HTTP {
		present = false
	}
	var res bool
	switch m := h.GetHeaderMatchSpecifier().(type) {
	case *routepb.HeaderMatcher_PresentMatch:
		res = present == m.PresentMatch
	case *routepb.HeaderMatcher_ExactMatch:
		res = present && v == m.ExactMatch
	case *routepb.HeaderMatcher_PrefixMatch:
		res = present && strings.HasPrefix(v, m.PrefixMatch)
	case *routepb.HeaderMatcher_SuffixMatch:
		res = present && strings.HasSuffix(v, m.SuffixMatch)
	case *routepb.HeaderMatcher_ContainsMatch:
		res = present && strings.Contains(v, m.ContainsMatch)
	case *routepb.HeaderMatcher_SafeRegexMatch:
		res = present && regexFull(m.SafeRegexMatch.GetRegex(), v)
	case *routepb.HeaderMatcher_StringMatch:
		res = present && e.stringMatch(m.StringMatch, v, false)
	case nil:
		res = present
	default:
		e.unjudged[fmt.Sprintf("header matcher %T", m)] = true
		return false
	}
	if h.GetInvertMatch() {
		return !res
	}
	return res
}

func (e *rbacEval) stringMatch(m *matcher.StringMatcher, v string, _ bool) bool {
	return StringMatch(m, v)
}

// StringMatch is Envoy's StringMatcher.
func StringMatch(m *matcher.StringMatcher, v string) bool {
	if m == nil {
		return true
	}
	a := v
	if m.GetIgnoreCase() {
		a = strings.ToLower(v)
	}
	low := func(s string) string {
		if m.GetIgnoreCase() {
			return strings.ToLower(s)
		}
		return s
	}
	switch p := m.GetMatchPattern().(type) {
	case *matcher.StringMatcher_Exact:
		return a == low(p.Exact)
	case *matcher.StringMatcher_Prefix:
		return strings.HasPrefix(a, low(p.Prefix))
	case *matcher.StringMatcher_Suffix:
		return strings.HasSuffix(a, low(p.Suffix))
	case *matcher.StringMatcher_Contains:
		return strings.Contains(a, low(p.Contains))
	case *matcher.StringMatcher_SafeRegex:
		return regexFull(p.SafeRegex.GetRegex(), v)
	}
	return false
}

func regexFull(re, v string) bool {
	r, err := regexp.Compile("^(?:" + re + ")$")
	if err != nil {
		return false
	}
	return r.MatchString(v)
}

func cidrContains(c *core.CidrRange, ip string) bool {
	if c == nil || ip == "" {
		return false
	}
	pfx, err := netip.ParsePrefix(fmt.Sprintf("%s/%d", c.GetAddressPrefix(), c.GetPrefixLen().GetValue()))
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	return pfx.Contains(a)
}
