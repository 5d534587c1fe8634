package envoy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"

	bootstrap "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/proto"

	"meshfed.test/istio/oracle"
)

// The verdict of `envoy --mode validate` is a function of the config and the Envoy binary. The CLI runs
// once per traced call, so the differential tests validate the same proxy configs many times; verdicts
// are kept on disk, keyed by the Envoy version and a digest of the config: every listener, cluster and
// route, and every secret's material, except the certificates and CAs the oracle mints afresh on each run
// (workload certificates, a self-signed mesh CA when the dump has none): valid by construction, they are
// keyed by name only.
//
// ISTIO_ORACLE_ENVOY_CACHE names the directory ("off" disables it); default <user cache dir>/meshfed-istio-oracle/envoy-validate.

func cacheDir() string {
	d := os.Getenv("ISTIO_ORACLE_ENVOY_CACHE")
	if d == "off" {
		return ""
	}
	if d == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		d = filepath.Join(base, "meshfed-istio-oracle", "envoy-validate")
	}
	return d
}

func cacheKey(b *bootstrap.Bootstrap, p *oracle.ProxyXDS) (string, bool) {
	v, err := Version()
	if err != nil {
		return "", false
	}
	nb := proto.Clone(b).(*bootstrap.Bootstrap)
	secrets := nb.GetStaticResources().GetSecrets()
	nb.StaticResources.Secrets = nil
	// protojson's whitespace is deliberately unstable; encoding/json re-renders it with sorted keys.
	j, err := JSON(nb)
	if err != nil {
		return "", false
	}
	var tree any
	if err := json.Unmarshal(j, &tree); err != nil {
		return "", false
	}
	canon, err := json.Marshal(tree)
	if err != nil {
		return "", false
	}
	h := sha256.New()
	h.Write([]byte(v + "\n"))
	h.Write(canon)
	names := make([]string, 0, len(secrets))
	for _, s := range secrets {
		names = append(names, s.Name)
	}
	sort.Strings(names)
	for _, n := range names {
		h.Write([]byte("\nsecret " + n + "\n"))
		m := p.Secrets[n]
		if m == nil {
			// backed for validation only (see ValidateJudge.Judge)
			h.Write([]byte("missing"))
			continue
		}
		if strings.Contains(m.Source, "minted by the oracle") || strings.Contains(m.Source, "made by the oracle") {
			h.Write([]byte("minted"))
			continue
		}
		h.Write(m.CertChainPEM)
		h.Write([]byte{0})
		h.Write(m.PrivateKeyPEM)
		h.Write([]byte{0})
		h.Write(m.CACertPEM)
	}
	return hex.EncodeToString(h.Sum(nil)), true
}

// cachedVerdict returns (found, Envoy's rejection or "").
func cachedVerdict(key string) (bool, string) {
	d := cacheDir()
	if d == "" {
		return false, ""
	}
	data, err := os.ReadFile(filepath.Join(d, key))
	if err != nil {
		return false, ""
	}
	s := string(data)
	if s == "ok" {
		return true, ""
	}
	if msg, ok := strings.CutPrefix(s, "rejected\n"); ok {
		return true, msg
	}
	return false, ""
}

func storeVerdict(key string, rejection string) {
	d := cacheDir()
	if d == "" || os.MkdirAll(d, 0o700) != nil {
		return
	}
	data := "ok"
	if rejection != "" {
		data = "rejected\n" + rejection
	}
	tmp, err := os.CreateTemp(d, ".tmp-")
	if err != nil {
		return
	}
	_, err = tmp.WriteString(data)
	tmp.Close()
	if err != nil {
		os.Remove(tmp.Name())
		return
	}
	if os.Rename(tmp.Name(), filepath.Join(d, key)) != nil {
		os.Remove(tmp.Name())
	}
}
