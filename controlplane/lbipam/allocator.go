package lbipam

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/straitlb/strait/controlplane/bgpconfig"
)

// Allocator assigns pool addresses to Services. It is pure (no I/O) and
// not safe for concurrent use.
//
// Rules, in order, for Assign:
//  1. An address the Service already holds is kept while it stays valid:
//     in a pool the Service may use, equal to the requested one if any,
//     and (if shared) still compatible with the other holders.
//  2. Otherwise the addresses in its status (Service.Current) are claimed
//     if valid and free (or shareable): a restart never moves a working
//     address.
//  3. Otherwise requested addresses are claimed (from any pool the Service
//     may use, autoAssign or not), or one address per family is
//     allocated: first an address already held under the same sharing key
//     (ports not clashing), then the lowest free address of the first pool
//     by name that is autoAssign (or the requested pool) and whose
//     selectors match.
//
// A pool may be used by a Service when its serviceSelector and
// namespaceSelector match and it is the requested pool if one is.
type Allocator struct {
	pools []bgpconfig.Pool // sorted by name
	ips   map[netip.Addr]*ipUse
	svcs  map[types.NamespacedName]*holder
}

type ipUse struct {
	pool       string // "" when no pool contains it any more
	sharingKey string
	users      map[types.NamespacedName][]Port
}

type holder struct {
	svc Service
	ips []netip.Addr
}

// NewAllocator returns an allocator for pools (see SetPools).
func NewAllocator(pools []bgpconfig.Pool) *Allocator {
	a := &Allocator{ips: make(map[netip.Addr]*ipUse), svcs: make(map[types.NamespacedName]*holder)}
	a.SetPools(pools)
	return a
}

// SetPools replaces the pools (which must not overlap, as
// bgpconfig.Convert ensures). Assignments are kept; those whose address
// is no longer usable in a pool the Service may use are moved by the next
// Assign of the Service.
func (a *Allocator) SetPools(pools []bgpconfig.Pool) {
	a.pools = slices.Clone(pools)
	slices.SortFunc(a.pools, func(x, y bgpconfig.Pool) int { return cmp.Compare(x.Name, y.Name) })
	for ip, u := range a.ips {
		u.pool = ""
		if p, ok := a.poolOf(ip); ok {
			u.pool = p.Name
		}
	}
}

func (a *Allocator) poolOf(ip netip.Addr) (*bgpconfig.Pool, bool) {
	for i := range a.pools {
		if a.pools[i].Usable(ip) {
			return &a.pools[i], true
		}
	}
	return nil, false
}

// Assigned returns the addresses held by a Service.
func (a *Allocator) Assigned(key types.NamespacedName) []netip.Addr {
	if h := a.svcs[key]; h != nil {
		return slices.Clone(h.ips)
	}
	return nil
}

// PoolOf names the pool an assigned address is from ("" if none).
func (a *Allocator) PoolOf(ip netip.Addr) string {
	if u := a.ips[ip]; u != nil {
		return u.pool
	}
	return ""
}

// Release frees the Service's addresses (shared ones stay with their other
// holders) and returns them.
func (a *Allocator) Release(key types.NamespacedName) []netip.Addr {
	h := a.svcs[key]
	if h == nil {
		return nil
	}
	delete(a.svcs, key)
	for _, ip := range h.ips {
		if u := a.ips[ip]; u != nil {
			delete(u.users, key)
			if len(u.users) == 0 {
				delete(a.ips, ip)
			}
		}
	}
	return h.ips
}

// Restore claims the Service's current addresses (from its status) if
// they are valid for it, and nothing else; it reports whether it did.
// Call it for every Service before the first Assign so that no new
// allocation takes an address a Service already has.
func (a *Allocator) Restore(svc Service) bool {
	if a.svcs[svc.Key] != nil || len(svc.Current) == 0 {
		return false
	}
	if a.validFor(svc, svc.Current) != nil {
		return false
	}
	a.claim(svc, svc.Current)
	return true
}

// Assign returns the Service's addresses, allocating them if needed (see
// Allocator). On error the Service holds nothing; the error is an *Error.
func (a *Allocator) Assign(svc Service) ([]netip.Addr, error) {
	if h := a.svcs[svc.Key]; h != nil {
		ips := h.ips
		a.Release(svc.Key)
		if a.validFor(svc, ips) == nil {
			a.claim(svc, ips)
			return slices.Clone(ips), nil
		}
	}
	if len(svc.Current) > 0 && a.validFor(svc, svc.Current) == nil {
		a.claim(svc, svc.Current)
		return slices.Clone(svc.Current), nil
	}
	if len(svc.RequestedIPs) > 0 {
		if err := a.validFor(svc, svc.RequestedIPs); err != nil {
			return nil, err
		}
		a.claim(svc, svc.RequestedIPs)
		return slices.Clone(svc.RequestedIPs), nil
	}
	families := svc.Families
	if len(families) == 0 {
		families = []v1.IPFamily{v1.IPv4Protocol}
	}
	var ips []netip.Addr
	for i, f := range families {
		ip, err := a.allocate(svc, f == v1.IPv6Protocol)
		if err != nil {
			if i == 0 || svc.RequireAllFamilies {
				a.Release(svc.Key)
				return nil, err
			}
			continue
		}
		ips = append(ips, ip)
		// Hold it while the next family is allocated.
		a.claim(svc, ips)
	}
	a.Release(svc.Key)
	a.claim(svc, ips)
	return slices.Clone(ips), nil
}

// usable reports whether pool p may give svc an address; explicit allows
// pools that are not autoAssign.
func usable(p *bgpconfig.Pool, svc Service, explicit bool) bool {
	if svc.Pool != "" && p.Name != svc.Pool {
		return false
	}
	if !explicit && svc.Pool == "" && !p.AutoAssign {
		return false
	}
	return p.Selects(svc.Labels, svc.NamespaceLabels)
}

// validFor checks that svc may hold ips (which it does not hold now).
func (a *Allocator) validFor(svc Service, ips []netip.Addr) error {
	if len(svc.RequestedIPs) > 0 && !sameSet(ips, svc.RequestedIPs) {
		return errorf(ReasonInvalid, "addresses %v are not the requested %v", ips, svc.RequestedIPs)
	}
	if svc.Pool != "" && !slices.ContainsFunc(a.pools, func(p bgpconfig.Pool) bool { return p.Name == svc.Pool }) {
		return errorf(ReasonInvalid, "requested pool %q does not exist or is invalid", svc.Pool)
	}
	seen := map[bool]bool{}
	for _, ip := range ips {
		if seen[ip.Is6()] {
			return errorf(ReasonInvalid, "more than one address of a family in %v", ips)
		}
		seen[ip.Is6()] = true
		p, ok := a.poolOf(ip)
		if !ok {
			return errorf(ReasonInvalid, "%s is in no pool", ip)
		}
		if !usable(p, svc, true) {
			if svc.Pool != "" && p.Name != svc.Pool {
				return errorf(ReasonInvalid, "%s is in pool %q, not in the requested pool %q", ip, p.Name, svc.Pool)
			}
			return errorf(ReasonInvalid, "pool %q of %s does not select this Service", p.Name, ip)
		}
		if err := a.shareable(svc, ip); err != nil {
			return err
		}
	}
	return nil
}

// shareable checks that ip is free or may be shared with svc.
func (a *Allocator) shareable(svc Service, ip netip.Addr) error {
	u := a.ips[ip]
	if u == nil {
		return nil
	}
	others := slices.SortedFunc(func(yield func(types.NamespacedName) bool) {
		for k := range u.users {
			if k != svc.Key && !yield(k) {
				return
			}
		}
	}, func(x, y types.NamespacedName) int { return cmp.Compare(x.String(), y.String()) })
	if len(others) == 0 {
		return nil
	}
	if svc.SharingKey == "" || u.sharingKey != svc.SharingKey {
		return errorf(ReasonConflict, "%s is already used by %s (sharing key %q, this Service's %q)", ip, others[0], u.sharingKey, svc.SharingKey)
	}
	for _, k := range others {
		for _, p := range u.users[k] {
			if slices.Contains(svc.Ports, p) {
				return errorf(ReasonConflict, "%s is shared with %s, which already uses port %s", ip, k, p)
			}
		}
	}
	return nil
}

// claim records that svc holds ips (replacing what it held).
func (a *Allocator) claim(svc Service, ips []netip.Addr) {
	a.Release(svc.Key)
	h := &holder{svc: svc, ips: slices.Clone(ips)}
	a.svcs[svc.Key] = h
	for _, ip := range ips {
		u := a.ips[ip]
		if u == nil {
			u = &ipUse{sharingKey: svc.SharingKey, users: make(map[types.NamespacedName][]Port)}
			if p, ok := a.poolOf(ip); ok {
				u.pool = p.Name
			}
			a.ips[ip] = u
		}
		u.users[svc.Key] = svc.Ports
	}
}

// allocate picks one address of a family for svc.
func (a *Allocator) allocate(svc Service, ipv6 bool) (netip.Addr, error) {
	family := "IPv4"
	if ipv6 {
		family = "IPv6"
	}
	if svc.SharingKey != "" {
		shared := slices.SortedFunc(func(yield func(netip.Addr) bool) {
			for ip, u := range a.ips {
				if u.sharingKey == svc.SharingKey && ip.Is6() == ipv6 && !yield(ip) {
					return
				}
			}
		}, netip.Addr.Compare)
		for _, ip := range shared {
			if p, ok := a.poolOf(ip); ok && usable(p, svc, false) && a.shareable(svc, ip) == nil {
				return ip, nil
			}
		}
	}
	var tried []string
	for i := range a.pools {
		p := &a.pools[i]
		if !usable(p, svc, false) || !p.HasFamily(ipv6) {
			continue
		}
		tried = append(tried, p.Name)
		for _, r := range p.Ranges {
			if r.First.Is6() != ipv6 {
				continue
			}
			for ip := r.First; ip.IsValid() && ip.Compare(r.Last) <= 0; ip = ip.Next() {
				if a.ips[ip] == nil && p.Usable(ip) {
					return ip, nil
				}
			}
		}
	}
	switch {
	case len(tried) > 0:
		return netip.Addr{}, errorf(ReasonExhausted, "no free %s address in pool(s) %v", family, tried)
	case svc.Pool != "":
		if !slices.ContainsFunc(a.pools, func(p bgpconfig.Pool) bool { return p.Name == svc.Pool }) {
			return netip.Addr{}, errorf(ReasonInvalid, "requested pool %q does not exist or is invalid", svc.Pool)
		}
		return netip.Addr{}, errorf(ReasonNoPool, "requested pool %q has no %s address or does not select this Service", svc.Pool, family)
	default:
		return netip.Addr{}, errorf(ReasonNoPool, "no autoAssign pool with %s addresses selects this Service", family)
	}
}

func sameSet(a, b []netip.Addr) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.SortFunc(a, netip.Addr.Compare)
	slices.SortFunc(b, netip.Addr.Compare)
	return slices.Equal(a, b)
}

// PoolStats counts one pool's addresses.
type PoolStats struct {
	Name      string
	Assigned  uint64
	Available uint64
}

// Stats returns the pools' counts, sorted by name.
func (a *Allocator) Stats() []PoolStats {
	used := make(map[string]uint64)
	for _, u := range a.ips {
		if u.pool != "" {
			used[u.pool]++
		}
	}
	out := make([]PoolStats, len(a.pools))
	for i, p := range a.pools {
		size := p.Size()
		out[i] = PoolStats{Name: p.Name, Assigned: used[p.Name], Available: size - min(size, used[p.Name])}
	}
	return out
}

// AsError returns err as an *Error, or wraps it as ReasonInvalid.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Reason: ReasonInvalid, Msg: fmt.Sprint(err)}
}
