package envoy

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	bootstrap "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tls "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	"meshfed.test/istio/oracle"
)

// Istio-only extensions. Istio's proxy image (istio/proxy) is Envoy plus extensions of its own; the
// upstream Envoy from PyPI does not have them and rejects a config that names them ("Didn't find a
// registered implementation"). They are removed before Envoy sees the config. None of them decides
// where traffic goes or whether it is allowed: they exchange and record peer metadata for telemetry,
// or pick the ALPN announced upstream. RBAC, TLS contexts, routes, tcp_proxy and the
// http_connection_manager are never removed.
//
// Each entry is keyed by the extension's type URL (for a udpa/xds TypedStruct, the type URL inside it).
// Sources, Istio at the pinned module version:
//   - pilot/pkg/xds/filters/filters.go: PeerMetadataTypeURL, MetadataExchangeTypeURL,
//     HBONEListenerPeerMetadataTypeURL, HBONEClusterPeerMetadataTypeURL (TCPClusterMx, TCPListenerMx,
//     SidecarInboundMetadataFilter, SidecarOutboundMetadataFilter, Waypoint*MetadataFilter), Alpn
//     (AlpnFilterName "istio.alpn", istio.io/api envoy/config/filter/http/alpn/v2alpha1).
//   - pilot/pkg/model/telemetry.go generateStatsConfig (stats.PluginConfig, the "istio.stats" filter).
var istioOnly = map[string]string{
	"type.googleapis.com/io.istio.http.peer_metadata.Config": "Istio's HTTP peer-metadata filter (istio.metadata_exchange): " +
		"exchanges workload metadata in headers for telemetry only",
	"type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange": "Istio's TCP metadata exchange " +
		"(istio.metadata_exchange, ALPN istio-peer-exchange): peer metadata for telemetry only",
	"type.googleapis.com/envoy.extensions.network_filters.peer_metadata.Config": "Istio's HBONE peer-metadata " +
		"listener filter (baggage): telemetry only",
	"type.googleapis.com/envoy.extensions.network_filters.peer_metadata.UpstreamConfig": "Istio's HBONE " +
		"peer-metadata upstream filter (baggage): telemetry only",
	"type.googleapis.com/stats.PluginConfig": "Istio's stats filter (istio.stats): Prometheus metrics only",
	"type.googleapis.com/istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig": "Istio's ALPN override " +
		"filter (istio.alpn): sets the ALPN offered upstream (istio-http/1.1, istio, ...) to tell the peer " +
		"sidecar it talks to an Istio proxy; the TLS handshake, certificates and SNI are unchanged",
	"type.googleapis.com/istio.envoy.config.filter.http.authn.v2alpha1.FilterConfig": "Istio's legacy authn " +
		"filter (istio_authn): fills request principals for telemetry; older Istio only",
}

// nullVMRuntime is the Wasm runtime of Istio's compiled-in Wasm plugins (stats, metadata exchange),
// which exist only in Istio's proxy build.
const nullVMRuntime = "envoy.wasm.runtime.null"

// Dropped is one extension removed from the config.
type Dropped struct {
	Where  string // path in the config, e.g. listener 0.0.0.0_15443 / filter chain 0 / http_filters
	Name   string // the filter's name
	Type   string // its type URL
	Reason string
}

// Options control the static bootstrap.
type Options struct {
	// AdminAddress is the admin listener, "ip:port"; default 127.0.0.1:0 (any free port).
	AdminAddress string
	// Listeners, when non-nil, rewrites the address of each listener whose port is a key to the value
	// ("127.0.0.x:port") and drops every other listener (live mode).
	Listeners map[uint32]string
	// Endpoints rewrites upstream endpoint addresses: key and value are "ip:port" (live mode: the
	// provider gateway's LoadBalancer address -> its loopback listener, a pod -> the backend).
	Endpoints map[string]string
	// ClusterEndpoints replaces every endpoint of the named clusters by one address "ip:port" (live mode:
	// a gateway's upstream cluster on the traced path -> the next live proxy or the backend).
	ClusterEndpoints map[string]string
}

// Result is a static bootstrap built from one proxy's xDS.
type Result struct {
	Bootstrap *bootstrap.Bootstrap
	// Dropped lists the Istio-only extensions removed.
	Dropped []Dropped
	// MissingSecrets are SDS names the config uses that have no material in ProxyXDS.Secrets (a real
	// Envoy would keep the listener or cluster warming forever).
	MissingSecrets []string
	// ListenerAddresses maps a kept listener's name to the address it binds.
	ListenerAddresses map[string]string

	uses map[string]*secretUse
}

// MissingSecretsError is returned when the config names SDS secrets the oracle has no material for.
type MissingSecretsError struct{ Names []string }

func (e *MissingSecretsError) Error() string {
	return "no material for SDS secret(s) " + strings.Join(e.Names, ", ") +
		" (a real Envoy keeps the listener or cluster warming and serves nothing on it)"
}

// JSON renders a bootstrap as Envoy reads it with `-c <file>.json`.
func JSON(b *bootstrap.Bootstrap) ([]byte, error) {
	return protojson.MarshalOptions{Indent: "  ", UseProtoNames: true}.Marshal(b)
}

type secretUse struct {
	cert bool
	ca   bool
}

type builder struct {
	p       *oracle.ProxyXDS
	opts    Options
	routes  map[string]*route.RouteConfiguration
	secrets map[string]*secretUse
	dropped []Dropped
}

// Build turns one proxy's xDS into a static Envoy bootstrap:
//   - RDS in an http_connection_manager becomes the inline route_config of that name;
//   - an EDS cluster becomes a STATIC cluster whose load_assignment is the ClusterLoadAssignment Istio
//     built for it;
//   - every SDS reference (default, ROOTCA, kubernetes://..., file-cert:...) keeps its name but loses its
//     config source, so Envoy takes it from static_resources.secrets, filled from ProxyXDS.Secrets;
//   - Istio-only extensions are removed (see istioOnly).
//
// The input is not modified.
func Build(p *oracle.ProxyXDS, opts Options) (*Result, error) {
	b := &builder{p: p, opts: opts, routes: map[string]*route.RouteConfiguration{}, secrets: map[string]*secretUse{}}
	for _, r := range p.Routes {
		b.routes[r.GetName()] = r
	}
	cla := map[string]*endpoint.ClusterLoadAssignment{}
	for _, e := range p.Endpoints {
		cla[e.GetClusterName()] = e
	}
	res := &Result{ListenerAddresses: map[string]string{}}
	sr := &bootstrap.Bootstrap_StaticResources{}

	for _, l0 := range p.Listeners {
		l := proto.Clone(l0).(*listener.Listener)
		if opts.Listeners != nil {
			sa := l.GetAddress().GetSocketAddress()
			to, ok := opts.Listeners[sa.GetPortValue()]
			if sa == nil || !ok {
				continue
			}
			if err := setSocketAddress(l.Address, to); err != nil {
				return nil, fmt.Errorf("listener %s: %v", l.Name, err)
			}
			l.AdditionalAddresses = nil
			// Istio gateways listen on 0.0.0.0 and, dual-stack, on ::; a loopback proxy binds one address.
		}
		if sa := l.GetAddress().GetSocketAddress(); sa != nil {
			res.ListenerAddresses[l.Name] = net.JoinHostPort(sa.Address, strconv.Itoa(int(sa.GetPortValue())))
		}
		if err := b.walk(l.ProtoReflect(), "listener "+l.Name); err != nil {
			return nil, err
		}
		sr.Listeners = append(sr.Listeners, l)
	}

	for _, c0 := range p.Clusters {
		c := proto.Clone(c0).(*cluster.Cluster)
		if c.GetType() == cluster.Cluster_EDS {
			name := c.GetEdsClusterConfig().GetServiceName()
			if name == "" {
				name = c.Name
			}
			la := &endpoint.ClusterLoadAssignment{}
			if e, ok := cla[name]; ok {
				la = proto.Clone(e).(*endpoint.ClusterLoadAssignment)
			}
			la.ClusterName = c.Name
			c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_STATIC}
			c.EdsClusterConfig = nil
			c.LoadAssignment = la
		}
		if to, ok := opts.ClusterEndpoints[c.Name]; ok {
			ep := &endpoint.Endpoint{Address: &core.Address{}}
			if err := setSocketAddress(ep.Address, to); err != nil {
				return nil, fmt.Errorf("cluster %s: %v", c.Name, err)
			}
			// Keep the first endpoint's metadata (tlsMode and friends decide the transport socket).
			lbe := &endpoint.LbEndpoint{HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: ep}}
			if la := c.GetLoadAssignment(); la != nil && len(la.Endpoints) > 0 && len(la.Endpoints[0].LbEndpoints) > 0 {
				lbe.Metadata = la.Endpoints[0].LbEndpoints[0].Metadata
			}
			switch c.GetType() {
			case cluster.Cluster_STATIC, cluster.Cluster_STRICT_DNS, cluster.Cluster_LOGICAL_DNS:
			default:
				c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_STATIC}
				c.LbPolicy = cluster.Cluster_ROUND_ROBIN
				c.LbConfig = nil
			}
			c.LoadAssignment = &endpoint.ClusterLoadAssignment{ClusterName: c.Name,
				Endpoints: []*endpoint.LocalityLbEndpoints{{LbEndpoints: []*endpoint.LbEndpoint{lbe}}}}
		}
		if len(opts.Endpoints) > 0 && c.LoadAssignment != nil {
			for _, lle := range c.LoadAssignment.Endpoints {
				for _, lbe := range lle.LbEndpoints {
					sa := lbe.GetEndpoint().GetAddress().GetSocketAddress()
					if sa == nil {
						continue
					}
					key := net.JoinHostPort(sa.Address, strconv.Itoa(int(sa.GetPortValue())))
					if to, ok := opts.Endpoints[key]; ok {
						if err := setSocketAddress(lbe.GetEndpoint().Address, to); err != nil {
							return nil, fmt.Errorf("cluster %s: %v", c.Name, err)
						}
						// A remapped endpoint is a plain address: STRICT_DNS/LOGICAL_DNS would resolve it anyway.
					}
				}
			}
		}
		if err := b.walk(c.ProtoReflect(), "cluster "+c.Name); err != nil {
			return nil, err
		}
		sr.Clusters = append(sr.Clusters, c)
	}

	names := make([]string, 0, len(b.secrets))
	for n := range b.secrets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		sec, err := staticSecret(n, b.secrets[n], p.Secrets[n])
		if err != nil {
			return nil, err
		}
		if sec == nil {
			res.MissingSecrets = append(res.MissingSecrets, n)
			continue
		}
		sr.Secrets = append(sr.Secrets, sec)
	}
	res.uses = b.secrets

	admin := opts.AdminAddress
	if admin == "" {
		admin = "127.0.0.1:0"
	}
	adminAddr := &core.Address{}
	if err := setSocketAddress(adminAddr, admin); err != nil {
		return nil, fmt.Errorf("admin: %v", err)
	}
	nodeType := "sidecar"
	if p.Router {
		nodeType = "router"
	}
	ip := "127.0.0.1"
	if len(p.IPs) > 0 {
		ip = p.IPs[0]
	}
	res.Bootstrap = &bootstrap.Bootstrap{
		Node: &core.Node{
			// Istio's node id: <type>~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local
			Id:      fmt.Sprintf("%s~%s~%s.%s~%s.svc.cluster.local", nodeType, ip, p.Pod, p.Namespace, p.Namespace),
			Cluster: p.Pod + "." + p.Namespace,
		},
		Admin:           &bootstrap.Admin{Address: adminAddr},
		StaticResources: sr,
	}
	res.Dropped = b.dropped
	return res, nil
}

// staticSecret is the static secret for an SDS name as the config uses it (nil: no material).
func staticSecret(n string, use *secretUse, m *oracle.SecretMaterial) (*tls.Secret, error) {
	if use.cert && use.ca {
		return nil, fmt.Errorf("SDS name %q is used both as a certificate and as a validation context", n)
	}
	if use.cert {
		if m == nil || len(m.CertChainPEM) == 0 || len(m.PrivateKeyPEM) == 0 {
			return nil, nil
		}
		return &tls.Secret{Name: n, Type: &tls.Secret_TlsCertificate{TlsCertificate: &tls.TlsCertificate{
			CertificateChain: inlineBytes(m.CertChainPEM),
			PrivateKey:       inlineBytes(m.PrivateKeyPEM),
		}}}, nil
	}
	if m == nil || len(m.CACertPEM) == 0 {
		return nil, nil
	}
	return &tls.Secret{Name: n, Type: &tls.Secret_ValidationContext{ValidationContext: &tls.CertificateValidationContext{
		TrustedCa: inlineBytes(m.CACertPEM),
	}}}, nil
}

func inlineBytes(b []byte) *core.DataSource {
	return &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: b}}
}

func setSocketAddress(a *core.Address, hostPort string) error {
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return fmt.Errorf("address %q: %v", hostPort, err)
	}
	n, err := strconv.ParseUint(port, 10, 32)
	if err != nil {
		return fmt.Errorf("address %q: bad port", hostPort)
	}
	a.Address = &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
		Address:       host,
		PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(n)},
	}}
	return nil
}

var (
	sdsSecretConfigName = (&tls.SdsSecretConfig{}).ProtoReflect().Descriptor().FullName()
	anyName             = (&anypb.Any{}).ProtoReflect().Descriptor().FullName()
	hcmName             = (&hcm.HttpConnectionManager{}).ProtoReflect().Descriptor().FullName()
)

// walk visits every message of the config, descending into Any (unpacked, rewritten, packed again):
// it removes Istio-only extensions from every list of named extensions, inlines RDS and rewrites SDS
// references to static secrets.
func (b *builder) walk(m protoreflect.Message, where string) error {
	switch m.Descriptor().FullName() {
	case hcmName:
		h := m.Interface().(*hcm.HttpConnectionManager)
		if rds := h.GetRds(); rds != nil {
			rc, ok := b.routes[rds.RouteConfigName]
			if !ok {
				return fmt.Errorf("%s: RDS route configuration %q is not among the proxy's routes", where, rds.RouteConfigName)
			}
			h.RouteSpecifier = &hcm.HttpConnectionManager_RouteConfig{RouteConfig: proto.Clone(rc).(*route.RouteConfiguration)}
		}
	case anyName:
		a := m.Interface().(*anypb.Any)
		inner, err := a.UnmarshalNew()
		if err != nil {
			return fmt.Errorf("%s: cannot decode extension %s: %v", where, a.TypeUrl, err)
		}
		if err := b.walk(inner.ProtoReflect(), where); err != nil {
			return err
		}
		packed, err := anypb.New(inner)
		if err != nil {
			return err
		}
		a.Value = packed.Value
		return nil
	}

	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
			return true
		}
		at := where
		switch {
		case fd.IsList():
			list := v.List()
			kept := 0
			for i := 0; i < list.Len(); i++ {
				el := list.Get(i).Message()
				if d, drop := b.istioOnlyExtension(el, where+" / "+string(fd.Name())); drop {
					b.dropped = append(b.dropped, d)
					continue
				}
				if fd.Message().FullName() == sdsSecretConfigName {
					b.sds(el.Interface().(*tls.SdsSecretConfig), fd)
				} else if err = b.walk(el, at); err != nil {
					return false
				}
				list.Set(kept, list.Get(i))
				kept++
			}
			list.Truncate(kept)
		case fd.IsMap():
			if fd.MapValue().Kind() != protoreflect.MessageKind {
				return true
			}
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				err = b.walk(mv.Message(), at)
				return err == nil
			})
		default:
			if fd.Message().FullName() == sdsSecretConfigName {
				b.sds(v.Message().Interface().(*tls.SdsSecretConfig), fd)
				return true
			}
			err = b.walk(v.Message(), at)
		}
		return err == nil
	})
	return err
}

// sds turns an SDS reference into a reference to a static secret of the same name.
func (b *builder) sds(s *tls.SdsSecretConfig, fd protoreflect.FieldDescriptor) {
	s.SdsConfig = nil
	use := b.secrets[s.Name]
	if use == nil {
		use = &secretUse{}
		b.secrets[s.Name] = use
	}
	if strings.Contains(string(fd.Name()), "validation_context") {
		use.ca = true
	} else {
		use.cert = true
	}
}

// istioOnlyExtension reports whether m is a named extension (a message with `name` and an Any
// `typed_config`: a listener filter, network filter, HTTP filter, cluster filter, ...) that only Istio's
// proxy build has.
func (b *builder) istioOnlyExtension(m protoreflect.Message, where string) (Dropped, bool) {
	fields := m.Descriptor().Fields()
	nameFd, tcFd := fields.ByName("name"), fields.ByName("typed_config")
	if nameFd == nil || tcFd == nil || tcFd.Message() == nil || tcFd.Message().FullName() != anyName || !m.Has(tcFd) {
		return Dropped{}, false
	}
	a := m.Get(tcFd).Message().Interface().(*anypb.Any)
	typeURL := a.TypeUrl
	if strings.HasSuffix(typeURL, ".TypedStruct") {
		if inner, err := a.UnmarshalNew(); err == nil {
			if f := inner.ProtoReflect().Descriptor().Fields().ByName("type_url"); f != nil {
				typeURL = inner.ProtoReflect().Get(f).String()
			}
		}
	}
	name := m.Get(nameFd).String()
	if reason, ok := istioOnly[typeURL]; ok {
		return Dropped{Where: where, Name: name, Type: typeURL, Reason: reason}, true
	}
	if strings.Contains(typeURL, "filters.http.wasm.") || strings.Contains(typeURL, "filters.network.wasm.") {
		if inner, err := a.UnmarshalNew(); err == nil {
			if j, err := protojson.Marshal(inner); err == nil && strings.Contains(string(j), nullVMRuntime) {
				return Dropped{Where: where, Name: name, Type: typeURL, Reason: "a Wasm plugin compiled into Istio's proxy " +
					"(runtime " + nullVMRuntime + "), e.g. stats or metadata exchange: telemetry only"}, true
			}
		}
	}
	return Dropped{}, false
}
