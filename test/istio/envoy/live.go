package envoy

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"meshfed.test/istio/oracle"
)

// StartTimeout bounds how long a live Envoy may take to report ready.
var StartTimeout = 60 * time.Second

// LiveOptions place a live proxy on loopback.
type LiveOptions struct {
	// IP is the loopback address the proxy binds (its listeners and admin), e.g. 127.0.0.2.
	IP string
	// Ports are the listener ports (as Istio built them, e.g. 15443) to serve; each gets a free port on IP.
	// Empty: every listener that binds a port.
	Ports []uint32
	// Endpoints rewrites upstream endpoints, "ip:port" -> "ip:port" (see Options.Endpoints).
	Endpoints map[string]string
	// ClusterEndpoints points whole clusters at one address (see Options.ClusterEndpoints).
	ClusterEndpoints map[string]string
}

// Process is a running Envoy.
type Process struct {
	Name  string
	Admin string // admin address ip:port
	// Addrs maps a listener port of Istio's config (e.g. 15443) to the loopback address it is bound on.
	Addrs     map[uint32]string
	Dropped   []Dropped
	Bootstrap *Result

	cmd     *exec.Cmd
	dir     string
	done    chan struct{}
	waitErr error
	out     *limitedBuffer
	once    sync.Once
}

// Addr is the loopback address of the listener Istio built on port.
func (p *Process) Addr(port uint32) string { return p.Addrs[port] }

// Output is the tail of Envoy's own log (no key material: certificates and keys are files).
func (p *Process) Output() string { return p.out.String() }

// StartProxy runs a real Envoy on the proxy's config, bound on opts.IP, and waits until its admin
// /ready answers LIVE. Stop it with Stop (the process is also killed if the calling process dies).
func StartProxy(name string, px *oracle.ProxyXDS, opts LiveOptions) (*Process, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if opts.IP == "" {
		opts.IP = "127.0.0.1"
	}
	ports := opts.Ports
	if len(ports) == 0 {
		for _, l := range px.Listeners {
			if sa := l.GetAddress().GetSocketAddress(); sa != nil && sa.GetPortValue() != 0 && (l.BindToPort == nil || l.BindToPort.Value) {
				ports = append(ports, sa.GetPortValue())
			}
		}
	}
	addrs := map[uint32]string{}
	for _, port := range ports {
		a, err := freeAddr(opts.IP)
		if err != nil {
			return nil, err
		}
		addrs[port] = a
	}
	admin, err := freeAddr(opts.IP)
	if err != nil {
		return nil, err
	}
	res, err := Build(px, Options{AdminAddress: admin, Listeners: addrs, Endpoints: opts.Endpoints, ClusterEndpoints: opts.ClusterEndpoints})
	if err != nil {
		return nil, err
	}
	if len(res.MissingSecrets) > 0 {
		return nil, &MissingSecretsError{Names: res.MissingSecrets}
	}
	bound := map[string]bool{}
	for _, a := range res.ListenerAddresses {
		bound[a] = true
	}
	for port, a := range addrs {
		if !bound[a] {
			return nil, fmt.Errorf("%s: Istio built no listener on port %d", name, port)
		}
	}
	dir, err := configDir("live")
	if err != nil {
		return nil, err
	}
	cfg, err := writeConfig(dir, res.Bootstrap)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	out := &limitedBuffer{max: 64 << 10}
	cmd := exec.Command(bin, "-c", cfg, "--disable-hot-restart", "--concurrency", "1",
		"--log-level", "warning", "--drain-time-s", "0", "--parent-shutdown-time-s", "1")
	cmd.Stdout, cmd.Stderr = out, out
	// Killed with the test process (Linux), in its own process group so Stop reaches nothing else.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p := &Process{Name: name, Admin: admin, Addrs: addrs, Dropped: res.Dropped, Bootstrap: res, cmd: cmd, dir: dir,
		done: make(chan struct{}), out: out}
	go func() { p.waitErr = cmd.Wait(); close(p.done) }()
	if err := p.waitReady(); err != nil {
		p.Stop()
		return nil, fmt.Errorf("%s: %v\n%s", name, err, cleanOutput(p.Output(), dir))
	}
	return p, nil
}

func (p *Process) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-p.done:
			return fmt.Errorf("envoy exited before it was ready: %v", p.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("envoy not ready after %s", StartTimeout)
		case <-time.After(50 * time.Millisecond):
		}
		resp, err := client.Get("http://" + p.Admin + "/ready")
		if err != nil {
			continue
		}
		body := make([]byte, 64)
		n, _ := resp.Body.Read(body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body[:n])) == "LIVE" {
			return nil
		}
	}
}

// Stop ends the Envoy (SIGTERM, then SIGKILL after 5s), waits for it and removes its files.
func (p *Process) Stop() {
	p.once.Do(func() {
		if p.cmd.Process != nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(5 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
		os.RemoveAll(p.dir)
	})
}

// Stats returns the admin /stats lines that contain filter (for a test's diagnostics).
func (p *Process) Stats(filter string) string {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + p.Admin + "/stats?filter=" + filter)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return b.String()
}

// Counter sums the admin counters whose name ends with suffix (e.g. ".rbac.denied": the HTTP and network
// RBAC filters' denials; shadow-policy counters end differently).
func (p *Process) Counter(suffix string) int {
	total := 0
	for _, line := range strings.Split(p.Stats(strings.TrimPrefix(suffix, ".")), "\n") {
		name, val, ok := strings.Cut(line, ": ")
		if !ok || !(strings.HasSuffix(name, suffix) || name == strings.TrimPrefix(suffix, ".")) || strings.Contains(name, "shadow") {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimSpace(val)); err == nil {
			total += n
		}
	}
	return total
}

// freeAddr returns ip:port with a port that was free a moment ago.
func freeAddr(ip string) (string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return "", fmt.Errorf("cannot bind on %s: %v", ip, err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// limitedBuffer keeps the last max bytes written.
type limitedBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	if len(l.b) > l.max {
		l.b = l.b[len(l.b)-l.max:]
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}
