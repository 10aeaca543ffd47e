// Package loadertest loads a real, private datapath for privileged tests:
// a bpffs mounted in the test's temp dir, so pins never collide with the
// node's agent or another test, unmounted at cleanup.
package loadertest

import (
	"path/filepath"
	"testing"

	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"

	"github.com/straitlb/strait/dataplane/lbmap"
	"github.com/straitlb/strait/dataplane/loader"
	"github.com/straitlb/strait/internal/privtest"
)

// PinDir mounts a private bpffs and returns a pin directory on it.
func PinDir(t testing.TB) string {
	t.Helper()
	privtest.Require(t)
	fs := filepath.Join(t.TempDir(), "bpffs")
	if err := loader.EnsureBPFFS(fs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(fs, unix.MNT_DETACH) })
	return filepath.Join(fs, "strait")
}

// Load loads the datapath pinned under dir (see PinDir) with small
// capacities unless caps is given.
func Load(t testing.TB, dir string, caps ...lbmap.Capacities) *loader.Datapath {
	t.Helper()
	c := lbmap.DefaultCapacities
	if len(caps) > 0 {
		c = caps[0]
	}
	d, err := loader.Load(zaptest.NewLogger(t), loader.Options{PinDir: dir, Capacities: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}
