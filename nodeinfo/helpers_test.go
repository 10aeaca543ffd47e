package nodeinfo_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/straitlb/strait/nodeinfo"
	"github.com/straitlb/strait/nodeinfo/internal/layouts"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func inspect(t *testing.T, l *layouts.Layout, cfg nodeinfo.Config) nodeinfo.Status {
	t.Helper()
	in := &nodeinfo.Inspector{FS: l.FS(), Net: l.Net, Ethtool: l.Ethtool, Config: cfg,
		Now: func() time.Time { return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) }}
	st, err := in.Inspect()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file (go test ./nodeinfo -run %s -update rewrites it)\n--- got:\n%s\n--- want:\n%s", path, t.Name(), got, want)
	}
}
