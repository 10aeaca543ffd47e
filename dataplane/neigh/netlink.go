package neigh

import (
	"errors"
	"fmt"
	"hash/maphash"
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
type netlinkKernel struct {
	// links says which links use neighbour resolution, as of the last
	// routes() (routeGet asks the kernel about a link missing here).
	links map[int]bool
}

func family(a netip.Addr) uint8 {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

func (k *netlinkKernel) routeGet(dst netip.Addr) (NextHop, bool, error) {
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
	need, ok := k.links[h.LinkIndex]
	if !ok {
		// A link that appeared since the last routes(): ask.
		if need, err = linkResolves(h.LinkIndex); err != nil {
			return NextHop{}, false, err
		}
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
	return flagsResolve(l.Attrs().RawFlags), nil
}

func flagsResolve(flags uint32) bool { return flags&(unix.IFF_NOARP|unix.IFF_LOOPBACK) == 0 }

// rtextFilterSkipStats is RTEXT_FILTER_SKIP_STATS (include/uapi/linux/rtnetlink.h).
const rtextFilterSkipStats = 1 << 3

// dump runs a dump request, retrying a dump interrupted by a concurrent
// change.
func dump(typ, reply int, msg nl.NetlinkRequestData, attrs ...nl.NetlinkRequestData) ([][]byte, error) {
	var msgs [][]byte
	var err error
	for range dumpRetries {
		req := nl.NewNetlinkRequest(typ, unix.NLM_F_DUMP)
		req.AddData(msg)
		for _, a := range attrs {
			req.AddData(a)
		}
		msgs, err = req.Execute(unix.NETLINK_ROUTE, uint16(reply))
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return msgs, err
}

// linkTable dumps the links: ifindex -> whether it uses neighbour
// resolution.
func linkTable() (map[int]bool, error) {
	msgs, err := dump(unix.RTM_GETLINK, unix.RTM_NEWLINK, nl.NewIfInfomsg(unix.AF_UNSPEC),
		nl.NewRtAttr(unix.IFLA_EXT_MASK, nl.Uint32Attr(rtextFilterSkipStats)))
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	out := make(map[int]bool, len(msgs))
	for _, m := range msgs {
		if len(m) < unix.SizeofIfInfomsg {
			return nil, fmt.Errorf("link message of %d bytes", len(m))
		}
		out[int(int32(nl.NativeEndian().Uint32(m[4:8])))] = flagsResolve(nl.NativeEndian().Uint32(m[8:12]))
	}
	return out, nil
}

// digestSeed seeds the digests of raw route and rule messages.
var digestSeed = maphash.MakeSeed()

// routes dumps the IPv4 routes of every table. It also remembers which
// links use neighbour resolution, for routeGet.
func (k *netlinkKernel) routes() ([]route, error) {
	links, err := linkTable()
	if err != nil {
		return nil, err
	}
	msgs, err := dump(unix.RTM_GETROUTE, unix.RTM_NEWROUTE, &nl.RtMsg{RtMsg: unix.RtMsg{Family: unix.AF_INET}})
	if err != nil {
		return nil, err
	}
	k.links = links
	out := make([]route, 0, len(msgs))
	for _, m := range msgs {
		r, ok, err := parseRoute(m, links)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// rtaNHID is RTA_NH_ID (include/uapi/linux/rtnetlink.h).
const rtaNHID = 30

// parseRoute decodes one RTM_NEWROUTE message; ok is false for what is not
// an IPv4 FIB route (a cached clone). links says which links use neighbour
// resolution.
func parseRoute(m []byte, links map[int]bool) (route, bool, error) {
	if len(m) < unix.SizeofRtMsg {
		return route{}, false, fmt.Errorf("route message of %d bytes", len(m))
	}
	ne := nl.NativeEndian()
	flags := ne.Uint32(m[8:12])
	if m[0] != unix.AF_INET || flags&unix.RTM_F_CLONED != 0 {
		return route{}, false, nil
	}
	dstLen := int(m[1])
	r := route{Table: uint32(m[4]), Tos: m[3], Scope: m[6], Type: m[7], Flags: flags,
		Digest: maphash.Bytes(digestSeed, m)}
	attrs, err := nl.ParseRouteAttr(m[unix.SizeofRtMsg:])
	if err != nil {
		return route{}, false, fmt.Errorf("parse route attributes: %w", err)
	}
	dst := netip.IPv4Unspecified()
	var single path
	multi := false
	for _, a := range attrs {
		v := a.Value
		switch a.Attr.Type {
		case unix.RTA_DST:
			if d := addrOf(v); d.IsValid() {
				dst = d
			}
		case unix.RTA_TABLE:
			if len(v) >= 4 {
				r.Table = ne.Uint32(v)
			}
		case unix.RTA_PRIORITY:
			if len(v) >= 4 {
				r.Priority = ne.Uint32(v)
			}
		case unix.RTA_OIF:
			if len(v) >= 4 {
				single.LinkIndex = int(int32(ne.Uint32(v)))
			}
		case unix.RTA_GATEWAY:
			single.Gateway = addrOf(v)
		case unix.RTA_VIA:
			single.Via = viaOf(v)
		case unix.RTA_ENCAP:
			r.Encap = true
		case rtaNHID:
			if len(v) >= 4 {
				r.NHID = ne.Uint32(v)
			}
		case unix.RTA_MULTIPATH:
			multi = true
			if r.Paths, err = parseMultipath(v, links); err != nil {
				return route{}, false, err
			}
		}
	}
	if dstLen > dst.BitLen() {
		return route{}, false, fmt.Errorf("route prefix length %d", dstLen)
	}
	r.Dst = netip.PrefixFrom(dst, dstLen)
	if !multi && (single.LinkIndex != 0 || single.Gateway.IsValid() || single.Via.IsValid()) {
		single.Resolves = links[single.LinkIndex]
		r.Paths = []path{single}
	}
	return r, true, nil
}

// parseMultipath decodes RTA_MULTIPATH: struct rtnexthop entries, each
// followed by its attributes.
func parseMultipath(b []byte, links map[int]bool) ([]path, error) {
	var out []path
	for len(b) >= unix.SizeofRtNexthop {
		n := int(nl.NativeEndian().Uint16(b[0:2]))
		if n < unix.SizeofRtNexthop || n > len(b) {
			return nil, fmt.Errorf("rtnexthop of %d bytes", n)
		}
		p := path{Flags: b[2], Hops: b[3], LinkIndex: int(int32(nl.NativeEndian().Uint32(b[4:8])))}
		attrs, err := nl.ParseRouteAttr(b[unix.SizeofRtNexthop:n])
		if err != nil {
			return nil, fmt.Errorf("parse nexthop attributes: %w", err)
		}
		for _, a := range attrs {
			switch a.Attr.Type {
			case unix.RTA_GATEWAY:
				p.Gateway = addrOf(a.Value)
			case unix.RTA_VIA:
				p.Via = viaOf(a.Value)
			case unix.RTA_ENCAP:
				p.Encap = true
			}
		}
		p.Resolves = links[p.LinkIndex]
		out = append(out, p)
		n = (n + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1)
		if n >= len(b) {
			break
		}
		b = b[n:]
	}
	return out, nil
}

// viaOf decodes struct rtvia: a 16-bit address family, then the address.
func viaOf(b []byte) netip.Addr {
	if len(b) < 2 {
		return netip.Addr{}
	}
	return addrOf(b[2:])
}

// rules dumps the IPv4 policy routing rules.
func (k *netlinkKernel) rules() ([]rule, error) {
	msgs, err := dump(unix.RTM_GETRULE, unix.RTM_NEWRULE, &nl.RtMsg{RtMsg: unix.RtMsg{Family: unix.AF_INET}})
	if err != nil {
		return nil, err
	}
	out := make([]rule, 0, len(msgs))
	for _, m := range msgs {
		r, ok, err := parseRule(m)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// parseRule decodes one RTM_NEWRULE message (struct fib_rule_hdr, then
// FRA_* attributes); ok is false for another family's rule.
func parseRule(m []byte) (rule, bool, error) {
	// struct fib_rule_hdr has the layout and size of struct rtmsg.
	if len(m) < unix.SizeofRtMsg {
		return rule{}, false, fmt.Errorf("rule message of %d bytes", len(m))
	}
	if m[0] != unix.AF_INET {
		return rule{}, false, nil
	}
	dstLen, srcLen, tos, action := m[1], m[2], m[3], m[7]
	flags := nl.NativeEndian().Uint32(m[8:12])
	r := rule{Table: uint32(m[4]), Digest: maphash.Bytes(digestSeed, m),
		Plain: dstLen == 0 && srcLen == 0 && tos == 0 && action == unix.FR_ACT_TO_TBL && flags == 0}
	attrs, err := nl.ParseRouteAttr(m[unix.SizeofRtMsg:])
	if err != nil {
		return rule{}, false, fmt.Errorf("parse rule attributes: %w", err)
	}
	for _, a := range attrs {
		v := a.Value
		u32 := uint32(0)
		if len(v) >= 4 {
			u32 = nl.NativeEndian().Uint32(v)
		}
		switch a.Attr.Type {
		case unix.FRA_TABLE:
			r.Table = u32
		case unix.FRA_PRIORITY:
			r.Priority = u32
		case unix.FRA_PROTOCOL:
		case unix.FRA_SUPPRESS_PREFIXLEN, unix.FRA_SUPPRESS_IFGROUP:
			if len(v) < 4 || u32 != 0xffffffff {
				r.Plain = false
			}
		default:
			// A selector (FRA_SRC, FRA_FWMARK, FRA_IIFNAME, FRA_UID_RANGE,
			// ...) or anything else: not provably a plain rule.
			r.Plain = false
		}
	}
	return r, true, nil
}

func (*netlinkKernel) neighbours() ([]Entry, error) {
	msgs, err := dump(unix.RTM_GETNEIGH, unix.RTM_NEWNEIGH, &netlink.Ndmsg{Family: unix.AF_UNSPEC})
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

func (*netlinkKernel) setManaged(h NextHop, create bool) error {
	_, err := newNeighRequest(h, create).Execute(unix.NETLINK_ROUTE, 0)
	return err
}

func (*netlinkKernel) remove(h NextHop) error {
	req := nl.NewNetlinkRequest(unix.RTM_DELNEIGH, unix.NLM_F_ACK)
	req.AddData(&netlink.Ndmsg{Family: family(h.Addr), Index: uint32(h.LinkIndex)})
	req.AddData(nl.NewRtAttr(unix.NDA_DST, h.Addr.AsSlice()))
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

func addrOf(b []byte) netip.Addr {
	if len(b) == 0 {
		return netip.Addr{}
	}
	a, _ := netip.AddrFromSlice(b)
	return a.Unmap()
}
