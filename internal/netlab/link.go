package netlab

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// VethEnd describes one end of a veth pair.
type VethEnd struct {
	NS   *NS
	Name string       // interface name inside NS (at most 15 bytes)
	Addr netip.Prefix // optional address, e.g. 192.0.2.11/24
	MAC  net.HardwareAddr
}

// AddVeth creates a veth pair with end a in a.NS and end b in b.NS (created
// directly there), brings both ends up and assigns the optional addresses.
func (l *Lab) AddVeth(a, b VethEnd) error {
	if a.NS == nil || b.NS == nil {
		return fmt.Errorf("create veth %s: both ends need a namespace", a.Name)
	}
	for _, name := range []string{a.Name, b.Name} {
		if err := validIfName(name); err != nil {
			return fmt.Errorf("create veth %s: %w", a.Name, err)
		}
	}
	// Hold b alive while its namespace fd is passed to the kernel.
	b.NS.mu.RLock()
	defer b.NS.mu.RUnlock()
	if b.NS.dead {
		return fmt.Errorf("create veth %s: %s: %w", a.Name, b.NS.full, ErrClosed)
	}
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: a.Name, HardwareAddr: a.MAC},
		PeerName:         b.Name,
		PeerHardwareAddr: b.MAC,
		PeerNamespace:    netlink.NsFd(b.NS.handle),
	}
	err := a.NS.withNL(func(h *netlink.Handle) error { return h.LinkAdd(veth) })
	if err != nil {
		return fmt.Errorf("create veth %s (%s) <-> %s (%s): %w", a.Name, a.NS.full, b.Name, b.NS.full, err)
	}
	for _, end := range []VethEnd{a, b} {
		if err := end.NS.SetUp(end.Name); err != nil {
			return err
		}
		if end.Addr.IsValid() {
			if err := end.NS.AddAddr(end.Name, end.Addr); err != nil {
				return err
			}
		}
	}
	return nil
}

// Link returns the link named name inside the namespace.
func (n *NS) Link(name string) (netlink.Link, error) {
	var lk netlink.Link
	err := n.withNL(func(h *netlink.Handle) (err error) { lk, err = h.LinkByName(name); return err })
	if err != nil {
		return nil, fmt.Errorf("get link %s in %s: %w", name, n.full, err)
	}
	return lk, nil
}

// LinkIndex returns the ifindex of a link inside the namespace.
func (n *NS) LinkIndex(name string) (int, error) {
	lk, err := n.Link(name)
	if err != nil {
		return 0, err
	}
	return lk.Attrs().Index, nil
}

// HardwareAddr returns the MAC address of a link inside the namespace.
func (n *NS) HardwareAddr(name string) (net.HardwareAddr, error) {
	lk, err := n.Link(name)
	if err != nil {
		return nil, err
	}
	return lk.Attrs().HardwareAddr, nil
}

// SetUp brings a link up.
func (n *NS) SetUp(name string) error {
	err := n.withNL(func(h *netlink.Handle) error {
		lk, err := h.LinkByName(name)
		if err != nil {
			return err
		}
		return h.LinkSetUp(lk)
	})
	if err != nil {
		return fmt.Errorf("set link %s up in %s: %w", name, n.full, err)
	}
	return nil
}

// AddBridge creates a bridge (STP off) with a fixed random locally
// administered MAC, so its address does not change as ports come and go, and
// brings it up.
func (n *NS) AddBridge(name string) error {
	if err := validIfName(name); err != nil {
		return fmt.Errorf("create bridge %s: %w", name, err)
	}
	mac, err := randomMAC()
	if err != nil {
		return fmt.Errorf("create bridge %s: %w", name, err)
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, HardwareAddr: mac}}
	if err := n.withNL(func(h *netlink.Handle) error { return h.LinkAdd(br) }); err != nil {
		return fmt.Errorf("create bridge %s in %s: %w", name, n.full, err)
	}
	return n.SetUp(name)
}

// SetMaster enslaves link dev to bridge master.
func (n *NS) SetMaster(dev, master string) error {
	err := n.withNL(func(h *netlink.Handle) error {
		lk, err := h.LinkByName(dev)
		if err != nil {
			return err
		}
		m, err := h.LinkByName(master)
		if err != nil {
			return err
		}
		return h.LinkSetMasterByIndex(lk, m.Attrs().Index)
	})
	if err != nil {
		return fmt.Errorf("set master of %s to %s in %s: %w", dev, master, n.full, err)
	}
	return nil
}

// AddAddr assigns p (host address and prefix length, e.g. 192.0.2.1/24) to
// a link.
func (n *NS) AddAddr(dev string, p netip.Prefix) error {
	return n.addAddr(dev, p, netip.Prefix{})
}

// AddPeerAddr assigns a point-to-point address: local with peer as the
// other end (`ip addr add local peer peer dev dev`), which also installs a
// route to peer through dev.
func (n *NS) AddPeerAddr(dev string, local, peer netip.Prefix) error {
	return n.addAddr(dev, local, peer)
}

func (n *NS) addAddr(dev string, local, peer netip.Prefix) error {
	a := &netlink.Addr{IPNet: hostNet(local)}
	if peer.IsValid() {
		a.Peer = hostNet(peer)
	}
	err := n.withNL(func(h *netlink.Handle) error {
		lk, err := h.LinkByName(dev)
		if err != nil {
			return err
		}
		return h.AddrAdd(lk, a)
	})
	if err != nil {
		return fmt.Errorf("add address %s to %s in %s: %w", local, dev, n.full, err)
	}
	return nil
}

// AddRoute adds a route to dst (DefaultRoute() for the default route) via
// gw and/or out of dev; either may be zero/empty but not both. Without a
// gateway the route is scope link.
func (n *NS) AddRoute(dst netip.Prefix, gw netip.Addr, dev string) error {
	if !dst.IsValid() || (!gw.IsValid() && dev == "") {
		return fmt.Errorf("add route %s: need a valid destination and a gateway or a device", dst)
	}
	r := &netlink.Route{Dst: routeDst(dst)}
	if gw.IsValid() {
		r.Gw = gw.AsSlice()
	} else {
		r.Scope = netlink.SCOPE_LINK
	}
	err := n.withNL(func(h *netlink.Handle) error {
		if dev != "" {
			lk, err := h.LinkByName(dev)
			if err != nil {
				return err
			}
			r.LinkIndex = lk.Attrs().Index
		}
		return h.RouteAdd(r)
	})
	if err != nil {
		return fmt.Errorf("add route %s via %s dev %q in %s: %w", dst, gw, dev, n.full, err)
	}
	return nil
}

// AddMultipathRoute adds an ECMP route to dst over the gateways
// (`ip route add dst nexthop via gw1 nexthop via gw2 ...`).
func (n *NS) AddMultipathRoute(dst netip.Prefix, gws ...netip.Addr) error {
	if !dst.IsValid() || len(gws) == 0 {
		return fmt.Errorf("add multipath route %s: need a destination and gateways", dst)
	}
	r := &netlink.Route{Dst: routeDst(dst)}
	for _, gw := range gws {
		r.MultiPath = append(r.MultiPath, &netlink.NexthopInfo{Gw: gw.AsSlice()})
	}
	if err := n.withNL(func(h *netlink.Handle) error { return h.RouteAdd(r) }); err != nil {
		return fmt.Errorf("add multipath route %s via %v in %s: %w", dst, gws, n.full, err)
	}
	return nil
}

// Ethtool legacy commands (include/uapi/linux/ethtool.h).
const (
	ethtoolGTXCSUM = 0x16
	ethtoolSTXCSUM = 0x17
)

// DisableTxChecksum turns tx checksum offload off on a link, like
// `ethtool -K dev tx off`: the kernel then computes checksums in software
// before the veth hands packets over, and the receiver verifies them.
func (n *NS) DisableTxChecksum(dev string) error {
	err := n.Do(func() error {
		_, err := ethtoolValue(dev, ethtoolSTXCSUM, 0)
		return err
	})
	if err != nil {
		return fmt.Errorf("disable tx checksum offload on %s in %s: %w", dev, n.full, err)
	}
	return nil
}

// TxChecksum reports whether tx checksum offload is on for a link.
func (n *NS) TxChecksum(dev string) (bool, error) {
	var v uint32
	err := n.Do(func() (err error) {
		v, err = ethtoolValue(dev, ethtoolGTXCSUM, 0)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("get tx checksum offload of %s in %s: %w", dev, n.full, err)
	}
	return v != 0, nil
}

// randomMAC returns a random unicast, locally administered MAC.
func randomMAC() (net.HardwareAddr, error) {
	mac := make(net.HardwareAddr, 6)
	if _, err := rand.Read(mac); err != nil {
		return nil, err
	}
	mac[0] = mac[0]&^0x01 | 0x02
	return mac, nil
}

// hostNet converts a prefix keeping the host bits (192.0.2.1/24 stays so).
func hostNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// routeDst converts a route destination (0.0.0.0/0 is the default route).
func routeDst(p netip.Prefix) *net.IPNet {
	p = p.Masked()
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// isNotFound reports whether err means the link is gone.
func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.Is(err, unix.ENODEV) || errors.As(err, &nf)
}
