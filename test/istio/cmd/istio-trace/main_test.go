package main

import (
	"io"
	"path/filepath"
	"testing"

	"meshfed.test/istio/oracle"
)

// recordingLive is a live judge that records the request it is handed.
type recordingLive struct {
	headers map[string]string
	method  string
}

func (r *recordingLive) SetRequest(headers map[string]string, method string) {
	r.headers, r.method = headers, method
}

func (r *recordingLive) Live(*oracle.Result) (*oracle.LiveOutcome, error) {
	return &oracle.LiveOutcome{}, nil
}

// The live request carries the traced call's --header values and --method: a header attach routes by them.
func TestLiveRequestGetsHeadersAndMethod(t *testing.T) {
	saved := envoyHooks
	defer func() { envoyHooks = saved }()
	live := &recordingLive{}
	envoyHooks = func(mode string) (oracle.ProxyConfigJudge, oracle.LiveJudge, error) { return nil, live, nil }

	// A directory without cluster dumps: the trace stops at loading, after the live judge was set up.
	code := run([]string{
		"--dir", filepath.Join(t.TempDir(), "none"), "--from", "cluster1/default/sleep", "--url", "http://reviews.default:9080/",
		"--envoy", "live", "--header", "X-Federate: yes", "--header", "x-user: jason", "--method", "POST",
	}, io.Discard, io.Discard)
	if code != 2 {
		t.Fatalf("exit %d, want 2 (no dumps)", code)
	}
	if live.method != "POST" || live.headers["x-federate"] != "yes" || live.headers["x-user"] != "jason" || len(live.headers) != 2 {
		t.Fatalf("live request got method %q headers %v", live.method, live.headers)
	}
}
