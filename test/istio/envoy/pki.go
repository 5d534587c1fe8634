package envoy

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/url"
	"time"

	"meshfed.test/istio/oracle"
)

// CA is a mesh CA as Istio's plug-in CA Secret istio-system/cacerts holds it: ca-cert.pem (the signing
// certificate), ca-key.pem, cert-chain.pem (ca-cert up to the root) and root-cert.pem.
type CA struct {
	Cert     *x509.Certificate
	Key      crypto.Signer
	ChainPEM []byte // cert-chain.pem
	RootPEM  []byte // root-cert.pem
}

// CACertsKeys are the keys of istio-system/cacerts.
var CACertsKeys = []string{"ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"}

// LoadCA reads the data of an istio-system/cacerts Secret (already base64-decoded).
func LoadCA(data map[string][]byte) (*CA, error) {
	for _, k := range []string{"ca-cert.pem", "ca-key.pem", "root-cert.pem"} {
		if len(data[k]) == 0 {
			return nil, fmt.Errorf("cacerts has no %s", k)
		}
	}
	cert, err := oracle.FirstCertificate(data["ca-cert.pem"])
	if err != nil {
		return nil, fmt.Errorf("cacerts ca-cert.pem: %v", err)
	}
	key, err := oracle.ParsePrivateKey(data["ca-key.pem"])
	if err != nil {
		return nil, fmt.Errorf("cacerts ca-key.pem: %v", err)
	}
	chain := data["cert-chain.pem"]
	if len(chain) == 0 {
		chain = data["ca-cert.pem"]
	}
	return &CA{Cert: cert, Key: key, ChainPEM: chain, RootPEM: data["root-cert.pem"]}, nil
}

// NewCA creates a self-signed root CA (for tests: the cacerts of a test cluster).
func NewCA(commonName string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"meshfed test"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	p := pemCert(der)
	return &CA{Cert: cert, Key: key, ChainPEM: p, RootPEM: p}, nil
}

// CACertsData is the CA as the data of an istio-system/cacerts Secret.
func (ca *CA) CACertsData() (map[string][]byte, error) {
	k, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		"ca-cert.pem":    pemCert(ca.Cert.Raw),
		"ca-key.pem":     pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}),
		"cert-chain.pem": ca.ChainPEM,
		"root-cert.pem":  ca.RootPEM,
	}, nil
}

// Issue signs a leaf certificate. uriSANs are SPIFFE ids (a workload certificate as istio-agent gets
// it from istiod: the only SAN is spiffe://<trust domain>/ns/<ns>/sa/<sa>); dnsNames are DNS SANs (a
// gateway's server certificate). The chain is the leaf followed by cert-chain.pem, as istiod returns it.
func (ca *CA) Issue(commonName string, uriSANs []string, dnsNames []string) (chainPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     dnsNames,
	}
	for _, s := range uriSANs {
		u, err := url.Parse(s)
		if err != nil {
			return nil, nil, fmt.Errorf("SAN %q: %v", s, err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, nil, err
	}
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	chain := append(pemCert(der), ca.ChainPEM...)
	if !bytes.Equal(ca.ChainPEM, ca.RootPEM) && bytes.Contains(ca.ChainPEM, ca.RootPEM) {
		// cert-chain.pem may end with the root; a peer trusts the root anyway.
		chain = append(pemCert(der), bytes.TrimSuffix(ca.ChainPEM, ca.RootPEM)...)
	}
	return chain, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}), nil
}

// Workload issues the workload certificate istio-agent would hold for a SPIFFE id (SDS "default").
func (ca *CA) Workload(spiffeID string) (chainPEM, keyPEM []byte, err error) {
	return ca.Issue("", []string{spiffeID}, nil)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
