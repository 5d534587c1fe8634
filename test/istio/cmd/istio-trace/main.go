// Command istio-trace traces one call through a directory of cluster states with Istio's own translator:
//
//	istio-trace --dir D --from <cluster>/<namespace>/<pod> --url http://host[:port]/path|tcp://host:port
//	            [--json] [--envoy off|validate|live] [--header 'Name: value']... [--method GET]
//
// Exit codes: 0 the request reaches the backend, 1 it is refused at some hop, 2 usage error, 3 the oracle
// cannot judge the state.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"meshfed.test/istio/oracle"
)

// envoyHooks, when set (by the Envoy side of the module, in its own file of this package), returns the
// proxy-config judge for --envoy validate|live and the live runner for --envoy live.
var envoyHooks func(mode string) (oracle.ProxyConfigJudge, oracle.LiveJudge, error)

// requestSetter is a live judge that sends the traced call's headers and method (envoy.LiveRunner).
type requestSetter interface {
	SetRequest(headers map[string]string, method string)
}

type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("istio-trace", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "directory of <cluster>.yaml files (every object of each cluster)")
	from := fs.String("from", "", "the calling pod: <cluster>/<namespace>/<pod>")
	rawURL := fs.String("url", "", "http://<host>[:port]/path or tcp://<host>:<port>, the host as the app types it")
	asJSON := fs.Bool("json", false, "print one JSON object")
	envoyMode := fs.String("envoy", "validate", "off | validate (envoy --mode validate on every proxy config) | live (also run the gateways as real Envoy processes)")
	method := fs.String("method", "GET", "HTTP method")
	var headers headerFlags
	fs.Var(&headers, "header", "extra request header 'Name: value' (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	usage := func(msg string) int {
		fmt.Fprintf(stderr, "istio-trace: %s\n", msg)
		fmt.Fprintln(stderr, "usage: istio-trace --dir D --from <cluster>/<namespace>/<pod> --url <url> [--json] [--envoy off|validate|live]")
		return 2
	}
	if fs.NArg() > 0 {
		return usage(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if *dir == "" || *from == "" || *rawURL == "" {
		return usage("--dir, --from and --url are required")
	}
	hdrs := map[string]string{}
	for _, h := range headers {
		i := strings.Index(h, ":")
		if i <= 0 {
			return usage(fmt.Sprintf("--header %q: want 'Name: value'", h))
		}
		hdrs[strings.ToLower(strings.TrimSpace(h[:i]))] = strings.TrimSpace(h[i+1:])
	}
	opts := oracle.Options{Headers: hdrs, Method: *method}
	var live oracle.LiveJudge
	switch *envoyMode {
	case "off":
	case "validate", "live":
		if envoyHooks == nil {
			fmt.Fprintf(stderr, "istio-trace: --envoy %s: this build has no Envoy judge; use --envoy off\n", *envoyMode)
			return 3
		}
		j, l, err := envoyHooks(*envoyMode)
		if err != nil {
			fmt.Fprintf(stderr, "istio-trace: --envoy %s: %v (use --envoy off to trace without Envoy)\n", *envoyMode, err)
			return 3
		}
		opts.Judge = j
		if *envoyMode == "live" {
			live = l
			// The live request carries the traced call's headers and method (a header attach routes by them).
			if r, ok := l.(requestSetter); ok {
				r.SetRequest(hdrs, *method)
			}
		}
	default:
		return usage(fmt.Sprintf("--envoy %q: want off, validate or live", *envoyMode))
	}

	st, err := oracle.LoadState(*dir)
	if err != nil {
		return usage(err.Error())
	}
	res, err := oracle.Trace(st, *from, *rawURL, opts)
	if err != nil {
		if oracle.IsUsageError(err) {
			return usage(err.Error())
		}
		fmt.Fprintf(stderr, "istio-trace: %v\n", err)
		return 3
	}
	if live != nil && res.Verdict != "cannot-judge" {
		lo, err := live.Live(res)
		switch {
		case err != nil:
			res.Verdict = "cannot-judge"
			res.CannotJudge = "live Envoy run failed: " + err.Error()
		default:
			res.Live = lo
			if lo.Reached != (res.Verdict == "reached") {
				res.CannotJudge = fmt.Sprintf("Istio's simulator says %s but the live Envoy request says %s (%s)", res.Verdict, map[bool]string{true: "reached", false: "refused"}[lo.Reached], lo.Detail)
				res.Verdict = "cannot-judge"
			}
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(stderr, "istio-trace: %v\n", err)
			return 3
		}
	} else {
		printText(stdout, res)
	}
	switch res.Verdict {
	case "reached":
		return 0
	case "refused":
		return 1
	default:
		return 3
	}
}

func printText(w io.Writer, res *oracle.Result) {
	fmt.Fprintf(w, "Istio %s oracle: %s from %s\n", res.Istio, res.Call.URL, res.Call.From)
	for _, p := range res.Rejected {
		fmt.Fprintf(w, "! %s: %s is rejected by Istio's validation: %s\n", p.Cluster, p.Object, p.Error)
	}
	for _, h := range res.Hops {
		mark := "✓"
		if h.Outcome != "passed" {
			mark = "✗"
		}
		line := fmt.Sprintf("%s %s %s %s:", mark, h.Hop, h.Cluster, h.Proxy)
		if h.Listener != "" {
			line += " listener " + h.Listener
		}
		if h.FilterChain != "" {
			line += " chain " + h.FilterChain
		}
		if h.Route != "" {
			line += " route " + h.Route
		}
		if h.UpstreamCluster != "" {
			line += " -> cluster " + h.UpstreamCluster
		}
		if n := h.Next; n != nil {
			line += fmt.Sprintf(" -> %s:%d tls=%s", n.Address, n.Port, n.TLS)
			if n.SNI != "" {
				line += " sni=" + n.SNI
			}
			if n.Authority != "" {
				line += " authority=" + n.Authority
			}
		}
		if h.RBAC != nil {
			line += fmt.Sprintf(" rbac %s allowed=%v", h.RBAC.Action, h.RBAC.Allowed)
		}
		if h.Outcome != "passed" {
			line += " [" + h.Reason + "] " + h.Detail
		}
		fmt.Fprintln(w, line)
		if h.Outcome != "passed" {
			for _, v := range h.Validation {
				if !strings.HasSuffix(v, ": ok") {
					fmt.Fprintln(w, "    "+v)
				}
			}
		}
	}
	switch res.Verdict {
	case "reached":
		fmt.Fprintln(w, "reached backend")
	case "refused":
		fmt.Fprintf(w, "refused at %s: %s\n", *res.RefusedAt, *res.Reason)
	default:
		fmt.Fprintf(w, "cannot judge: %s\n", res.CannotJudge)
	}
	for _, b := range res.Branches {
		fmt.Fprintf(w, "  branch %s: %s\n", b.Via, b.Verdict)
	}
}
