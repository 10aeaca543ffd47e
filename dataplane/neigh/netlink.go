package neigh

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// rtnetlink neighbour attributes and flags that golang.org/x/sys/unix does
// not define (include/uapi/linux/neighbour.h).
const (
	ndaProtocol   = 12 // NDA_PROTOCOL, u8
	ndaFlagsExt   = 15 // NDA_FLAGS_EXT, u32
	ntfExtManaged = 1  // NTF_EXT_MANAGED, in NDA_FLAGS_EXT
)

// dumpRetries bounds the retries of a dump interrupted by a concurrent
// change (NLM_F_DUMP_INTR).
const dumpRetries = 5

// netlinkKernel talks rtnetlink in the calling thread's namespace: every
// request opens its own socket there (vishvananda/netlink's package-level
// functions do the same).
type netlinkKernel struct{}

func family(a netip.Addr) uint8 {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

func (netlinkKernel) routeGet(dst netip.Addr) (NextHop, bool, error) {
	rs, err := netlink.RouteGet(dst.AsSlice())
	if err != nil {
		return NextHop{}, false, err
	}
	if len(rs) == 0 {
		return NextHop{}, false, errors.New("no route")
	}
	r := rs[0]
	switch r.Type {
	case unix.RTN_LOCAL, unix.RTN_BROADCAST, unix.RTN_MULTICAST, unix.RTN_ANYCAST:
		return NextHop{}, false, nil // delivered locally: no next hop
	case unix.RTN_UNICAST:
	default:
		return NextHop{}, false, fmt.Errorf("route of type %d", r.Type)
	}
	h := NextHop{Addr: dst, LinkIndex: r.LinkIndex}
	if gw, ok := netip.AddrFromSlice(r.Gw); ok && len(r.Gw) > 0 {
		h.Addr = gw.Unmap()
	} else if r.Via != nil {
		if v, ok := r.Via.(*netlink.Via); ok {
			if a, ok := netip.AddrFromSlice(v.Addr); ok {
				h.Addr = a.Unmap()
			}
		}
	}
	need, err := linkResolves(h.LinkIndex)
	if err != nil {
		return NextHop{}, false, err
	}
	return h, need, nil
}

// linkResolves reports whether a link uses neighbour resolution (not
// loopback, not IFF_NOARP such as tunnels and WireGuard).
func linkResolves(index int) (bool, error) {
	l, err := netlink.LinkByIndex(index)
	if err != nil {
		return false, fmt.Errorf("link %d: %w", index, err)
	}
	return l.Attrs().RawFlags&(unix.IFF_NOARP|unix.IFF_LOOPBACK) == 0, nil
}

func (netlinkKernel) routes() ([]route, error) {
	var rs []netlink.Route
	var err error
	for range dumpRetries {
		rs, err = netlink.RouteList(nil, netlink.FAMILY_V4)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	resolves := make(map[int]bool)
	keep := func(h NextHop) bool {
		r, ok := resolves[h.LinkIndex]
		if !ok {
			r, _ = linkResolves(h.LinkIndex) // a link that vanished needs nothing
			resolves[h.LinkIndex] = r
		}
		return r && h.Addr.IsValid()
	}
	var out []route
	for _, r := range rs {
		if r.Type != unix.RTN_UNICAST {
			continue
		}
		rt := route{Default: r.Dst == nil || (r.Dst.IP.IsUnspecified() && maskBits(r.Dst) == 0)}
		if len(r.MultiPath) > 0 {
			for _, nh := range r.MultiPath {
				h := NextHop{Addr: addrOf(nh.Gw), LinkIndex: nh.LinkIndex}
				if keep(h) {
					rt.NextHops = append(rt.NextHops, h)
				}
			}
		} else if h := (NextHop{Addr: addrOf(r.Gw), LinkIndex: r.LinkIndex}); keep(h) {
			rt.NextHops = append(rt.NextHops, h)
		}
		if len(rt.NextHops) > 0 {
			out = append(out, rt)
		}
	}
	return out, nil
}

func maskBits(n *net.IPNet) int {
	ones, _ := n.Mask.Size()
	return ones
}

func addrOf(ip net.IP) netip.Addr {
	if len(ip) == 0 {
		return netip.Addr{}
	}
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

func (netlinkKernel) neighbours() ([]Entry, error) {
	var msgs [][]byte
	var err error
	for range dumpRetries {
		req := nl.NewNetlinkRequest(unix.RTM_GETNEIGH, unix.NLM_F_DUMP)
		req.AddData(&netlink.Ndmsg{Family: unix.AF_UNSPEC})
		msgs, err = req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWNEIGH)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(msgs))
	for _, m := range msgs {
		e, ok, err := parseNeigh(m)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, e)
		}
	}
	return out, nil
}

// ndmsgLen is sizeof(struct ndmsg).
const ndmsgLen = 12

// parseNeigh decodes one RTM_NEWNEIGH message; ok is false for entries
// that are not IP neighbours (bridge FDB, proxy entries).
func parseNeigh(m []byte) (Entry, bool, error) {
	if len(m) < ndmsgLen {
		return Entry{}, false, fmt.Errorf("neighbour message of %d bytes", len(m))
	}
	fam, flags := m[0], m[10]
	if (fam != unix.AF_INET && fam != unix.AF_INET6) || flags&unix.NTF_PROXY != 0 {
		return Entry{}, false, nil
	}
	e := Entry{Exists: true}
	e.LinkIndex = int(int32(nl.NativeEndian().Uint32(m[4:8])))
	e.State = nl.NativeEndian().Uint16(m[8:10])
	attrs, err := nl.ParseRouteAttr(m[ndmsgLen:])
	if err != nil {
		return Entry{}, false, fmt.Errorf("parse neighbour attributes: %w", err)
	}
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.NDA_DST:
			if ip, ok := netip.AddrFromSlice(a.Value); ok {
				e.Addr = ip.Unmap()
			}
		case unix.NDA_LLADDR:
			e.MAC = net.HardwareAddr(append([]byte(nil), a.Value...))
		case ndaProtocol:
			if len(a.Value) >= 1 {
				e.Proto = a.Value[0]
			}
		case ndaFlagsExt:
			if len(a.Value) >= 4 {
				e.Managed = nl.NativeEndian().Uint32(a.Value)&ntfExtManaged != 0
			}
		}
	}
	if !e.Addr.IsValid() {
		return Entry{}, false, nil
	}
	return e, true, nil
}

// newNeighRequest builds the RTM_NEWNEIGH request making h a managed entry
// marked with Protocol. State NUD_NONE: with NTF_EXT_MANAGED the kernel
// keeps an existing entry's state and starts resolution of a new one.
func newNeighRequest(h NextHop, create bool) *nl.NetlinkRequest {
	flags := unix.NLM_F_ACK | unix.NLM_F_REPLACE
	if create {
		flags = unix.NLM_F_ACK | unix.NLM_F_CREATE | unix.NLM_F_EXCL
	}
	req := nl.NewNetlinkRequest(unix.RTM_NEWNEIGH, flags)
	req.AddData(&netlink.Ndmsg{Family: family(h.Addr), Index: uint32(h.LinkIndex), State: unix.NUD_NONE})
	req.AddData(nl.NewRtAttr(unix.NDA_DST, h.Addr.AsSlice()))
	req.AddData(nl.NewRtAttr(ndaProtocol, nl.Uint8Attr(Protocol)))
	req.AddData(nl.NewRtAttr(ndaFlagsExt, nl.Uint32Attr(ntfExtManaged)))
	return req
}

func (netlinkKernel) setManaged(h NextHop, create bool) error {
	_, err := newNeighRequest(h, create).Execute(unix.NETLINK_ROUTE, 0)
	return err
}

func (netlinkKernel) remove(h NextHop) error {
	req := nl.NewNetlinkRequest(unix.RTM_DELNEIGH, unix.NLM_F_ACK)
	req.AddData(&netlink.Ndmsg{Family: family(h.Addr), Index: uint32(h.LinkIndex)})
	req.AddData(nl.NewRtAttr(unix.NDA_DST, h.Addr.AsSlice()))
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}
