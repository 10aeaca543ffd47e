package kubetest

import (
	"errors"
	"os"
	"testing"
)

// Start starts a control plane for a test and registers t.Cleanup to stop
// it. If the binaries are unavailable (and cannot be built), the test is
// skipped, or fails when the CI environment variable is set. Any other
// startup failure fails the test with the tails of the process logs.
func Start(t testing.TB) *ControlPlane {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with options. A nil opts.Logf logs to t.
func StartWith(t testing.TB, opts Options) *ControlPlane {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	cp, err := StartCluster(t.Context(), opts)
	if err != nil {
		if errors.Is(err, ErrNoBinaries) && os.Getenv("CI") == "" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kubetest: control-plane logs (tail):\n%s", cp.Logs())
		}
		if err := cp.Stop(); err != nil {
			t.Errorf("kubetest: stop: %v", err)
		}
	})
	return cp
}
