package envoy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

func TestConfigDirsOfKilledRunsAreRemoved(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid
	stale := filepath.Join(os.TempDir(), "envoy-live-"+strconv.Itoa(dead)+"-123")
	if err := os.MkdirAll(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stale, "secret-0-key.pem"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	mine, err := configDir("live")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(mine)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		os.RemoveAll(stale)
		t.Fatalf("the directory of the dead process %d is still there", dead)
	}
	sweepStale("live")
	if _, err := os.Stat(mine); err != nil {
		t.Fatalf("the directory of a live process was removed: %v", err)
	}
}
