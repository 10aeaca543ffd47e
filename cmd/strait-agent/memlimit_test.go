package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseMemoryMax(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		in   string
		want int64
		err  bool
	}{{"max\n", 0, false}, {"536870912\n", 536870912, false}, {"lots", 0, true}} {
		p := filepath.Join(dir, "memory.max")
		if err := os.WriteFile(p, []byte(c.in), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := parseMemoryMax(p)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("parseMemoryMax(%q) = %d, %v; want %d (error %v)", c.in, got, err, c.want, c.err)
		}
	}
	if _, err := parseMemoryMax(filepath.Join(dir, "absent")); err == nil {
		t.Error("no error for a missing file")
	}
}
