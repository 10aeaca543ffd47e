package golden

import (
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"

	"github.com/straitlb/strait/dataplane/testrun"
)

// Address plan of the fixture namespace (RFC 5737 / RFC 2544 ranges):
//
//	up0  192.0.2.11/24  MAC NodeMAC   the uplink the XDP program "receives" on
//	     192.0.2.1      MAC RouterMAC default gateway (clients 198.51.100.0/24 behind it)
//	     192.0.2.12     MAC Node2MAC  next hop for remote pods 198.18.2.0/24
//	pod0 198.18.1.1/24                local pods 198.18.1.0/24
var (
	NodeIP    = netip.MustParseAddr("192.0.2.11")
	RouterIP  = netip.MustParseAddr("192.0.2.1")
	Node2IP   = netip.MustParseAddr("192.0.2.12")
	NodeMAC   = mustMAC("02:00:00:00:00:11")
	RouterMAC = mustMAC("02:00:00:00:00:01")
	Node2MAC  = mustMAC("02:00:00:00:00:12")
)

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// Fixture is the namespace the programs run in.
type Fixture struct {
	NS      *testrun.NS
	Ifindex int // of up0
}

// NewFixture builds the namespace: devices, addresses, routes, static
// neighbours, forwarding on (bpf_fib_lookup requires it).
func NewFixture() (*Fixture, error) {
	ns, err := testrun.NewNS()
	if err != nil {
		return nil, err
	}
	f := &Fixture{NS: ns}
	err = ns.Do(func() error {
		if err := os.WriteFile("/proc/sys/net/ipv4/conf/all/forwarding", []byte("1"), 0o644); err != nil {
			return fmt.Errorf("enable forwarding: %w", err)
		}
		up := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "up0", HardwareAddr: NodeMAC}, PeerName: "up1"}
		pod := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "pod0"}, PeerName: "pod1"}
		for _, l := range []netlink.Link{up, pod} {
			if err := netlink.LinkAdd(l); err != nil {
				return fmt.Errorf("add %s: %w", l.Attrs().Name, err)
			}
		}
		for _, name := range []string{"up0", "up1", "pod0", "pod1", "lo"} {
			l, err := netlink.LinkByName(name)
			if err != nil {
				return err
			}
			if err := netlink.LinkSetUp(l); err != nil {
				return fmt.Errorf("set %s up: %w", name, err)
			}
		}
		upl, _ := netlink.LinkByName("up0")
		podl, _ := netlink.LinkByName("pod0")
		f.Ifindex = upl.Attrs().Index
		if err := addAddr(upl, "192.0.2.11/24"); err != nil {
			return err
		}
		if err := addAddr(podl, "198.18.1.1/24"); err != nil {
			return err
		}
		for ip, mac := range map[netip.Addr]net.HardwareAddr{RouterIP: RouterMAC, Node2IP: Node2MAC} {
			n := &netlink.Neigh{LinkIndex: f.Ifindex, IP: ip.AsSlice(), HardwareAddr: mac,
				State: netlink.NUD_PERMANENT, Family: netlink.FAMILY_V4}
			if err := netlink.NeighAdd(n); err != nil {
				return fmt.Errorf("add neighbour %s: %w", ip, err)
			}
		}
		_, pods2, _ := net.ParseCIDR("198.18.2.0/24")
		routes := []netlink.Route{
			{LinkIndex: f.Ifindex, Gw: RouterIP.AsSlice()},
			{LinkIndex: f.Ifindex, Dst: pods2, Gw: Node2IP.AsSlice()},
		}
		for _, r := range routes {
			if err := netlink.RouteAdd(&r); err != nil {
				return fmt.Errorf("add route %v: %w", r, err)
			}
		}
		return nil
	})
	if err != nil {
		ns.Close()
		return nil, err
	}
	return f, nil
}

func addAddr(l netlink.Link, cidr string) error {
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(l, a); err != nil {
		return fmt.Errorf("add address %s to %s: %w", cidr, l.Attrs().Name, err)
	}
	return nil
}
