package netdev

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NetState is what netlink knows and sysfs does not: link kinds, addresses
// and routes.
type NetState struct {
	Links  []LinkState `json:"links"`
	Routes []Route     `json:"routes"`
}

// LinkState is one link as netlink reports it.
type LinkState struct {
	Name  string         `json:"name"`
	Index int            `json:"ifindex"`
	Kind  string         `json:"kind,omitempty"` // netlink kind; "" for plain hardware
	Addrs []netip.Prefix `json:"addresses,omitempty"`
	XDP   *XDPState      `json:"xdp,omitempty"`
	// PeerIndex is a veth's peer when the peer is in the same namespace.
	PeerIndex int `json:"peerIndex,omitempty"`
}

// Route is a route of the main table; only default routes matter here.
type Route struct {
	Dst     netip.Prefix `json:"dst"` // 0.0.0.0/0 or ::/0 for a default route
	Gateway netip.Addr   `json:"gateway,omitzero"`
	Device  string       `json:"device"`
}

// IsDefault reports whether r is a default route.
func (r Route) IsDefault() bool { return r.Dst.IsValid() && r.Dst.Bits() == 0 }

// String renders a default route the way `ip route` does.
func (r Route) String() string {
	s := "default"
	if r.Dst.Bits() != 0 {
		s = r.Dst.String()
	}
	if r.Gateway.IsValid() {
		s += " via " + r.Gateway.String()
	}
	return s + " dev " + r.Device
}

// NetSource supplies NetState.
type NetSource interface {
	NetState() (NetState, error)
}

// StaticNet is a fixed NetState (tests, or a snapshot).
type StaticNet NetState

// NetState returns the fixed state.
func (s StaticNet) NetState() (NetState, error) { return NetState(s), nil }

// NetlinkSource reads NetState over netlink. A nil Handle uses the calling
// thread's network namespace; use netlink.NewHandleAt for another one.
type NetlinkSource struct {
	Handle *netlink.Handle
}

// NetState lists links, addresses and main-table routes. Interrupted dumps
// are retried a few times.
func (s NetlinkSource) NetState() (NetState, error) {
	var st NetState
	var err error
	for range 5 {
		st, err = s.dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return st, err
}

func (s NetlinkSource) handle() *netlink.Handle {
	if s.Handle != nil {
		return s.Handle
	}
	return &netlink.Handle{} // zero handle: the calling thread's namespace
}

func (s NetlinkSource) dump() (NetState, error) {
	h := s.handle()
	links, err := h.LinkList()
	if err != nil {
		return NetState{}, fmt.Errorf("list links: %w", err)
	}
	var st NetState
	byIndex := map[int]int{}
	for _, l := range links {
		a := l.Attrs()
		ls := LinkState{Name: a.Name, Index: a.Index, Kind: l.Type()}
		if ls.Kind == "device" {
			ls.Kind = ""
		}
		if ls.Kind == "veth" && a.NetNsID < 0 {
			ls.PeerIndex = a.ParentIndex
		}
		if x := a.Xdp; x != nil && x.Attached {
			ls.XDP = &XDPState{ProgID: x.ProgId, Mode: xdpModeName(x.AttachMode)}
		}
		byIndex[a.Index] = len(st.Links)
		st.Links = append(st.Links, ls)
	}
	addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return NetState{}, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		i, ok := byIndex[a.LinkIndex]
		if !ok || a.IPNet == nil {
			continue
		}
		if p, ok := prefixOf(a.IPNet); ok {
			st.Links[i].Addrs = append(st.Links[i].Addrs, p)
		}
	}
	routes, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return NetState{}, fmt.Errorf("list routes: %w", err)
	}
	name := func(idx int) string {
		if i, ok := byIndex[idx]; ok {
			return st.Links[i].Name
		}
		return ""
	}
	for _, r := range routes {
		dst := defaultDst(r.Family)
		if r.Dst != nil {
			p, ok := prefixOf(r.Dst)
			if !ok {
				continue
			}
			dst = p.Masked()
		}
		if !dst.IsValid() {
			continue
		}
		if len(r.MultiPath) > 0 {
			for _, nh := range r.MultiPath {
				st.Routes = append(st.Routes, Route{Dst: dst, Gateway: addrOf(nh.Gw), Device: name(nh.LinkIndex)})
			}
			continue
		}
		st.Routes = append(st.Routes, Route{Dst: dst, Gateway: addrOf(r.Gw), Device: name(r.LinkIndex)})
	}
	return st, nil
}

func defaultDst(family int) netip.Prefix {
	switch family {
	case unix.AF_INET:
		return netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	case unix.AF_INET6:
		return netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	return netip.Prefix{}
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

func addrOf(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

func xdpModeName(m uint32) string {
	switch m {
	case 1: // XDP_ATTACHED_DRV
		return "native"
	case 2: // XDP_ATTACHED_SKB
		return "generic"
	case 3: // XDP_ATTACHED_HW
		return "offload"
	case 4: // XDP_ATTACHED_MULTI
		return "multi"
	}
	return fmt.Sprintf("mode-%d", m)
}
