package oracle

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// abort is the panic value a Fatal call of the failer raises; Trace recovers it and reports the state as
// one the oracle cannot judge (Istio's test helpers call Fatal when they cannot build what they were given).
type abort struct{ msg string }

func (a abort) Error() string { return a.msg }

// failer implements Istio's test.Failer for use outside `go test`: it collects errors, turns Fatal into a
// recoverable panic and runs the cleanups registered by the fake discovery servers on Close.
type failer struct {
	mu       sync.Mutex
	errs     []string
	cleanups []func()
	tmp      []string
	failed   bool
}

func newFailer() *failer { return &failer{} }

func (f *failer) record(msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed = true
	f.errs = append(f.errs, msg)
}

func (f *failer) Fail()               { f.record("failed") }
func (f *failer) FailNow()            { f.record("failed"); panic(abort{"failed"}) }
func (f *failer) Fatal(args ...any)   { m := fmt.Sprint(args...); f.record(m); panic(abort{m}) }
func (f *failer) Log(args ...any)     {}
func (f *failer) Logf(string, ...any) {}
func (f *failer) Helper()             {}
func (f *failer) Skip(args ...any)    { m := "skip: " + fmt.Sprint(args...); f.record(m); panic(abort{m}) }
func (f *failer) Fatalf(format string, args ...any) {
	m := fmt.Sprintf(format, args...)
	f.record(m)
	panic(abort{m})
}

func (f *failer) TempDir() string {
	d, err := os.MkdirTemp("", "istio-oracle-")
	if err != nil {
		f.Fatal(err)
	}
	f.mu.Lock()
	f.tmp = append(f.tmp, d)
	f.mu.Unlock()
	return d
}

func (f *failer) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

// Close runs the cleanups in reverse order (like testing.T) and removes temporary directories.
func (f *failer) Close() {
	f.mu.Lock()
	cs := f.cleanups
	f.cleanups = nil
	tmp := f.tmp
	f.tmp = nil
	f.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		func() {
			defer func() { _ = recover() }()
			cs[i]()
		}()
	}
	for _, d := range tmp {
		_ = os.RemoveAll(d)
	}
}

// collectTB satisfies testing.TB for Istio's xdstest validators (they only report through Errorf/Fatalf);
// every problem is collected instead of failing a test. The embedded nil testing.TB is never called: every
// method the validators use is overridden.
type collectTB struct {
	testing.TB
	errs []string
}

func (c *collectTB) Helper()             {}
func (c *collectTB) Log(args ...any)     {}
func (c *collectTB) Logf(string, ...any) {}
func (c *collectTB) Error(args ...any)   { c.errs = append(c.errs, fmt.Sprint(args...)) }
func (c *collectTB) Errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}
func (c *collectTB) Fail()             { c.errs = append(c.errs, "failed") }
func (c *collectTB) Failed() bool      { return len(c.errs) > 0 }
func (c *collectTB) FailNow()          { c.errs = append(c.errs, "failed"); panic(abort{"failed"}) }
func (c *collectTB) Fatal(args ...any) { c.Error(args...); panic(abort{fmt.Sprint(args...)}) }
func (c *collectTB) Fatalf(format string, args ...any) {
	c.Errorf(format, args...)
	panic(abort{fmt.Sprintf(format, args...)})
}
func (c *collectTB) Cleanup(func()) {}
func (c *collectTB) Name() string   { return "istio-oracle" }
