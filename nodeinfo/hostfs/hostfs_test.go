package hostfs_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/straitlb/strait/nodeinfo/hostfs"
)

func TestHelpers(t *testing.T) {
	root := t.TempDir()
	fs := hostfs.AtRoot(root)
	if fs.SysPath("class", "net") != filepath.Join(root, "sys/class/net") || fs.ProcPath("stat") != filepath.Join(root, "proc/stat") {
		t.Fatalf("%+v", fs)
	}
	dir := fs.SysPath("class", "net", "eth0")
	if err := os.MkdirAll(filepath.Join(dir, "queues", "rx-0"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "mtu"), []byte("1500\n"), 0o644)
	os.Mkdir(filepath.Join(dir, "queues", "tx-0"), 0o755)
	os.Symlink("../../devices/virtual/net/bond0", filepath.Join(dir, "master"))
	if hostfs.ReadIntOr(filepath.Join(dir, "mtu"), 0) != 1500 || hostfs.ReadIntOr(filepath.Join(dir, "nope"), -1) != -1 {
		t.Error("ReadIntOr")
	}
	if hostfs.ReadStringOr(filepath.Join(dir, "nope"), "x") != "x" {
		t.Error("ReadStringOr")
	}
	if hostfs.LinkBase(filepath.Join(dir, "master")) != "bond0" || hostfs.LinkBase(filepath.Join(dir, "mtu")) != "" {
		t.Error("LinkBase")
	}
	if got := hostfs.ListPrefix(filepath.Join(dir, "queues"), "rx-"); !slices.Equal(got, []string{"rx-0"}) {
		t.Errorf("ListPrefix %v", got)
	}
	if got, err := hostfs.List(filepath.Join(root, "missing")); err != nil || got != nil {
		t.Errorf("List of a missing dir: %v %v", got, err)
	}
	if !hostfs.Exists(dir) || hostfs.Exists(filepath.Join(dir, "master")) {
		t.Error("Exists follows links: a dangling master link does not exist")
	}
}
