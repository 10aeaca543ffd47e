package nodeinfo_test

// Privileged tests run discovery, the watcher and real XDP attachments in a
// fresh network namespace.
//
// Sysfs shows the network devices of the namespace of the task that mounted
// it, not of the reader. `ip netns exec` gets the namespace's view by
// remounting /sys in a private mount namespace; here the test instead mounts
// a fresh sysfs on a temporary directory from a thread that has joined the
// test namespace (netlab.NS.Do) and points hostfs.FS.Sys at it. The mount is
// visible to every thread, so discovery, the watcher and its goroutines all
// read the namespace's devices without re-executing the test binary; it is
// unmounted (MNT_DETACH) when the test ends. /proc stays the host's: the
// files read from it (interrupts, irq affinity, stat) are not per namespace.

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/straitlb/strait/internal/netlab"
	"github.com/straitlb/strait/nodeinfo"
	"github.com/straitlb/strait/nodeinfo/hostfs"
	"github.com/straitlb/strait/nodeinfo/netdev"
	"github.com/straitlb/strait/nodeinfo/xdpplan"
)

// nsInspector returns an inspector whose sources all look at ns: a sysfs
// mounted from inside it, netlink through the namespace's handle and an
// ethtool socket opened inside it.
func nsInspector(t *testing.T, ns *netlab.NS, cfg nodeinfo.Config) *nodeinfo.Inspector {
	t.Helper()
	dir := t.TempDir()
	err := ns.Do(func() error {
		return unix.Mount("sysfs", dir, "sysfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	})
	if err != nil {
		t.Fatalf("mount sysfs inside %s: %v", ns, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	var eth *netdev.EthtoolIoctl
	if err := ns.Do(func() (err error) { eth, err = netdev.NewEthtoolIoctl(); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eth.Close() })
	return &nodeinfo.Inspector{
		FS:      hostfs.FS{Sys: dir, Proc: "/proc"},
		Net:     netdev.NetlinkSource{Handle: ns.Netlink()},
		Ethtool: eth,
		Config:  cfg,
	}
}

func passProgram(t *testing.T) *ebpf.Program {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "nodeinfo_pass",
		Type:         ebpf.XDP,
		License:      "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()}, // XDP_PASS
	})
	if err != nil {
		t.Fatalf("load XDP program: %v", err)
	}
	t.Cleanup(func() { prog.Close() })
	return prog
}

// attach attaches prog to dev inside ns in mode.
func attach(ns *netlab.NS, prog *ebpf.Program, dev string, mode xdpplan.Mode) (link.Link, error) {
	var l link.Link
	err := ns.Do(func() error {
		nl, err := netlink.LinkByName(dev)
		if err != nil {
			return err
		}
		flags := link.XDPDriverMode
		if mode == xdpplan.ModeGeneric {
			flags = link.XDPGenericMode
		}
		l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: nl.Attrs().Index, Flags: flags})
		return err
	})
	return l, err
}

func xdpAttachMode(t *testing.T, ns *netlab.NS, dev string) uint32 {
	t.Helper()
	l, err := ns.Link(dev)
	if err != nil {
		t.Fatal(err)
	}
	if x := l.Attrs().Xdp; x != nil && x.Attached {
		return x.AttachMode
	}
	return 0
}

func mustInspect(t *testing.T, in *nodeinfo.Inspector) nodeinfo.Status {
	t.Helper()
	st, err := in.Inspect()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func wantDecision(t *testing.T, st nodeinfo.Status, dev string, use bool, reason string) {
	t.Helper()
	d, ok := st.Decision(dev)
	if !ok {
		t.Fatalf("no decision for %s; status:\n%s", dev, st.Text())
	}
	if d.Use != use || d.Reason != reason {
		t.Errorf("decision for %s:\n got use=%v %q\nwant use=%v %q", dev, d.Use, d.Reason, use, reason)
	}
}

func TestPrivilegedDiscoveryAndNativeAttachOnVeth(t *testing.T) {
	skipShort(t)
	lab := netlab.NewT(t)
	ns, err := lab.AddNS("node")
	if err != nil {
		t.Fatal(err)
	}
	if err := lab.AddVeth(
		netlab.VethEnd{NS: ns, Name: "up0", Addr: netip.MustParsePrefix("198.51.100.2/24")},
		netlab.VethEnd{NS: ns, Name: "peer0"},
	); err != nil {
		t.Fatal(err)
	}
	if err := ns.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), netip.MustParseAddr("198.51.100.1"), "up0"); err != nil {
		t.Fatal(err)
	}
	in := nsInspector(t, ns, nodeinfo.Config{NodeAddresses: []netip.Addr{netip.MustParseAddr("198.51.100.2")}})
	st := mustInspect(t, in)
	t.Logf("status:\n%s", st.Text())

	var names []string
	for _, d := range st.Devices {
		names = append(names, d.Name)
	}
	if !slices.Equal(names, []string{"lo", "peer0", "up0"}) {
		t.Fatalf("sysfs of the namespace shows %v, want [lo peer0 up0] (is it the host's sysfs?)", names)
	}
	up := st.Devices[2]
	if up.Kind != "veth" || up.Driver != "veth" || !up.Virtual || up.Peer != "peer0" || up.PeerMTU != 1500 || up.RXQueues != 1 {
		t.Errorf("up0 discovered as %+v", up)
	}
	if _, known := up.Feature(netdev.FeatureLRO); !known {
		t.Errorf("up0 features not read through the ethtool ioctl: %q", up.FeaturesError)
	}
	wantDecision(t, st, "up0", true, "carries node address 198.51.100.2 and the IPv4 default route via 198.51.100.1")
	wantDecision(t, st, "peer0", false, "carries no node address or default route")
	wantDecision(t, st, "lo", false, "loopback device")
	if !slices.Equal(st.Chosen, []string{"up0"}) {
		t.Fatalf("chosen %v", st.Chosen)
	}
	p, _ := st.Plan("up0")
	if p.Mode != xdpplan.ModeNative || !p.OK() || len(p.Warnings) != 0 {
		t.Fatalf("plan for up0: %s", p)
	}

	prog := passProgram(t)

	t.Run("peer MTU above the veth limit", func(t *testing.T) {
		// veth checks its peer's MTU: above 3506 it refuses single-buffer
		// native XDP with ERANGE. The plan predicts it, and the attach
		// error is explained in the same terms.
		peer, _ := ns.Link("peer0")
		if err := ns.Netlink().LinkSetMTU(peer, 4000); err != nil {
			t.Fatal(err)
		}
		defer ns.Netlink().LinkSetMTU(peer, 1500)
		st := mustInspect(t, in)
		p, _ := st.Plan("up0")
		want := "MTU 4000 on peer peer0 is above 3506, the largest MTU veth accepts for single-buffer native XDP; lower it (ip link set dev peer0 mtu 3506) for native XDP: using generic XDP (slower)"
		if p.Mode != xdpplan.ModeGeneric || !slices.Contains(p.Warnings, want) {
			t.Errorf("plan: %s\nwant generic with %q", p, want)
		}
		_, err := attach(ns, prog, "up0", xdpplan.ModeNative)
		if !errors.Is(err, unix.ERANGE) {
			t.Fatalf("native attach with peer MTU 4000: %v, want ERANGE", err)
		}
		d := netdev.ByName(st.Devices)["up0"]
		msg := xdpplan.ExplainAttachError(*d, xdpplan.ModeNative, st.CPUs, err)
		t.Logf("explained: %s", msg)
		if !strings.HasPrefix(msg, "native XDP on up0 (driver veth) was refused: MTU 4000 on peer peer0 is above 3506") {
			t.Errorf("explanation %q", msg)
		}
	})

	l, err := attach(ns, prog, "up0", xdpplan.ModeNative)
	if err != nil {
		t.Fatalf("native XDP on a veth, as planned: %v", err)
	}
	defer l.Close()
	if m := xdpAttachMode(t, ns, "up0"); m != 1 { // XDP_ATTACHED_DRV
		t.Fatalf("attach mode %d, want 1 (native)", m)
	}
	st = mustInspect(t, in)
	up = *netdev.ByName(st.Devices)["up0"]
	if up.XDP == nil || up.XDP.Mode != "native" {
		t.Errorf("discovery does not see the native program: %+v", up.XDP)
	}
	p, _ = st.Plan("up0")
	if p.Mode != xdpplan.ModeNative || !p.OK() {
		t.Errorf("plan after attach: %s", p)
	}
}

func TestPrivilegedGenericFallbackOnBridge(t *testing.T) {
	skipShort(t)
	// Bridges, macvlans, VXLAN and ifb devices refuse native XDP with
	// EOPNOTSUPP on this kernel (checked by this test); generic XDP works.
	lab := netlab.NewT(t)
	ns, err := lab.AddNS("node")
	if err != nil {
		t.Fatal(err)
	}
	if err := lab.AddVeth(netlab.VethEnd{NS: ns, Name: "port0"}, netlab.VethEnd{NS: ns, Name: "port0p"}); err != nil {
		t.Fatal(err)
	}
	if err := ns.AddBridge("br0"); err != nil {
		t.Fatal(err)
	}
	if err := ns.SetMaster("port0", "br0"); err != nil {
		t.Fatal(err)
	}
	if err := ns.AddAddr("br0", netip.MustParsePrefix("198.51.100.2/24")); err != nil {
		t.Fatal(err)
	}
	h := ns.Netlink()
	up, _ := h.LinkByName("port0p")
	if err := h.LinkAdd(&netlink.Macvlan{LinkAttrs: netlink.LinkAttrs{Name: "mv0", ParentIndex: up.Attrs().Index}, Mode: netlink.MACVLAN_MODE_BRIDGE}); err != nil {
		t.Fatal(err)
	}
	if err := ns.SetUp("mv0"); err != nil {
		t.Fatal(err)
	}

	cfg := nodeinfo.Config{NodeAddresses: []netip.Addr{netip.MustParseAddr("198.51.100.2")}}
	in := nsInspector(t, ns, cfg)
	st := mustInspect(t, in)
	t.Logf("status:\n%s", st.Text())
	wantDecision(t, st, "br0", true, "carries node address 198.51.100.2; the bridge has no physical port, so XDP attaches to the bridge itself")
	wantDecision(t, st, "port0", false, "carries no node address or default route")
	p, _ := st.Plan("br0")
	wantWarn := "bridge devices have no native XDP: using generic XDP (slower)"
	if p.Mode != xdpplan.ModeGeneric || !p.OK() || !slices.Contains(p.Warnings, wantWarn) {
		t.Fatalf("plan for br0: %s\nwant generic with %q", p, wantWarn)
	}

	// What the loader does: native first, then the fallback the plan
	// predicted, with the kernel's refusal explained.
	prog := passProgram(t)
	_, err = attach(ns, prog, "br0", xdpplan.ModeNative)
	if !errors.Is(err, unix.EOPNOTSUPP) {
		t.Fatalf("native XDP on a bridge: %v, want EOPNOTSUPP", err)
	}
	br := *netdev.ByName(st.Devices)["br0"]
	msg := xdpplan.ExplainAttachError(br, xdpplan.ModeNative, st.CPUs, err)
	t.Logf("explained: %s", msg)
	if !strings.HasPrefix(msg, "native XDP on br0 (driver bridge) was refused: the driver does not implement native XDP; generic XDP works on any device (slower) (kernel: ") {
		t.Errorf("explanation %q", msg)
	}
	l, err := attach(ns, prog, "br0", xdpplan.ModeGeneric)
	if err != nil {
		t.Fatalf("generic fallback: %v", err)
	}
	defer l.Close()
	if m := xdpAttachMode(t, ns, "br0"); m != 2 { // XDP_ATTACHED_SKB
		t.Fatalf("attach mode %d, want 2 (generic)", m)
	}

	// Native-only mode fails loudly instead.
	in.Config.NativeOnly = true
	st = mustInspect(t, in)
	p, _ = st.Plan("br0")
	if p.OK() || p.Errors[0] != "native-only mode: bridge devices have no native XDP" {
		t.Errorf("native-only plan for br0: %s", p)
	}

	// A configured macvlan: generic, pointing at its lower device.
	in.Config = nodeinfo.Config{Devices: []string{"mv0"}}
	st = mustInspect(t, in)
	wantDecision(t, st, "mv0", true, "named in the configured device list")
	p, _ = st.Plan("mv0")
	want := "macvlan devices have no native XDP (attach to the lower device port0p for native XDP): using generic XDP (slower)"
	if p.Mode != xdpplan.ModeGeneric || !slices.Contains(p.Warnings, want) {
		t.Errorf("plan for mv0: %s\nwant %q", p, want)
	}
	if _, err := attach(ns, prog, "mv0", xdpplan.ModeNative); !errors.Is(err, unix.EOPNOTSUPP) {
		t.Errorf("native XDP on a macvlan: %v, want EOPNOTSUPP", err)
	}
}

func TestPrivilegedWatcherFollowsDevices(t *testing.T) {
	skipShort(t)
	lab := netlab.NewT(t)
	ns, err := lab.AddNS("node")
	if err != nil {
		t.Fatal(err)
	}
	in := nsInspector(t, ns, nodeinfo.Config{NodeAddresses: []netip.Addr{netip.MustParseAddr("203.0.113.7")}})
	h, err := netns.GetFromPath(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	statuses := make(chan nodeinfo.Status, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- nodeinfo.Watch(ctx, nodeinfo.WatchConfig{
			Inspector: in,
			Namespace: &h,
			Debounce:  50 * time.Millisecond,
			OnStatus:  func(s nodeinfo.Status) { statuses <- s },
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watch: %v", err)
		}
	}()

	next := func(what string, ok func(nodeinfo.Status) bool) nodeinfo.Status {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case s := <-statuses:
				if ok(s) {
					return s
				}
			case <-timeout:
				t.Fatalf("no status with %s within 10s", what)
			}
		}
	}
	next("nothing chosen", func(s nodeinfo.Status) bool { return len(s.Chosen) == 0 })

	if err := lab.AddVeth(
		netlab.VethEnd{NS: ns, Name: "w0", Addr: netip.MustParsePrefix("203.0.113.7/24")},
		netlab.VethEnd{NS: ns, Name: "w1"},
	); err != nil {
		t.Fatal(err)
	}
	s := next("w0 chosen", func(s nodeinfo.Status) bool { return slices.Equal(s.Chosen, []string{"w0"}) })
	if p, _ := s.Plan("w0"); p.Mode != xdpplan.ModeNative || !p.OK() {
		t.Errorf("plan for the added device: %s", p)
	}
	wantDecision(t, s, "w0", true, "carries node address 203.0.113.7")

	// An address change alone is noticed too.
	w0, _ := ns.Link("w0")
	if err := ns.Netlink().AddrDel(w0, &netlink.Addr{IPNet: netlinkPrefix("203.0.113.7/24")}); err != nil {
		t.Fatal(err)
	}
	next("w0 dropped after its address went", func(s nodeinfo.Status) bool { return len(s.Chosen) == 0 && len(s.Devices) == 3 })
	if err := ns.AddAddr("w0", netip.MustParsePrefix("203.0.113.7/24")); err != nil {
		t.Fatal(err)
	}
	next("w0 chosen again", func(s nodeinfo.Status) bool { return slices.Equal(s.Chosen, []string{"w0"}) })

	if err := ns.Netlink().LinkDel(w0); err != nil {
		t.Fatal(err)
	}
	s = next("w0 removed", func(s nodeinfo.Status) bool {
		return len(s.Chosen) == 0 && len(s.Devices) == 1
	})
	if s.Devices[0].Name != "lo" {
		t.Errorf("devices after removal: %v", s.Devices)
	}
}

func netlinkPrefix(s string) *net.IPNet {
	p := netip.MustParsePrefix(s)
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// skipShort skips privileged tests under -short (make test-unit); CI runs
// without -short, where netlab.NewT fails them unless running as root.
func skipShort(t *testing.T) {
	if testing.Short() {
		t.Skip("privileged test: skipped with -short")
	}
}
