package envoy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"meshfed.test/istio/oracle"
)

// Protocol of a backend or a probe.
type Protocol string

const (
	HTTP Protocol = "http"
	TCP  Protocol = "tcp"
)

// Backend stands in for the provider's workload behind its sidecar: it terminates Istio mTLS (a
// workload certificate for the destination's service account, signed by the provider cluster's CA;
// client certificates must chain to the same root, as a sidecar in STRICT mode requires) and answers
// HTTP 200 with a body naming itself, or, for TCP, echoes one line prefixed with its name.
type Backend struct {
	Name string
	Addr string

	ln       net.Listener
	srv      *http.Server
	mu       sync.Mutex
	peers    []string
	attempts []string
	lines    []string
	wg       sync.WaitGroup
	closing  chan struct{}
}

// Peers are the SPIFFE ids of the clients that reached the backend (the provider gateway's identity).
func (b *Backend) Peers() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.peers...)
}

// Lines are the TCP lines the backend received. (Envoy's tcp_proxy opens the upstream connection, mTLS
// included, as soon as a downstream connection arrives, before a network RBAC filter in front of it sees
// data and denies: a handshake alone does not mean the request got through.)
func (b *Backend) Lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.lines...)
}

// Attempts are the connections the backend accepted (whether or not the mTLS handshake succeeded).
func (b *Backend) Attempts() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.attempts...)
}

// StartBackend listens on ip (port chosen freely) with a workload certificate for spiffeID from ca.
func StartBackend(name, ip string, ca *CA, spiffeID string, proto Protocol) (*Backend, error) {
	chain, key, err := ca.Workload(spiffeID)
	if err != nil {
		return nil, err
	}
	return startBackendWith(name, ip, &oracle.SecretMaterial{CertChainPEM: chain, PrivateKeyPEM: key}, ca.RootPEM, proto)
}

// startBackendWith serves with the given workload certificate (e.g. the workload's SDS "default" as the
// trace resolved it) and trusts clients chaining to rootPEM.
func startBackendWith(name, ip string, m *oracle.SecretMaterial, rootPEM []byte, proto Protocol) (*Backend, error) {
	cert, err := tls.X509KeyPair(m.CertChainPEM, m.PrivateKeyPEM)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		return nil, errors.New("backend: no root certificate")
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    roots,
		// What Istio's client side offers for ISTIO_MUTUAL (istio-peer-exchange, istio) or an HTTP
		// protocol; the server side of a sidecar accepts all of them.
		NextProtos: []string{"h2", "http/1.1", "istio-peer-exchange", "istio"},
		MinVersion: tls.VersionTLS12,
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return nil, err
	}
	b := &Backend{Name: name, Addr: ln.Addr().String(), ln: ln, closing: make(chan struct{})}
	conns := make(chan net.Conn)
	// Handshake here, then hand the HTTP server a plain connection: it serves HTTP/1.1 and HTTP/2 with
	// prior knowledge alike, whatever ALPN was negotiated (Envoy speaks the protocol of its cluster).
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				close(conns)
				return
			}
			b.mu.Lock()
			b.attempts = append(b.attempts, c.RemoteAddr().String())
			b.mu.Unlock()
			go func() {
				tc := tls.Server(c, cfg)
				_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
				if err := tc.Handshake(); err != nil {
					c.Close()
					return
				}
				_ = tc.SetDeadline(time.Time{})
				st := tc.ConnectionState()
				peer := ""
				if len(st.PeerCertificates) > 0 && len(st.PeerCertificates[0].URIs) > 0 {
					peer = st.PeerCertificates[0].URIs[0].String()
				}
				b.mu.Lock()
				b.peers = append(b.peers, peer)
				b.mu.Unlock()
				if proto == TCP {
					b.echo(tc)
					return
				}
				select {
				case conns <- &plainConn{Conn: tc, peer: peer}:
				case <-b.closing:
					tc.Close()
				}
			}()
		}
	}()
	if proto != TCP {
		var protocols http.Protocols
		protocols.SetHTTP1(true)
		protocols.SetUnencryptedHTTP2(true)
		b.srv = &http.Server{
			Protocols:         &protocols,
			ReadHeaderTimeout: 10 * time.Second,
			ConnContext: func(ctx context.Context, c net.Conn) context.Context {
				if pc, ok := c.(*plainConn); ok {
					return context.WithValue(ctx, peerKey{}, pc.peer)
				}
				return ctx
			},
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				peer, _ := r.Context().Value(peerKey{}).(string)
				w.Header().Set("Content-Type", "text/plain")
				fmt.Fprintf(w, "backend %s reached: %s %s%s from %s\n", b.Name, r.Method, r.Host, r.URL.Path, peer)
			}),
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			_ = b.srv.Serve(&chanListener{conns: conns, addr: ln.Addr(), closing: b.closing})
		}()
	}
	return b, nil
}

func (b *Backend) echo(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && line == "" {
		return
	}
	b.mu.Lock()
	b.lines = append(b.lines, line)
	b.mu.Unlock()
	fmt.Fprintf(c, "backend %s echo: %s\n", b.Name, strings.TrimRight(line, "\r\n"))
}

// Close stops the backend.
func (b *Backend) Close() {
	select {
	case <-b.closing:
		return
	default:
	}
	close(b.closing)
	b.ln.Close()
	if b.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = b.srv.Shutdown(ctx)
		cancel()
		b.srv.Close()
	}
}

type peerKey struct{}

// plainConn hides the *tls.Conn from net/http, which then treats the stream as cleartext.
type plainConn struct {
	net.Conn
	peer string
}

type chanListener struct {
	conns   chan net.Conn
	addr    net.Addr
	closing chan struct{}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c, ok := <-l.conns:
		if !ok {
			return nil, net.ErrClosed
		}
		return c, nil
	case <-l.closing:
		return nil, net.ErrClosed
	}
}
func (l *chanListener) Close() error   { return nil }
func (l *chanListener) Addr() net.Addr { return l.addr }
