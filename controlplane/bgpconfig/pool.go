package bgpconfig

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
)

// Range is an inclusive range of addresses of one family.
type Range struct {
	First, Last netip.Addr
}

func (r Range) String() string {
	return r.First.String() + "-" + r.Last.String()
}

// Contains reports whether a is in r.
func (r Range) Contains(a netip.Addr) bool {
	return a.BitLen() == r.First.BitLen() && r.First.Compare(a) <= 0 && a.Compare(r.Last) <= 0
}

// Overlaps reports whether r and o share an address.
func (r Range) Overlaps(o Range) bool {
	return r.First.BitLen() == o.First.BitLen() && r.First.Compare(o.Last) <= 0 && o.First.Compare(r.Last) <= 0
}

// ParseRange parses "first-last".
func ParseRange(s string) (Range, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return Range{}, fmt.Errorf("range %q: want first-last", s)
	}
	first, err1 := parseAddr(strings.TrimSpace(a))
	last, err2 := parseAddr(strings.TrimSpace(b))
	switch {
	case err1 != nil:
		return Range{}, fmt.Errorf("range %q: %w", s, err1)
	case err2 != nil:
		return Range{}, fmt.Errorf("range %q: %w", s, err2)
	case first.Is4() != last.Is4():
		return Range{}, fmt.Errorf("range %q: addresses of different families", s)
	case last.Less(first):
		return Range{}, fmt.Errorf("range %q: first address after last", s)
	}
	return Range{First: first, Last: last}, nil
}

// RangeOfPrefix returns the addresses of a masked prefix.
func RangeOfPrefix(p netip.Prefix) Range {
	p = p.Masked()
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	last, _ := netip.AddrFromSlice(b)
	return Range{First: p.Addr(), Last: last}
}

func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, err
	}
	if a.Zone() != "" || a.Is4In6() {
		return netip.Addr{}, fmt.Errorf("address %q: zoned or IPv4-mapped", s)
	}
	return a, nil
}

// size returns the number of addresses in r, saturating at MaxUint64.
func (r Range) size() uint64 {
	if r.First.Is4() {
		f, l := r.First.As4(), r.Last.As4()
		return uint64(binary.BigEndian.Uint32(l[:])-binary.BigEndian.Uint32(f[:])) + 1
	}
	f, l := r.First.As16(), r.Last.As16()
	fh, fl := binary.BigEndian.Uint64(f[:8]), binary.BigEndian.Uint64(f[8:])
	lh, ll := binary.BigEndian.Uint64(l[:8]), binary.BigEndian.Uint64(l[8:])
	hi := lh - fh
	if ll < fl {
		hi--
	}
	lo := ll - fl
	if hi > 0 || lo == math.MaxUint64 {
		return math.MaxUint64
	}
	return lo + 1
}

// buggy counts the IPv4 addresses of r ending in .0 or .255.
func (r Range) buggy() uint64 {
	if !r.First.Is4() {
		return 0
	}
	f, l := r.First.As4(), r.Last.As4()
	a, b := uint64(binary.BigEndian.Uint32(f[:])), uint64(binary.BigEndian.Uint32(l[:]))
	upTo := func(n uint64, rem uint64) uint64 { // x in [0, n] with x%256 == rem
		if n < rem {
			return 0
		}
		return (n-rem)/256 + 1
	}
	count := func(rem uint64) uint64 {
		c := upTo(b, rem)
		if a > 0 {
			c -= upTo(a-1, rem)
		}
		return c
	}
	return count(0) + count(255)
}

// BuggyIP reports whether a is an IPv4 address ending in .0 or .255, which
// some old clients and routers mishandle.
func BuggyIP(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	b := a.As4()
	return b[3] == 0 || b[3] == 255
}

// Pool is a validated LoadBalancerIPPool, for the allocator.
type Pool struct {
	Name string
	// Labels are the pool object's labels (BGPAdvertisement.poolSelector).
	Labels map[string]string
	// Ranges are sorted and do not overlap.
	Ranges        []Range
	AutoAssign    bool
	AvoidBuggyIPs bool
	// ServiceSelector and NamespaceSelector (nil: everything).
	ServiceSelector   labels.Selector
	NamespaceSelector labels.Selector
}

// Contains reports whether a is in one of the pool's ranges (buggy
// addresses included).
func (p Pool) Contains(a netip.Addr) bool {
	return slices.ContainsFunc(p.Ranges, func(r Range) bool { return r.Contains(a) })
}

// Usable reports whether a may be assigned from the pool: it is contained
// and not skipped by AvoidBuggyIPs.
func (p Pool) Usable(a netip.Addr) bool {
	return p.Contains(a) && !(p.AvoidBuggyIPs && BuggyIP(a))
}

// Size is the number of usable addresses, saturating at MaxUint64.
func (p Pool) Size() uint64 {
	var n uint64
	for _, r := range p.Ranges {
		s := r.size()
		if p.AvoidBuggyIPs {
			s -= r.buggy()
		}
		if n+s < n {
			return math.MaxUint64
		}
		n += s
	}
	return n
}

// HasFamily reports whether the pool has addresses of a's family (4 or 6).
func (p Pool) HasFamily(ipv6 bool) bool {
	return slices.ContainsFunc(p.Ranges, func(r Range) bool { return r.First.Is6() == ipv6 })
}

// Selects reports whether a Service with these labels, in a namespace with
// these labels, may get addresses from the pool.
func (p Pool) Selects(svcLabels, nsLabels map[string]string) bool {
	if p.ServiceSelector != nil && !p.ServiceSelector.Matches(labels.Set(svcLabels)) {
		return false
	}
	if p.NamespaceSelector != nil && !p.NamespaceSelector.Matches(labels.Set(nsLabels)) {
		return false
	}
	return true
}
