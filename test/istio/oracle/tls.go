package oracle

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"sync"
	"time"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// meshCA is the CA istiod signs workload certificates with in one cluster: the plugged-in CA of Secret
// istio-system/cacerts (ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem) if present, else istiod's
// self-signed istio-system/istio-ca-secret (ca-cert.pem, ca-key.pem), else — a cluster dump without either —
// a self-signed CA of the oracle's own, distinct per cluster as istiod's self-signed CAs are
// (security/pkg/pki/ca/ca.go NewSelfSignedIstioCAOptions / NewPluggedCertIstioCAOptions).
type meshCA struct {
	cert    *x509.Certificate
	key     crypto.Signer
	chain   []byte // intermediate chain PEM up to (not incl.) the root, may be empty
	rootPEM []byte
	source  string
}

var (
	caMu    sync.Mutex
	caCache = map[*Cluster]*meshCA{}
)

func clusterMeshCA(c *Cluster) (*meshCA, error) {
	caMu.Lock()
	defer caMu.Unlock()
	if ca, ok := caCache[c]; ok {
		return ca, nil
	}
	var ca *meshCA
	if d, ok := c.Secret("istio-system", "cacerts"); ok && len(d["ca-cert.pem"]) > 0 && len(d["ca-key.pem"]) > 0 {
		cert, err := FirstCertificate(d["ca-cert.pem"])
		if err != nil {
			return nil, fmt.Errorf("Secret istio-system/cacerts ca-cert.pem: %v", err)
		}
		key, err := ParsePrivateKey(d["ca-key.pem"])
		if err != nil {
			return nil, fmt.Errorf("Secret istio-system/cacerts ca-key.pem: %v", err)
		}
		root := d["root-cert.pem"]
		if len(root) == 0 {
			root = d["ca-cert.pem"]
		}
		ca = &meshCA{cert: cert, key: key, chain: d["cert-chain.pem"], rootPEM: root, source: "Secret istio-system/cacerts"}
	} else if d, ok := c.Secret("istio-system", "istio-ca-secret"); ok && len(d["ca-cert.pem"]) > 0 && len(d["ca-key.pem"]) > 0 {
		cert, err := FirstCertificate(d["ca-cert.pem"])
		if err != nil {
			return nil, fmt.Errorf("Secret istio-system/istio-ca-secret ca-cert.pem: %v", err)
		}
		key, err := ParsePrivateKey(d["ca-key.pem"])
		if err != nil {
			return nil, fmt.Errorf("Secret istio-system/istio-ca-secret ca-key.pem: %v", err)
		}
		ca = &meshCA{cert: cert, key: key, chain: d["ca-cert.pem"], rootPEM: d["ca-cert.pem"], source: "Secret istio-system/istio-ca-secret"}
	} else {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(time.Now().UnixNano()),
			Subject:               pkix.Name{Organization: []string{c.Mesh.GetTrustDomain()}, CommonName: "istiod self-signed CA of " + c.Name + " (oracle)"},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(24 * time.Hour),
			IsCA:                  true,
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			return nil, err
		}
		cert, _ := x509.ParseCertificate(der)
		p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		ca = &meshCA{cert: cert, key: key, rootPEM: p, chain: p, source: "no CA Secret in the dump: istiod's self-signed CA, made by the oracle"}
	}
	caCache[c] = ca
	return ca, nil
}

// mintWorkloadCert issues what istio-agent would get from istiod for a workload: a leaf with the SPIFFE id
// as its only URI SAN, signed by the cluster's mesh CA.
func mintWorkloadCert(c *Cluster, spiffeID string) (*SecretMaterial, error) {
	ca, err := clusterMeshCA(c)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(spiffeID)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		URIs:         []*url.URL{u},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	chain := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if !samePEM(ca.chain, ca.rootPEM) || ca.cert.Subject.String() != "" {
		chain = append(chain, ca.chain...)
	}
	return &SecretMaterial{
		CertChainPEM:  chain,
		PrivateKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		CACertPEM:     ca.rootPEM,
		Source:        "workload certificate minted by the oracle from the mesh CA (" + ca.source + ")",
	}, nil
}

func samePEM(a, b []byte) bool { return strings.TrimSpace(string(a)) == strings.TrimSpace(string(b)) }

// errMissingSecret marks an SDS name whose Secret is absent (reason tls-missing-secret).
var errMissingSecret = errors.New("missing secret")

// resolveSDS returns the material behind an SDS resource name as the proxy in (cluster, namespace) would
// get it: "default"/"ROOTCA" from istio-agent (the workload certificate and the mesh root),
// "kubernetes://[ns/]name" and "kubernetes://[ns/]name-cacert" from the Secret istiod's credentials
// controller reads (pilot/pkg/model/credentials/resource.go ParseResourceName; pilot/pkg/credentials/kube/
// secrets.go ExtractCertInfo: keys cert/key else tls.crt/tls.key; GetCaCert: Secret <name>-cacert else
// <name>, ExtractRoot: key cacert else ca.crt).
func resolveSDS(c *Cluster, proxyNS, identity, name string) (*SecretMaterial, error) {
	switch {
	case name == "default":
		return mintWorkloadCert(c, identity)
	case name == "ROOTCA":
		ca, err := clusterMeshCA(c)
		if err != nil {
			return nil, err
		}
		return &SecretMaterial{CACertPEM: ca.rootPEM, Source: "mesh root (" + ca.source + ")"}, nil
	case strings.HasPrefix(name, "kubernetes://"):
		res := strings.TrimPrefix(name, "kubernetes://")
		ns, n := proxyNS, res
		if i := strings.Index(res, "/"); i >= 0 {
			ns, n = res[:i], res[i+1:]
		}
		if strings.HasSuffix(n, "-cacert") {
			d, ok := c.Secret(ns, n)
			src := "Secret " + ns + "/" + n
			if !ok {
				stripped := strings.TrimSuffix(n, "-cacert")
				d, ok = c.Secret(ns, stripped)
				src = "Secret " + ns + "/" + stripped
			}
			if !ok {
				return nil, fmt.Errorf("%w: %s (SDS %s): no Secret %s/%s or %s/%s", errMissingSecret, src, name, ns, n, ns, strings.TrimSuffix(n, "-cacert"))
			}
			ca := d["cacert"]
			if len(ca) == 0 {
				ca = d["ca.crt"]
			}
			if len(ca) == 0 {
				return nil, fmt.Errorf("%w: %s has no cacert or ca.crt key (SDS %s)", errMissingSecret, src, name)
			}
			return &SecretMaterial{CACertPEM: decodeMaybeBase64(ca), Source: src}, nil
		}
		d, ok := c.Secret(ns, n)
		if !ok {
			return nil, fmt.Errorf("%w: Secret %s/%s (SDS %s) does not exist in %s", errMissingSecret, ns, n, name, c.Name)
		}
		m := &SecretMaterial{Source: "Secret " + ns + "/" + n}
		switch {
		case len(d["cert"]) > 0 && len(d["key"]) > 0:
			m.CertChainPEM, m.PrivateKeyPEM = d["cert"], d["key"]
		case len(d["tls.crt"]) > 0 && len(d["tls.key"]) > 0:
			m.CertChainPEM, m.PrivateKeyPEM = d["tls.crt"], d["tls.key"]
		default:
			return nil, fmt.Errorf("%w: Secret %s/%s has neither cert/key nor tls.crt/tls.key (SDS %s)", errMissingSecret, ns, n, name)
		}
		m.CertChainPEM = decodeMaybeBase64(m.CertChainPEM)
		m.PrivateKeyPEM = decodeMaybeBase64(m.PrivateKeyPEM)
		if len(d["cacert"]) > 0 {
			m.CACertPEM = decodeMaybeBase64(d["cacert"])
		} else if len(d["ca.crt"]) > 0 {
			m.CACertPEM = decodeMaybeBase64(d["ca.crt"])
		}
		return m, nil
	}
	return nil, fmt.Errorf("SDS resource %q: a kind of secret the oracle does not resolve", name)
}

func parseCerts(p []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := p
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return out, nil
}

// FirstCertificate parses the first certificate of a PEM bundle.
func FirstCertificate(p []byte) (*x509.Certificate, error) {
	cs, err := parseCerts(p)
	if err != nil {
		return nil, err
	}
	return cs[0], nil
}

// ParsePrivateKey parses a PEM private key: PKCS#8, PKCS#1 RSA or SEC1 EC.
func ParsePrivateKey(p []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(p)
	if b == nil {
		return nil, errors.New("no PEM key")
	}
	if k, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
	}
	if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("unsupported private key (want PKCS#8, PKCS#1 RSA or SEC1 EC)")
}

var _ = rsa.PublicKey{}

// certPrincipal is the name Envoy's RBAC Authenticated matcher uses: URI SAN, else DNS SAN, else subject.
func certPrincipal(c *x509.Certificate) (principal, uriSAN string) {
	if len(c.URIs) > 0 {
		return c.URIs[0].String(), c.URIs[0].String()
	}
	if len(c.DNSNames) > 0 {
		return c.DNSNames[0], ""
	}
	return c.Subject.String(), ""
}

// verifyChain checks that the leaf of chainPEM chains to a CA of caPEM (any extra certificates in chainPEM
// act as intermediates), as Envoy's default certificate validator does.
func verifyChain(chainPEM, caPEM []byte, usage x509.ExtKeyUsage) error {
	certs, err := parseCerts(chainPEM)
	if err != nil {
		return fmt.Errorf("certificate: %v", err)
	}
	roots := x509.NewCertPool()
	cas, err := parseCerts(caPEM)
	if err != nil {
		return fmt.Errorf("CA bundle: %v", err)
	}
	for _, ca := range cas {
		roots.AddCert(ca)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err = certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: time.Now()})
	return err
}

// sanMatches is Envoy's match_typed_subject_alt_names / match_subject_alt_names check: at least one matcher
// must match one SAN of its type (untyped matchers match any SAN). No matcher configured: accepted.
func sanMatches(vc *tlsv3.CertificateValidationContext, cert *x509.Certificate) (bool, string) {
	typed := vc.GetMatchTypedSubjectAltNames()
	untyped := vc.GetMatchSubjectAltNames()
	if len(typed) == 0 && len(untyped) == 0 {
		return true, ""
	}
	var uris, dns, ips, emails []string
	for _, u := range cert.URIs {
		uris = append(uris, u.String())
	}
	dns = cert.DNSNames
	for _, ip := range cert.IPAddresses {
		ips = append(ips, ip.String())
	}
	emails = cert.EmailAddresses
	var want []string
	for _, m := range typed {
		var vals []string
		switch m.GetSanType() {
		case tlsv3.SubjectAltNameMatcher_URI:
			vals = uris
		case tlsv3.SubjectAltNameMatcher_DNS:
			vals = dns
		case tlsv3.SubjectAltNameMatcher_IP_ADDRESS:
			vals = ips
		case tlsv3.SubjectAltNameMatcher_EMAIL:
			vals = emails
		}
		want = append(want, m.GetSanType().String()+":"+matcherString(m.GetMatcher()))
		for _, v := range vals {
			if m.GetSanType() == tlsv3.SubjectAltNameMatcher_DNS && dnsWildcardMatch(v, m.GetMatcher().GetExact()) {
				return true, ""
			}
			if StringMatch(m.GetMatcher(), v) {
				return true, ""
			}
		}
	}
	all := append(append(append(append([]string{}, uris...), dns...), ips...), emails...)
	for _, m := range untyped {
		want = append(want, matcherString(m))
		for _, v := range all {
			if StringMatch(m, v) {
				return true, ""
			}
		}
	}
	return false, fmt.Sprintf("certificate SANs %v match none of %v", all, want)
}

// dnsWildcardMatch: a certificate DNS SAN "*.example.com" matches an exact matcher "a.example.com" (Envoy's
// DNS SAN matching honours certificate wildcards).
func dnsWildcardMatch(certSAN, want string) bool {
	if want == "" || !strings.HasPrefix(certSAN, "*.") {
		return false
	}
	i := strings.Index(want, ".")
	return i > 0 && want[i:] == certSAN[1:]
}

func matcherString(m interface{ String() string }) string {
	s := m.String()
	return strings.TrimSpace(s)
}
