package xdpplan_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/straitlb/strait/nodeinfo/netdev"
	"github.com/straitlb/strait/nodeinfo/xdpplan"
)

func bond(mode, hash string, slaveDrivers ...string) []netdev.Device {
	b := netdev.Device{Name: "bond0", Kind: "bond", Driver: "bonding", Virtual: true, MTU: 1500, Bond: &netdev.Bond{Mode: mode, XmitHashPolicy: hash}}
	devs := []netdev.Device{b}
	for i, drv := range slaveDrivers {
		name := fmt.Sprintf("eno%d", i+1)
		devs[0].Bond.Slaves = append(devs[0].Bond.Slaves, name)
		devs = append(devs, netdev.Device{Name: name, Kind: netdev.KindPhysical, Driver: drv, Master: "bond0", MTU: 1500, RXQueues: 8,
			Features: map[string]bool{netdev.FeatureLRO: false}})
	}
	return devs
}

func plan(devs []netdev.Device, dev string, opts xdpplan.Options) xdpplan.Plan {
	byName := netdev.ByName(devs)
	return xdpplan.PlanDevice(*byName[dev], byName, opts)
}

func check(t *testing.T, p xdpplan.Plan, mode xdpplan.Mode, errs, warns []string) {
	t.Helper()
	if p.Mode != mode || !reflect.DeepEqual(p.Errors, errs) || !reflect.DeepEqual(p.Warnings, warns) {
		t.Errorf("plan %s:\n got mode %s errors %q warnings %q\nwant mode %s errors %q warnings %q", p.Device, p.Mode, p.Errors, p.Warnings, mode, errs, warns)
	}
}

func TestBondPlans(t *testing.T) {
	opts := xdpplan.Options{Kernel: "6.8.0", CPUs: 16}
	check(t, plan(bond("802.3ad", "layer3+4", "ixgbe", "ixgbe"), "bond0", opts), xdpplan.ModeNative, nil, nil)
	check(t, plan(bond("active-backup", "", "mlx5_core", "ice"), "bond0", opts), xdpplan.ModeNative, nil, nil)

	check(t, plan(bond("802.3ad", "layer3+4", "ixgbe", "e1000e"), "bond0", opts), xdpplan.ModeNative, nil, []string{
		"slave eno2 has driver e1000e, which is not in Strait's list of drivers with native XDP: the bond's native XDP fails if it refuses",
	})
	devs := bond("802.3ad", "layer3+4", "ixgbe", "ixgbe")
	devs = append(devs, netdev.Device{Name: "eno3", Kind: "veth", Driver: "veth"}, netdev.Device{Name: "vlan9", Kind: "vlan", Driver: "802.1Q VLAN Driver"})
	devs[0].Bond.Slaves = append(devs[0].Bond.Slaves, "vlan9")
	check(t, plan(devs, "bond0", opts), xdpplan.ModeGeneric, nil, []string{
		"bond bond0 has slaves without native XDP: vlan9 (802.1Q VLAN Driver): using generic XDP (slower)",
	})

	check(t, plan(bond("balance-alb", "layer2", "ixgbe"), "bond0", opts), xdpplan.ModeGeneric, nil, []string{
		"bond mode balance-alb has no native XDP (native needs balance-rr, active-backup, balance-xor or 802.3ad): using generic XDP (slower)",
	})
	check(t, plan(bond("balance-xor", "vlan+srcmac", "ixgbe"), "bond0", opts), xdpplan.ModeGeneric, nil, []string{
		"bond mode balance-xor with xmit_hash_policy vlan+srcmac has no native XDP: using generic XDP (slower)",
	})
	check(t, plan(bond("802.3ad", "layer3+4", "ixgbe"), "bond0", xdpplan.Options{Kernel: "5.10.0-28-amd64"}), xdpplan.ModeGeneric, nil, []string{
		"bonds have native XDP only since Linux 5.15 and this kernel is 5.10.0-28-amd64: using generic XDP (slower)",
	})
	check(t, plan(bond("802.3ad", "layer3+4", "ixgbe"), "bond0", xdpplan.Options{Kernel: "5.10.0-28-amd64", NativeOnly: true}), xdpplan.ModeNative, []string{
		"native-only mode: bonds have native XDP only since Linux 5.15 and this kernel is 5.10.0-28-amd64",
	}, nil)
	check(t, plan(bond("802.3ad", "layer3+4"), "bond0", opts), xdpplan.ModeNative, nil, []string{
		"bond bond0 has no slaves yet: each slave added later must support native XDP",
	})

	// Slave MTU: the bond's MTU propagates to its slaves.
	devs = bond("802.3ad", "layer3+4", "ixgbe", "ixgbe")
	for i := range devs {
		devs[i].MTU = 9000
	}
	check(t, plan(devs, "bond0", opts), xdpplan.ModeGeneric, nil, []string{
		"MTU 9000 on slave eno1 of bond0 is above 3050, the largest MTU ixgbe accepts for single-buffer native XDP; lower the bond's MTU (ip link set dev bond0 mtu 3050) for native XDP: using generic XDP (slower)",
		"MTU 9000 on slave eno2 of bond0 is above 3050, the largest MTU ixgbe accepts for single-buffer native XDP; lower the bond's MTU (ip link set dev bond0 mtu 3050) for native XDP: using generic XDP (slower)",
	})

	// A slave with its own program blocks the bond's.
	devs = bond("active-backup", "", "ice")
	devs[1].XDP = &netdev.XDPState{ProgID: 42, Mode: "native"}
	check(t, plan(devs, "bond0", opts), xdpplan.ModeNative, []string{
		"slave eno1 runs its own XDP program (id 42): the bond cannot install its program there; detach it (ip link set dev eno1 xdp off)",
	}, nil)

	// Planning a slave directly is an error.
	check(t, plan(bond("802.3ad", "layer3+4", "ixgbe"), "eno1", opts), xdpplan.ModeNative, []string{
		"eno1 is a slave of bond0: XDP must attach to the bond bond0 itself (the bond installs the program on its slaves)",
	}, nil)
}

func TestDriverPlans(t *testing.T) {
	opts := xdpplan.Options{Kernel: "6.8.0", CPUs: 4}
	nic := func(drv string, mtu int, feats map[string]bool) []netdev.Device {
		return []netdev.Device{{Name: "eth0", Kind: netdev.KindPhysical, Driver: drv, MTU: mtu, RXQueues: 4, OperState: "up", Features: feats}}
	}
	check(t, plan(nic("ice", 1500, nil), "eth0", opts), xdpplan.ModeNative, nil, nil)
	check(t, plan(nic("ice", 9000, nil), "eth0", xdpplan.Options{Frags: true}), xdpplan.ModeNative, nil, nil)
	check(t, plan(nic("igc", 1600, nil), "eth0", opts), xdpplan.ModeGeneric, nil, []string{
		"MTU 1600 on eth0 is above 1500, the largest MTU igc accepts for single-buffer native XDP; lower it (ip link set dev eth0 mtu 1500) for native XDP: using generic XDP (slower)",
	})
	check(t, plan(nic("r8169", 9000, nil), "eth0", opts), xdpplan.ModeNative, nil, []string{
		"driver r8169 is not in Strait's list of drivers with native XDP: trying native XDP, falling back to generic if the kernel refuses",
		"MTU 9000 on eth0 is above 3498, the single-buffer native XDP limit of most drivers: driver r8169 may refuse native XDP; lower it (ip link set dev eth0 mtu 3498)",
	})
	check(t, plan(nic("r8169", 1500, nil), "eth0", xdpplan.Options{NativeOnly: true}), xdpplan.ModeNative, nil, []string{
		"driver r8169 is not in Strait's list of drivers with native XDP: native-only mode fails if the kernel refuses native XDP",
	})
	check(t, plan(nic("ixgbe", 1500, map[string]bool{netdev.FeatureLRO: true}), "eth0", opts), xdpplan.ModeNative, []string{
		"LRO is on on eth0 and native XDP needs it off: disable LRO: ethtool -K eth0 lro off",
	}, nil)
	check(t, plan(nic("igc", 1600, map[string]bool{netdev.FeatureLRO: true}), "eth0", opts), xdpplan.ModeGeneric, nil, []string{
		"MTU 1600 on eth0 is above 1500, the largest MTU igc accepts for single-buffer native XDP; lower it (ip link set dev eth0 mtu 1500) for native XDP: using generic XDP (slower)",
		"LRO is on on eth0: the kernel turns it off when generic XDP attaches; to keep it off across driver resets: ethtool -K eth0 lro off",
	})
	check(t, plan(nic("mlx5_core", 1500, map[string]bool{netdev.FeatureGROHW: true}), "eth0", opts), xdpplan.ModeNative, []string{
		"hardware GRO is on on eth0 and mlx5_core refuses native XDP with it: ethtool -K eth0 rx-gro-hw off",
	}, nil)
	devs := nic("ice", 1500, nil)
	devs[0].FeaturesError = "ETHTOOL_GFEATURES on eth0: operation not permitted"
	devs[0].OperState = "down"
	devs[0].XDP = &netdev.XDPState{ProgID: 7, Mode: "native"}
	check(t, plan(devs, "eth0", opts), xdpplan.ModeNative, nil, []string{
		"could not read offload features of eth0 (ETHTOOL_GFEATURES on eth0: operation not permitted): make sure LRO is off (ethtool -k eth0)",
		"an XDP program (id 7, native) is already attached: Strait replaces only its own program",
		"operstate is down",
	})
	check(t, plan([]netdev.Device{{Name: "lo", Kind: netdev.KindLoopback}}, "lo", opts), xdpplan.ModeNative, []string{
		"lo is the loopback device: XDP there sees no node traffic",
	}, nil)
	check(t, plan([]netdev.Device{{Name: "vx0", Kind: "vxlan", Virtual: true}}, "vx0", xdpplan.Options{NativeOnly: true}), xdpplan.ModeNative, []string{
		"native-only mode: VXLAN devices have no native XDP",
	}, nil)
}

func TestPlanAllMissing(t *testing.T) {
	ps := xdpplan.PlanAll(nil, []string{"eth7"}, xdpplan.Options{})
	if len(ps) != 1 || ps[0].OK() || ps[0].Errors[0] != "device not found" {
		t.Errorf("%+v", ps)
	}
	if s := ps[0].String(); s != "eth7: native XDP; ERROR: device not found" {
		t.Errorf("%s", s)
	}
}

func TestExplainAttachError(t *testing.T) {
	mlx := netdev.Device{Name: "ens2f0np0", Driver: "mlx5_core", MTU: 9000, Features: map[string]bool{netdev.FeatureLRO: true}}
	wrap := func(e error) error { return fmt.Errorf("failed to attach link: create link: %w", e) }
	cases := []struct {
		d    netdev.Device
		mode xdpplan.Mode
		err  error
		want string
	}{
		{mlx, xdpplan.ModeNative, wrap(unix.EINVAL),
			"native XDP on ens2f0np0 (driver mlx5_core) was refused: MTU 9000 on ens2f0np0 is above 3498, the largest MTU mlx5_core accepts for single-buffer XDP (ip link set dev ens2f0np0 mtu 3498); LRO is on (ethtool -K ens2f0np0 lro off); the driver's own message, if it logs one, is in the kernel log (dmesg) (kernel: failed to attach link: create link: invalid argument)"},
		{netdev.Device{Name: "br0", Kind: "bridge"}, xdpplan.ModeNative, wrap(unix.EOPNOTSUPP),
			"native XDP on br0 (driver bridge) was refused: the driver does not implement native XDP; generic XDP works on any device (slower) (kernel: failed to attach link: create link: operation not supported)"},
		{netdev.Device{Name: "eth0", Driver: "ixgbe"}, xdpplan.ModeNative, wrap(unix.EINVAL),
			"native XDP on eth0 (driver ixgbe) was refused: the driver rejected the configuration; its reason is in the kernel log (dmesg) (kernel: failed to attach link: create link: invalid argument)"},
		{netdev.Device{Name: "eth0", Driver: "ixgbe"}, xdpplan.ModeNative, wrap(unix.ENOMEM),
			"native XDP on eth0 (driver ixgbe) was refused: the driver could not set up its XDP transmit queues (one per CPU, 96 here); reduce the channel count (ethtool -L eth0 combined N) or free memory (kernel: failed to attach link: create link: cannot allocate memory)"},
		{netdev.Device{Name: "eth0", Driver: "ice"}, xdpplan.ModeGeneric, wrap(unix.EEXIST),
			"generic XDP on eth0 (driver ice) was refused: another XDP program is already attached, in another mode or by another tool, or an upper device (a bond) runs one; see `ip -d link show dev eth0` and detach it (ip link set dev eth0 xdp off) (kernel: failed to attach link: create link: file exists)"},
		{netdev.Device{Name: "eth0"}, xdpplan.ModeNative, wrap(unix.EPERM),
			"native XDP on eth0 (driver unknown) was refused: missing privileges: attaching XDP needs CAP_NET_ADMIN and CAP_BPF (or CAP_SYS_ADMIN) (kernel: failed to attach link: create link: operation not permitted)"},
	}
	for _, c := range cases {
		if got := xdpplan.ExplainAttachError(c.d, c.mode, 96, c.err); got != c.want {
			t.Errorf("%v:\n got %s\nwant %s", c.err, got, c.want)
		}
	}
	if xdpplan.ExplainAttachError(mlx, xdpplan.ModeNative, 0, nil) != "" {
		t.Error("nil error should explain to nothing")
	}
	if !errors.Is(wrap(unix.EINVAL), unix.EINVAL) {
		t.Fatal("cilium/ebpf-style wrapping must keep the errno")
	}
}

func TestKernelVersion(t *testing.T) {
	for s, want := range map[string][2]int{"6.8.0-45-generic": {6, 8}, "5.15.0": {5, 15}, "5.14.0-427.el9.x86_64": {5, 14}} {
		maj, min, ok := xdpplan.KernelVersion(s)
		if !ok || maj != want[0] || min != want[1] {
			t.Errorf("%s: %d.%d %v", s, maj, min, ok)
		}
	}
	if _, _, ok := xdpplan.KernelVersion("weird"); ok {
		t.Error("weird release parsed")
	}
}
