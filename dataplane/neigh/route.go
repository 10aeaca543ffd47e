package neigh

import (
	"encoding/binary"
	"hash/maphash"
	"net/netip"

	"golang.org/x/sys/unix"
)

// route is an IPv4 route of any routing table, as the kernel dumps it,
// reduced to what Sync needs.
type route struct {
	Table    uint32 // RT_TABLE_*
	Type     uint8  // RTN_*
	Tos      uint8
	Scope    uint8
	Flags    uint32 // RTM_F_*
	Priority uint32 // the metric
	Dst      netip.Prefix
	NHID     uint32 // a nexthop object (RTA_NH_ID), 0 for none
	Encap    bool   // a lightweight tunnel encapsulation
	// Paths are its nexthops: one, or several for a multipath route (none
	// for a blackhole, unreachable, ... route).
	Paths []path
	// Digest is a hash of the whole netlink message, so the fingerprint
	// also sees what is not parsed (0 in tests).
	Digest uint64
}

// path is one nexthop of a route.
type path struct {
	Gateway   netip.Addr // RTA_GATEWAY; invalid when there is none
	Via       netip.Addr // RTA_VIA (an IPv6 gateway for IPv4)
	LinkIndex int
	Flags     uint8 // RTNH_F_*
	Hops      uint8 // the weight minus 1
	Encap     bool
	// Resolves reports whether the link uses neighbour resolution (see
	// linkResolves); false for a link that does not exist.
	Resolves bool
}

// nextHops returns the route's gateways (RTA_GATEWAY) on links that use
// neighbour resolution.
func (r *route) nextHops() []NextHop {
	var out []NextHop
	for _, p := range r.Paths {
		if p.Resolves && p.Gateway.IsValid() {
			out = append(out, NextHop{Addr: p.Gateway, LinkIndex: p.LinkIndex})
		}
	}
	return out
}

// rule is an IPv4 policy routing rule.
type rule struct {
	Priority uint32
	Table    uint32
	// Plain reports a rule that matches every packet and looks up Table:
	// action to-table, no selector, no inversion, no suppression.
	Plain bool
	// Digest is a hash of the whole netlink message (0 in tests).
	Digest uint64
}

// defaultRules reports whether rules are the kernel's initial ones (local
// at priority 0, main at 32766, and optionally default at 32767), so that
// a lookup tries the local table, then the main table, then the default
// table.
func defaultRules(rules []rule) bool {
	var local, main, dflt int
	for _, r := range rules {
		if !r.Plain {
			return false
		}
		switch {
		case r.Priority == 0 && r.Table == unix.RT_TABLE_LOCAL:
			local++
		case r.Priority == 32766 && r.Table == unix.RT_TABLE_MAIN:
			main++
		case r.Priority == 32767 && r.Table == unix.RT_TABLE_DEFAULT:
			dflt++
		default:
			return false
		}
	}
	return local == 1 && main == 1 && dflt <= 1
}

// fingerprint hashes everything in the routing configuration that can
// change the answer of a route lookup: every route of every table with its
// nexthops (and whether their links use neighbour resolution), and the
// policy rules.
func fingerprint(seed maphash.Seed, rts []route, rules []rule) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	b := make([]byte, 0, 128)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(rts)))
	h.Write(b)
	for i := range rts {
		r := &rts[i]
		b = b[:0]
		b = binary.LittleEndian.AppendUint32(b, r.Table)
		b = append(b, r.Type, r.Tos, r.Scope, boolByte(r.Encap))
		b = binary.LittleEndian.AppendUint32(b, r.Flags)
		b = binary.LittleEndian.AppendUint32(b, r.Priority)
		b = binary.LittleEndian.AppendUint32(b, r.NHID)
		b = appendAddr(b, r.Dst.Addr())
		b = append(b, byte(r.Dst.Bits()))
		b = binary.LittleEndian.AppendUint64(b, r.Digest)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(r.Paths)))
		for _, p := range r.Paths {
			b = appendAddr(b, p.Gateway)
			b = appendAddr(b, p.Via)
			b = binary.LittleEndian.AppendUint32(b, uint32(p.LinkIndex))
			b = append(b, p.Flags, p.Hops, boolByte(p.Encap), boolByte(p.Resolves))
		}
		h.Write(b)
	}
	b = binary.LittleEndian.AppendUint64(b[:0], uint64(len(rules)))
	h.Write(b)
	for _, r := range rules {
		b = b[:0]
		b = binary.LittleEndian.AppendUint32(b, r.Priority)
		b = binary.LittleEndian.AppendUint32(b, r.Table)
		b = append(b, boolByte(r.Plain))
		b = binary.LittleEndian.AppendUint64(b, r.Digest)
		h.Write(b)
	}
	return h.Sum64()
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// appendAddr appends a length-prefixed address (length 0 when invalid).
func appendAddr(b []byte, a netip.Addr) []byte {
	s := a.AsSlice()
	b = append(b, byte(len(s)))
	return append(b, s...)
}

// lpmTable finds the longest-prefix-match routes of one table (IPv4).
type lpmTable struct {
	lens   []int            // the prefix lengths present, longest first
	routes map[uint64][]int // by prefixKey
}

// prefixKey is the key of the IPv4 prefix of length bits containing a
// (a v4key).
func prefixKey(a uint32, bits int) uint64 {
	mask := uint32(0)
	if bits > 0 {
		mask = ^uint32(0) << (32 - bits)
	}
	return uint64(bits)<<32 | uint64(a&mask)
}

func newLPMTable(rts []route, table uint32) *lpmTable {
	t := &lpmTable{routes: make(map[uint64][]int)}
	var have [33]bool
	for i := range rts {
		r := &rts[i]
		if r.Table != table || !r.Dst.Addr().Is4() {
			continue
		}
		k := prefixKey(v4key(r.Dst.Addr()), r.Dst.Bits())
		t.routes[k] = append(t.routes[k], i)
		have[r.Dst.Bits()] = true
	}
	for l := 32; l >= 0; l-- {
		if have[l] {
			t.lens = append(t.lens, l)
		}
	}
	return t
}

// lookup returns the indexes of the routes with the longest prefix that
// covers a (several when routes differ only in metric or TOS), or nil.
func (t *lpmTable) lookup(a netip.Addr) []int {
	k := v4key(a)
	for _, l := range t.lens {
		if rs, ok := t.routes[prefixKey(k, l)]; ok {
			return rs
		}
	}
	return nil
}

// lookupGroup is a set of targets whose route lookups provably give the
// same answer, or answers derived from one another: the kernel looks them
// all up in the main table and finds the same route.
type lookupGroup struct {
	Route   int   // index of the main-table route
	Members []int // indexes of the targets; Members[0] is looked up
}

// planLookups splits targets into groups that share one route lookup and
// targets that need their own. A target joins a group only when it is
// provably safe:
//
//   - the policy rules are the kernel's default ones (local, main, default);
//   - it is not multicast, 255.255.255.255 or 0.0.0.0 (see special);
//   - no route of the local table covers it (it may be a local, broadcast
//     or anycast address);
//   - its longest-prefix match in the main table is a single route (not
//     several differing in metric or TOS), of type unicast and TOS 0, with
//     one nexthop on a known link, no nexthop object, no encapsulation and
//     neither dead nor link-down.
//
// Two addresses whose longest match is the same route lie in no more
// specific route, so the kernel's lookup (including its backtracking to
// shorter prefixes past unusable routes) takes the same path for both.
// The answer for the first member must still match the route (see
// sharedAnswer) before it is reused.
func planLookups(targets []netip.Addr, rts []route, rules []rule) (groups []lookupGroup, solo []int) {
	if !defaultRules(rules) {
		solo = make([]int, len(targets))
		for i := range solo {
			solo[i] = i
		}
		return nil, solo
	}
	local := newLPMTable(rts, unix.RT_TABLE_LOCAL)
	main := newLPMTable(rts, unix.RT_TABLE_MAIN)
	byRoute := make(map[int]int) // route index -> index in groups
	for i, a := range targets {
		if !a.Is4() || special(a) || local.lookup(a) != nil {
			solo = append(solo, i)
			continue
		}
		rs := main.lookup(a)
		if len(rs) != 1 || !groupable(&rts[rs[0]]) {
			solo = append(solo, i)
			continue
		}
		g, ok := byRoute[rs[0]]
		if !ok {
			g = len(groups)
			byRoute[rs[0]] = g
			groups = append(groups, lookupGroup{Route: rs[0]})
		}
		groups[g].Members = append(groups[g].Members, i)
	}
	return groups, solo
}

// special reports an IPv4 address that the kernel's output route lookup
// handles before looking at the FIB: multicast, the limited broadcast
// address and 0.0.0.0.
func special(a netip.Addr) bool {
	return a.IsMulticast() || a.IsUnspecified() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// groupable reports whether every address under r gets the same next hop
// (the gateway), or itself on the same link.
func groupable(r *route) bool {
	if r.Type != unix.RTN_UNICAST || r.Tos != 0 || r.NHID != 0 || r.Encap || len(r.Paths) != 1 {
		return false
	}
	p := r.Paths[0]
	return p.LinkIndex > 0 && !p.Encap && p.Flags&(unix.RTNH_F_DEAD|unix.RTNH_F_LINKDOWN) == 0
}

// sharedAnswer checks the kernel's answer (h, ok) for rep, a member of a
// group under route r, against r. consistent is false when the answer is
// not the one r implies: then nothing may be derived from it. Otherwise
// onLink reports that every member is its own next hop on h's link; when
// false (and ok) every member shares h.
func sharedAnswer(r *route, rep netip.Addr, h NextHop, ok bool) (onLink, consistent bool) {
	p := r.Paths[0]
	if !ok {
		// A unicast route gives no next hop only on a link without
		// neighbour resolution.
		return false, !p.Resolves
	}
	if !p.Resolves || h.LinkIndex != p.LinkIndex {
		return false, false
	}
	gw := p.Gateway
	if !gw.IsValid() {
		gw = p.Via
	}
	if gw.IsValid() {
		return false, h.Addr == gw
	}
	if h.Addr != rep {
		return false, false
	}
	return true, true
}
