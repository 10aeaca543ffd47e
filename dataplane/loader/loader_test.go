package loader_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"

	"github.com/straitlb/strait/dataplane/loader/loadertest"
	"github.com/straitlb/strait/dataplane/testrun"
)

func passProgram(t *testing.T) *ebpf.Program {
	t.Helper()
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// Strait refuses to replace an XDP program it does not own, attaches
// where the device is free, pins the link, and a reload updates it in place.
func TestPrivilegedAttachOwnership(t *testing.T) {
	dir := loadertest.PinDir(t)
	ns, err := testrun.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	err = ns.Do(func() error {
		for _, name := range []string{"foreign0", "mine0"} {
			if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}); err != nil {
				return err
			}
		}
		foreign, _ := netlink.LinkByName("foreign0")
		l, err := link.AttachXDP(link.XDPOptions{Program: passProgram(t), Interface: foreign.Attrs().Index})
		if err != nil {
			return err
		}
		defer l.Close()

		d := loadertest.Load(t, dir)
		if _, err := d.AttachXDP("foreign0", false); err == nil || !strings.Contains(err.Error(), "does not own") {
			t.Errorf("attaching over a foreign program: got %v, want a refusal", err)
		}
		a, err := d.AttachXDP("mine0", false)
		if err != nil {
			return err
		}
		if a.Updated || a.Mode != "native" {
			t.Errorf("first attach: %+v, want a new native attachment", a)
		}
		if _, err := os.Stat(filepath.Join(dir, "links", "xdp_mine0")); err != nil {
			t.Errorf("link not pinned: %v", err)
		}
		if _, err := d.AttachTCEgress("mine0"); err != nil {
			return err
		}
		// A restarted agent: new objects, same pins.
		d2 := loadertest.Load(t, dir)
		a2, err := d2.AttachXDP("mine0", false)
		if err != nil {
			return err
		}
		if !a2.Updated {
			t.Errorf("reattach after restart: %+v, want an in-place update", a2)
		}
		if _, err := d2.AttachTCEgress("mine0"); err != nil {
			return err
		}
		mine, _ := netlink.LinkByName("mine0")
		info, err := d2.Objects().StraitXdp.Info()
		if err != nil {
			return err
		}
		id, _ := info.ID()
		if x := mine.Attrs().Xdp; x == nil || x.ProgId != uint32(id) {
			t.Errorf("device runs XDP %+v, want the new program id %d", x, id)
		}
		return d2.Detach("mine0")
	})
	if err != nil {
		t.Fatal(err)
	}
}
