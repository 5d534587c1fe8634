package envoy

import (
	"os"
	"testing"
)

// Every test run validates afresh: the verdict cache lives in a directory of this run only.
func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "envoy-verdicts-")
	if err != nil {
		panic(err)
	}
	os.Setenv("ISTIO_ORACLE_ENVOY_CACHE", d)
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}
