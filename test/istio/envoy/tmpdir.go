package envoy

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Envoy's config directories hold certificates and keys (0600, in a 0700 directory). They are removed
// when a run ends; a process killed outright (SIGKILL, e.g. a test runner's timeout) cannot, so each
// directory carries its owner's pid and the next run removes the directories of processes that are gone.

func configDir(kind string) (string, error) {
	sweepStale(kind)
	return os.MkdirTemp("", "envoy-"+kind+"-"+strconv.Itoa(os.Getpid())+"-")
}

func sweepStale(kind string) {
	prefix := "envoy-" + kind + "-"
	entries, err := os.ReadDir(os.TempDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || !strings.HasPrefix(name, prefix) {
			continue
		}
		pidStr, _, ok := strings.Cut(strings.TrimPrefix(name, prefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || !errors.Is(err, syscall.ESRCH) {
			continue // alive (or not ours to judge)
		}
		st, err := os.Stat(filepath.Join(os.TempDir(), name))
		if err != nil || st.Sys().(*syscall.Stat_t).Uid != uint32(os.Getuid()) {
			continue
		}
		os.RemoveAll(filepath.Join(os.TempDir(), name))
	}
}
