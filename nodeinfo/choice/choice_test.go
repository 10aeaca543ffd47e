package choice_test

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/straitlb/strait/nodeinfo/choice"
	"github.com/straitlb/strait/nodeinfo/netdev"
)

func pfx(s string) []netip.Prefix { return []netip.Prefix{netip.MustParsePrefix(s)} }

func defRoute(dev, gw string) []netdev.Route {
	return []netdev.Route{{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr(gw), Device: dev}}
}

// A bridged uplink: br0 carries the address, eno1 is its physical port,
// tap0 a VM's port; mv0 is a macvlan on eno2 with a second node address.
func bridged() []netdev.Device {
	return []netdev.Device{
		{Name: "br0", Kind: "bridge", Virtual: true, Ports: []string{"eno1", "tap0"}, Addrs: pfx("192.0.2.5/24"), DefaultRoutes: defRoute("br0", "192.0.2.1")},
		{Name: "eno1", Kind: netdev.KindPhysical, Driver: "igb", Master: "br0"},
		{Name: "eno2", Kind: netdev.KindPhysical, Driver: "igb", Uppers: []string{"mv0"}},
		{Name: "lo", Kind: netdev.KindLoopback, Virtual: true},
		{Name: "mv0", Kind: "macvlan", Virtual: true, Lowers: []string{"eno2"}, Addrs: pfx("198.51.100.5/24")},
		{Name: "tap0", Kind: "tuntap", Virtual: true, Master: "br0"},
	}
}

func reasons(r choice.Result) map[string]string {
	m := map[string]string{}
	for _, d := range r.Decisions {
		v := "skip"
		if d.Use {
			v = "use"
		}
		m[d.Device] = v + ": " + d.Reason
	}
	return m
}

func TestBridgeAndMacvlanResolveToLowerDevices(t *testing.T) {
	r := choice.Choose(bridged(), choice.Config{NodeAddresses: []netip.Addr{netip.MustParseAddr("192.0.2.5"), netip.MustParseAddr("198.51.100.5")}})
	want := map[string]string{
		"br0":  "skip: carries node address 192.0.2.5 and the IPv4 default route via 192.0.2.1; XDP attaches to its physical ports eno1 instead: a bridge has no native XDP",
		"eno1": "use: port of bridge br0, which carries node address 192.0.2.5 and the IPv4 default route via 192.0.2.1",
		"eno2": "use: lower device of macvlan mv0, which carries node address 198.51.100.5",
		"mv0":  "skip: carries node address 198.51.100.5; XDP attaches to its lower device eno2 instead: macvlan devices have no native XDP",
		"tap0": "skip: carries no node address or default route",
		"lo":   "skip: loopback device",
	}
	got := reasons(r)
	for dev, w := range want {
		if got[dev] != w {
			t.Errorf("%s:\n got %s\nwant %s", dev, got[dev], w)
		}
	}
	if !slices.Equal(r.Chosen, []string{"eno1", "eno2"}) {
		t.Errorf("chosen %v", r.Chosen)
	}
}

func TestWithoutNodeAddressesDefaultRoutesDecide(t *testing.T) {
	r := choice.Choose(bridged(), choice.Config{})
	got := reasons(r)
	if got["mv0"] != "skip: carries 198.51.100.5/24 but no node address or default route" {
		t.Errorf("mv0: %s", got["mv0"])
	}
	if !slices.Equal(r.Chosen, []string{"eno1"}) {
		t.Errorf("chosen %v", r.Chosen)
	}
}

func TestNoDeviceQualifies(t *testing.T) {
	devs := []netdev.Device{{Name: "lo", Kind: netdev.KindLoopback}, {Name: "eth0", Kind: netdev.KindPhysical}}
	r := choice.Choose(devs, choice.Config{})
	if len(r.Chosen) != 0 || reasons(r)["eth0"] != "skip: carries no node address or default route" {
		t.Errorf("%+v", r)
	}
}

func TestConfiguredLoopbackAndMissing(t *testing.T) {
	r := choice.Choose(bridged(), choice.Config{Devices: []string{"lo", "eno*", "eth[0-9]"}})
	got := reasons(r)
	want := map[string]string{
		"lo":       "skip: named in the configured device list, but it is the loopback device",
		"eno1":     `use: matches configured pattern "eno*"`,
		"eno2":     `use: matches configured pattern "eno*"`,
		"br0":      "skip: not in the configured device list (lo, eno*, eth[0-9])",
		"eth[0-9]": `skip: configured device "eth[0-9]" matches no device on this node`,
	}
	for dev, w := range want {
		if got[dev] != w {
			t.Errorf("%s:\n got %s\nwant %s", dev, got[dev], w)
		}
	}
	if !slices.Equal(r.Missing, []string{"eth[0-9]"}) {
		t.Errorf("missing %v", r.Missing)
	}
}

func TestVFCarryingNodeAddressIsUsed(t *testing.T) {
	// A VM or bare-metal node whose own uplink is a VF.
	devs := []netdev.Device{{
		Name: "ens1f0v0", Kind: netdev.KindPhysical, Driver: "iavf", Role: netdev.RoleVF, PCIAddress: "0000:3b:01.0",
		SRIOV: &netdev.SRIOV{PF: "0000:3b:00.0", VFIndex: 0}, Addrs: pfx("10.0.0.5/24"),
	}}
	r := choice.Choose(devs, choice.Config{NodeAddresses: []netip.Addr{netip.MustParseAddr("10.0.0.5")}})
	if got := reasons(r)["ens1f0v0"]; got != "use: carries node address 10.0.0.5" {
		t.Errorf("VF: %s", got)
	}
}

func TestDecisionString(t *testing.T) {
	d := choice.Decision{Device: "eth0", Use: true, Reason: "carries node address 10.0.0.1", Notes: []string{"n"}}
	if d.String() != "use eth0: carries node address 10.0.0.1 [n]" {
		t.Errorf("%s", d)
	}
}
