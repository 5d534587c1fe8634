package envoy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	bootstrap "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tls "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
)

// ValidateTimeout bounds one `envoy --mode validate` run.
var ValidateTimeout = 2 * time.Minute

// RejectedError is Envoy refusing a config; Output is Envoy's own message.
type RejectedError struct {
	Output string
}

func (e *RejectedError) Error() string { return "envoy rejected the config: " + e.Output }

// writeConfig writes the bootstrap into dir (created 0700 by the caller) as bootstrap.json. Certificates
// and private keys of static secrets go to their own files (0600) referenced by filename, so that no
// message of Envoy's (some print the offending proto) can carry key material. The input is not modified.
func writeConfig(dir string, b *bootstrap.Bootstrap) (string, error) {
	b = proto.Clone(b).(*bootstrap.Bootstrap)
	for i, s := range b.GetStaticResources().GetSecrets() {
		toFile := func(ds *core.DataSource, what string) error {
			if ds == nil {
				return nil
			}
			var data []byte
			switch v := ds.Specifier.(type) {
			case *core.DataSource_InlineBytes:
				data = v.InlineBytes
			case *core.DataSource_InlineString:
				data = []byte(v.InlineString)
			default:
				return nil
			}
			p := filepath.Join(dir, fmt.Sprintf("secret-%d-%s.pem", i, what))
			if err := os.WriteFile(p, data, 0o600); err != nil {
				return err
			}
			ds.Specifier = &core.DataSource_Filename{Filename: p}
			return nil
		}
		var err error
		switch t := s.Type.(type) {
		case *tls.Secret_TlsCertificate:
			if err = toFile(t.TlsCertificate.CertificateChain, "cert"); err == nil {
				err = toFile(t.TlsCertificate.PrivateKey, "key")
			}
		case *tls.Secret_ValidationContext:
			err = toFile(t.ValidationContext.TrustedCa, "ca")
		}
		if err != nil {
			return "", err
		}
	}
	j, err := JSON(b)
	if err != nil {
		return "", fmt.Errorf("cannot render the bootstrap: %v", err)
	}
	p := filepath.Join(dir, "bootstrap.json")
	if err := os.WriteFile(p, j, 0o600); err != nil {
		return "", err
	}
	return p, nil
}

// Validate runs `envoy --mode validate` on the bootstrap: Envoy loads every listener, cluster, route and
// secret as it would at start-up, without binding ports or connecting anywhere. A nil error means Envoy
// accepts the config; a *RejectedError carries Envoy's own message.
func Validate(b *bootstrap.Bootstrap) error {
	bin, err := Binary()
	if err != nil {
		return err
	}
	dir, err := configDir("validate")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg, err := writeConfig(dir, b)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), ValidateTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--mode", "validate", "-c", cfg,
		// No shared memory for hot restart: parallel runs must not collide on a base id.
		"--disable-hot-restart", "--concurrency", "1", "--log-level", "error")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return fmt.Errorf("envoy --mode validate did not finish within %s", ValidateTimeout)
	}
	if err != nil {
		return &RejectedError{Output: cleanOutput(string(out), dir)}
	}
	return nil
}

var logPrefix = regexp.MustCompile(`(?m)^\[[^\]]*\]\[\d+\]\[(\w+)\]\[\w+\] \[[^\]]*\] `)

// cleanOutput keeps Envoy's message readable: the temporary directory disappears from paths and the
// log prefix of each line ([time][pid][level][logger] [source]) shrinks to its level.
func cleanOutput(s, dir string) string {
	s = strings.ReplaceAll(s, dir+string(filepath.Separator), "")
	s = strings.ReplaceAll(s, dir, "<tmp>")
	s = logPrefix.ReplaceAllString(s, "$1: ")
	return string(bytes.TrimSpace([]byte(s)))
}
