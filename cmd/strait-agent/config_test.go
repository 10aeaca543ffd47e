package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParsePortRange(t *testing.T) {
	for _, c := range []struct {
		in     string
		lo, hi uint16
		err    string
	}{
		{in: "61000-65535", lo: 61000, hi: 65535},
		{in: "1024-1025", lo: 1024, hi: 1025},
		{in: " 40000 - 50000 ", lo: 40000, hi: 50000},
		{in: "32768\t60999", lo: 32768, hi: 60999}, // as ip_local_port_range prints it
		{in: "", err: "not \"min-max\""},
		{in: "61000", err: "not \"min-max\""},
		{in: "61000-62000-63000", err: "not \"min-max\""},
		{in: "1023-2000", err: "not in 1024..65535"},
		{in: "0-2000", err: "not in 1024..65535"},
		{in: "60000-65536", err: "not in 1024..65535"},
		{in: "-5-100", err: "not \"min-max\""},
		{in: "a-b", err: "not in 1024..65535"},
		{in: "62000-61000", err: "min 62000 is not below max 61000"},
		{in: "61000-61000", err: "min 61000 is not below max 61000"},
	} {
		lo, hi, err := ParsePortRange(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParsePortRange(%q) = %d, %d, %v; want an error with %q", c.in, lo, hi, err, c.err)
			}
			continue
		}
		if err != nil || lo != c.lo || hi != c.hi {
			t.Errorf("ParsePortRange(%q) = %d, %d, %v; want %d, %d", c.in, lo, hi, err, c.lo, c.hi)
		}
	}
}

func TestPortRangesOverlap(t *testing.T) {
	for _, c := range []struct {
		alo, ahi, blo, bhi uint16
		want               bool
	}{
		{61000, 65535, 32768, 60999, false}, // the defaults
		{60999, 65535, 32768, 60999, true},  // one shared port
		{40000, 50000, 32768, 60999, true},  // inside
		{20000, 30000, 32768, 60999, false},
		{1024, 32767, 32768, 60999, false},
		{1024, 65535, 32768, 60999, true}, // around
	} {
		if got := PortRangesOverlap(c.alo, c.ahi, c.blo, c.bhi); got != c.want {
			t.Errorf("PortRangesOverlap(%d-%d, %d-%d) = %v", c.alo, c.ahi, c.blo, c.bhi, got)
		}
	}
}

// The YAML field: default when absent, parsed when given, and an invalid
// range fails validation.
func TestConfigSNATPortRange(t *testing.T) {
	load := func(yaml string) (Config, error) {
		t.Helper()
		p := filepath.Join(t.TempDir(), "agent.yaml")
		if err := os.WriteFile(p, []byte("nodeName: n1\n"+yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		f := &flags{config: p}
		return f.merge()
	}
	c, err := load("")
	if err != nil || c.SNATPortRange != DefaultSNATPortRange {
		t.Fatalf("default: %q, %v", c.SNATPortRange, err)
	}
	if lo, hi, err := ParsePortRange(c.SNATPortRange); err != nil || lo != 61000 || hi != 65535 {
		t.Fatalf("default range %d-%d, %v", lo, hi, err)
	}
	c, err = load("snatPortRange: \"20000-29999\"\n")
	if err != nil || c.SNATPortRange != "20000-29999" {
		t.Fatalf("given: %q, %v", c.SNATPortRange, err)
	}
	for _, bad := range []string{"\"65535-1024\"", "\"80-8080\"", "\"61000\""} {
		if _, err := load("snatPortRange: " + bad + "\n"); err == nil || !strings.Contains(err.Error(), "snatPortRange") {
			t.Errorf("snatPortRange %s: %v", bad, err)
		}
	}
	if _, err := load("snatPortRanges: \"20000-29999\"\n"); err == nil {
		t.Error("a misspelt field was accepted")
	}
}

// LocalPortRange reads the kernel's range in the form ParsePortRange takes.
func TestLocalPortRange(t *testing.T) {
	lo, hi, err := LocalPortRange()
	if err != nil {
		t.Skip("no /proc/sys/net/ipv4/ip_local_port_range:", err)
	}
	if lo == 0 || hi < lo {
		t.Fatalf("ip_local_port_range %d-%d", lo, hi)
	}
}
