// Package privtest gates privileged tests: they run as root, and in CI
// (CI set) a missing privilege fails the test instead of skipping it, so a
// skipped privileged test can never pass CI silently.
package privtest

import (
	"os"
	"testing"
)

// Require fails (in CI) or skips (elsewhere) unless running as root.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("privileged test needs root, and CI is set: refusing to skip")
	}
	t.Skip("privileged test: run as root")
}
