// Package frrlab runs FRR (zebra and bgpd, started by hand: no systemd) in
// a netlab namespace as a top-of-rack router for demos and tests, and reads
// its tables with vtysh.
package frrlab

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/straitlb/strait/internal/netlab"
)

// Neighbor is one BGP peer of the router.
type Neighbor struct {
	Addr     netip.Addr
	ASN      uint32
	Password string
}

// Config describes the router.
type Config struct {
	ASN       uint32
	RouterID  netip.Addr
	Neighbors []Neighbor
	// Global holds extra global configuration lines, written before
	// "router bgp" (e.g. "log timestamp precision 6", "zebra work-queue
	// 0"). zebra and bgpd read the same file: each ignores the other's
	// commands (with a warning in its log).
	Global []string
	// LogLevel is the level of the daemons' logs (see LogPath; default
	// informational). "debugging" lets `debug ...` commands log.
	LogLevel string
}

// FRR is a running zebra + bgpd.
type FRR struct {
	dir   string
	procs []*netlab.Process
}

func (c Config) render() string {
	var b strings.Builder
	level := c.LogLevel
	if level == "" {
		level = "informational"
	}
	fmt.Fprintf(&b, "frr defaults traditional\nhostname tor\nlog stdout %s\n", level)
	for _, l := range c.Global {
		fmt.Fprintf(&b, "%s\n", l)
	}
	fmt.Fprintf(&b, "!\nrouter bgp %d\n bgp router-id %s\n", c.ASN, c.RouterID)
	b.WriteString(" no bgp ebgp-requires-policy\n no bgp network import-check\n timers bgp 3 9\n")
	for _, n := range c.Neighbors {
		fmt.Fprintf(&b, " neighbor %s remote-as %d\n neighbor %s timers connect 1\n", n.Addr, n.ASN, n.Addr)
		if n.Password != "" {
			fmt.Fprintf(&b, " neighbor %s password %s\n", n.Addr, n.Password)
		}
	}
	b.WriteString(" !\n address-family ipv4 unicast\n  maximum-paths 8\n exit-address-family\n!\n")
	return b.String()
}

// Start runs zebra and bgpd in ns. The run directory is world-writable
// (the daemons drop to user frr) and removed by Close.
func Start(ns *netlab.NS, cfg Config) (*FRR, error) {
	for _, b := range []string{"/usr/lib/frr/zebra", "/usr/lib/frr/bgpd", "/usr/bin/vtysh"} {
		if _, err := os.Stat(b); err != nil {
			return nil, fmt.Errorf("FRR is not installed (hack/deps.sh): %w", err)
		}
	}
	dir, err := os.MkdirTemp("/tmp", "strait-frr-")
	if err != nil {
		return nil, err
	}
	f := &FRR{dir: dir}
	if err := os.Chmod(dir, 0o777); err != nil {
		f.Close()
		return nil, err
	}
	conf := filepath.Join(dir, "frr.conf")
	if err := os.WriteFile(conf, []byte(cfg.render()), 0o644); err != nil {
		f.Close()
		return nil, err
	}
	common := []string{"-f", conf, "--vty_socket", dir, "-z", filepath.Join(dir, "zserv.api")}
	for _, d := range []struct{ bin, wait string }{
		{"/usr/lib/frr/zebra", "zserv.api"},
		{"/usr/lib/frr/bgpd", "bgpd.vty"},
	} {
		name := filepath.Base(d.bin)
		logf, err := os.Create(filepath.Join(dir, name+".log"))
		if err != nil {
			f.Close()
			return nil, err
		}
		cmd := exec.Command(d.bin, append([]string{"-i", filepath.Join(dir, name+".pid")}, common...)...)
		cmd.Stdout, cmd.Stderr, cmd.Dir = logf, logf, dir
		p, err := ns.Spawn(cmd)
		logf.Close()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		f.procs = append(f.procs, p)
		if err := waitFile(filepath.Join(dir, d.wait), 20*time.Second); err != nil {
			f.Close()
			return nil, fmt.Errorf("%s did not start: %w", name, err)
		}
	}
	return f, nil
}

func waitFile(path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear in %s", path, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// LogPath returns the file that receives a daemon's log ("zebra" or
// "bgpd"); it is removed by Close.
func (f *FRR) LogPath(daemon string) string { return filepath.Join(f.dir, daemon+".log") }

// Vtysh runs one vtysh command against this router.
func (f *FRR) Vtysh(cmd string) (string, error) {
	out, err := exec.Command("vtysh", "--vty_socket", f.dir, "-c", cmd).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("vtysh %q: %w: %s", cmd, err, out)
	}
	return string(out), nil
}

// WaitFor polls vtysh cmd until its output contains every want string.
func (f *FRR) WaitFor(cmd string, timeout time.Duration, want ...string) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		out, err := f.Vtysh(cmd)
		ok := err == nil
		for _, w := range want {
			ok = ok && strings.Contains(out, w)
		}
		if ok {
			return out, nil
		}
		if time.Now().After(deadline) {
			return out, fmt.Errorf("%q did not show %q within %s", cmd, want, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Close stops the daemons and removes the run directory.
func (f *FRR) Close() error {
	var errs []error
	for i := len(f.procs) - 1; i >= 0; i-- {
		if err := f.procs[i].Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, os.RemoveAll(f.dir))
	return errors.Join(errs...)
}
