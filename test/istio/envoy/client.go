package envoy

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// Client plays the consumer application's sidecar on its outbound hop: it opens Istio mTLS
// (ISTIO_MUTUAL) to the next proxy with the caller's workload certificate, the SNI and ALPN of the
// sidecar's cluster, and verifies the server's certificate as that cluster does (chain to the mesh
// root, SPIFFE SAN among the cluster's subject alt names).
type Client struct {
	CertChainPEM, KeyPEM []byte
	RootPEM              []byte
	SNI                  string
	ALPN                 []string
	// SANs the server certificate must carry one of (empty: chain only).
	SANs    []string
	Timeout time.Duration
	// Plain sends without TLS (a sidecar whose cluster originates no TLS).
	Plain bool
	// Headers are added to an HTTP request; Method is its method (default GET).
	Headers map[string]string
	Method  string
}

// SidecarTLS reads SNI, ALPN and subject alt names from the UpstreamTlsContext of an Istio sidecar
// cluster (its transport_socket, or the tlsMode-istio transport socket match).
func SidecarTLS(c *cluster.Cluster) (sni string, alpn, sans []string, err error) {
	up, err := upstreamTLS(c)
	if err != nil {
		return "", nil, nil, err
	}
	for _, m := range up.GetCommonTlsContext().GetCombinedValidationContext().GetDefaultValidationContext().GetMatchSubjectAltNames() {
		if m.GetExact() != "" {
			sans = append(sans, m.GetExact())
		}
	}
	return up.Sni, up.GetCommonTlsContext().GetAlpnProtocols(), sans, nil
}

// upstreamTLS is the UpstreamTlsContext of a cluster (its transport_socket, or the tlsMode-istio match).
func upstreamTLS(c *cluster.Cluster) (*tlsv3.UpstreamTlsContext, error) {
	ts := c.GetTransportSocket()
	for _, m := range c.GetTransportSocketMatches() {
		if ts == nil && m.GetName() == "tlsMode-istio" {
			ts = m.GetTransportSocket()
		}
	}
	if ts == nil || ts.GetTypedConfig() == nil {
		return nil, fmt.Errorf("cluster %s originates no TLS", c.Name)
	}
	up := &tlsv3.UpstreamTlsContext{}
	if err := ts.GetTypedConfig().UnmarshalTo(up); err != nil {
		return nil, fmt.Errorf("cluster %s: %v", c.Name, err)
	}
	return up, nil
}

func (c *Client) dial(addr string) (net.Conn, error) {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	if c.Plain {
		conn, err := net.DialTimeout("tcp", addr, timeout)
		if err == nil {
			_ = conn.SetDeadline(time.Now().Add(timeout))
		}
		return conn, err
	}
	var certs []tls.Certificate
	if len(c.CertChainPEM) > 0 {
		cert, err := tls.X509KeyPair(c.CertChainPEM, c.KeyPEM)
		if err != nil {
			return nil, err
		}
		certs = append(certs, cert)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(c.RootPEM) {
		return nil, errors.New("client: no root certificate")
	}
	var err error
	cfg := &tls.Config{
		Certificates: certs,
		ServerName:   c.SNI,
		NextProtos:   c.ALPN,
		MinVersion:   tls.VersionTLS12,
		// Istio verifies SPIFFE URI SANs, not the SNI as a host name: verify the chain here instead.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("server presented no certificate")
			}
			certs := make([]*x509.Certificate, len(raw))
			for i, r := range raw {
				if certs[i], err = x509.ParseCertificate(r); err != nil {
					return err
				}
			}
			inter := x509.NewCertPool()
			for _, ic := range certs[1:] {
				inter.AddCert(ic)
			}
			if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				return fmt.Errorf("server certificate: %v", err)
			}
			if len(c.SANs) == 0 {
				return nil
			}
			for _, u := range certs[0].URIs {
				for _, s := range c.SANs {
					if u.String() == s {
						return nil
					}
				}
			}
			return fmt.Errorf("server certificate SANs %v match none of %v", certs[0].URIs, c.SANs)
		},
	}
	d := &net.Dialer{Timeout: timeout}
	conn, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	return conn, nil
}

// Response is what an HTTP probe got back.
type Response struct {
	Status int
	Body   string
}

// Get sends one HTTP/1.1 request (GET unless Method says otherwise) with the given authority (the Host header after the sidecar's route, e.g.
// an authority rewrite) to addr over Istio mTLS.
func (c *Client) Get(addr, authority, path string) (*Response, error) {
	conn, err := c.dial(addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	method := c.Method
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequest(method, "http://"+authority+path, nil)
	if err != nil {
		return nil, err
	}
	req.Close = true
	for k, v := range c.Headers {
		req.Header.Set(k, v)
	}
	if err := req.Write(conn); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, err
	}
	return &Response{Status: resp.StatusCode, Body: string(body)}, nil
}

// Line sends one line over Istio mTLS and returns the line that comes back (TCP).
func (c *Client) Line(addr, line string) (string, error) {
	conn, err := c.dial(addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, line+"\n"); err != nil {
		return "", err
	}
	got, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil && got == "" {
		return "", err
	}
	return strings.TrimRight(got, "\r\n"), nil
}
