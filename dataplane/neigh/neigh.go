package neigh

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"net"
	"net/netip"
	"slices"
	"sync"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Protocol is the NDA_PROTOCOL value that marks the neighbour entries a
// Manager owns (83 is 'S'; unused by iproute2's rt_protos).
const Protocol = 83

// ErrUnsupported is returned (wrapped) when the kernel created a
// neighbour entry but ignored NTF_EXT_MANAGED (Linux before 5.16).
var ErrUnsupported = errors.New("kernel does not support managed neighbour entries (NTF_EXT_MANAGED needs Linux 5.16 or later)")

var errInvalidAddr = errors.New("invalid address")

// NextHop is a neighbour: an address on a link.
type NextHop struct {
	Addr      netip.Addr
	LinkIndex int
}

func (h NextHop) String() string { return fmt.Sprintf("%s dev #%d", h.Addr, h.LinkIndex) }

func (h NextHop) compare(o NextHop) int {
	if c := h.Addr.Compare(o.Addr); c != 0 {
		return c
	}
	return h.LinkIndex - o.LinkIndex
}

// Entry is the kernel's neighbour entry for a next hop.
type Entry struct {
	NextHop
	// State holds the NUD_* bits (unix.NUD_REACHABLE, ...); 0 (NUD_NONE)
	// also when there is no entry at all (Exists false).
	State   uint16
	Exists  bool
	Managed bool  // NTF_EXT_MANAGED is set
	Proto   uint8 // NDA_PROTOCOL; Protocol on the Manager's entries
	MAC     net.HardwareAddr
}

// nudValid are the states in which bpf_fib_lookup uses an entry (the
// kernel's NUD_VALID).
const nudValid = unix.NUD_PERMANENT | unix.NUD_NOARP | unix.NUD_REACHABLE |
	unix.NUD_PROBE | unix.NUD_STALE | unix.NUD_DELAY

// Resolved reports whether the entry holds a link-layer address the
// datapath can use.
func (e Entry) Resolved() bool { return e.Exists && e.State&nudValid != 0 }

// static reports an administrator's entry, which the Manager never touches.
func (e Entry) static() bool { return e.State&(unix.NUD_PERMANENT|unix.NUD_NOARP) != 0 }

// ours reports an entry the Manager created (now or before a restart).
func (e Entry) ours() bool { return e.Managed && e.Proto == Protocol && !e.static() }

// kernel is the part of rtnetlink Sync uses; the real one is netlinkKernel.
type kernel interface {
	// routeGet returns the next hop the kernel would use towards dst, or
	// ok=false when none is needed (a local address, a link without
	// ARP/ND).
	routeGet(dst netip.Addr) (h NextHop, ok bool, err error)
	// routes lists the IPv4 routes of every table.
	routes() ([]route, error)
	// rules lists the IPv4 policy routing rules.
	rules() ([]rule, error)
	// neighbours lists the neighbour table (all families).
	neighbours() ([]Entry, error)
	// setManaged makes h a managed entry marked with Protocol: created
	// when create is set (failing if it exists), otherwise the existing
	// entry is updated in place.
	setManaged(h NextHop, create bool) error
	// remove deletes h's entry.
	remove(h NextHop) error
}

// Manager keeps managed neighbour entries for the datapath's next hops. It
// is safe for concurrent use, but every call must come from a thread in the
// same network namespace.
type Manager struct {
	log *zap.Logger
	k   kernel

	mu sync.Mutex
	// owned are the entries this Manager created or upgraded (or adopted
	// from a previous run by their Protocol mark).
	owned   map[NextHop]struct{}
	adopted bool
	// last are the next hops the last Sync wanted, sorted.
	last []NextHop

	// cache holds the resolutions of the last Sync's IPv4 targets (never
	// failures); it is valid while the fingerprint of the routing
	// configuration is cacheFP, and nil when there is none.
	cache   map[uint32]*resolution // by v4key
	cacheFP uint64
	seed    maphash.Seed
	gen     uint64 // counts Syncs
	// lastTargets are the last Sync's targets when all of them resolved
	// (then lastHops are their distinct next hops), or nil.
	lastTargets []netip.Addr
	lastHops    []NextHop
	// lookups counts routeGet calls (for tests and benchmarks).
	lookups int
}

// resolution is a routeGet answer.
type resolution struct {
	h  NextHop
	ok bool
	// gen is the last Sync that had the address as a target.
	gen uint64
}

// New returns a Manager working in the calling thread's network namespace.
func New(log *zap.Logger) *Manager { return newManager(log, &netlinkKernel{}) }

func newManager(log *zap.Logger, k kernel) *Manager {
	if log == nil {
		log = zap.NewNop()
	}
	return &Manager{log: log, k: k, owned: make(map[NextHop]struct{}), seed: maphash.MakeSeed()}
}

// Sync makes sure every next hop towards targets, and every IPv4 default
// gateway, has a usable neighbour entry that the kernel keeps resolved, and
// deletes the entries it owns that are no longer needed. Resolution of the
// entries it creates is asynchronous: see Entries. A target that cannot be
// resolved is reported (wrapped as "resolve next hop for <ip>: ...") and the
// others are still handled; all errors are joined.
func (m *Manager) Sync(ctx context.Context, targets []netip.Addr) error {
	m.mu.Lock()
	defer m.mu.Unlock()

	rts, err := m.k.routes()
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	var errs []error
	want := make(map[NextHop]bool)
	// bpf_fib_lookup hashes a flow onto any nexthop of an ECMP route:
	// ecmp maps each nexthop of one to all of them.
	ecmp := make(map[NextHop][]NextHop)
	for i := range rts {
		r := &rts[i]
		if r.Table != unix.RT_TABLE_MAIN || r.Type != unix.RTN_UNICAST {
			continue
		}
		hs := r.nextHops()
		if r.Dst.Bits() == 0 {
			for _, h := range hs {
				want[h] = true
			}
		}
		if len(hs) > 1 {
			for _, h := range hs {
				ecmp[h] = append(ecmp[h], hs...)
			}
		}
	}

	res, err := m.resolve(ctx, targets, rts)
	if err != nil {
		return err
	}
	resolveFailed := false
	for _, r := range res {
		if r.err != nil {
			resolveFailed = true
			errs = append(errs, fmt.Errorf("resolve next hop for %s: %w", r.addr, r.err))
			continue
		}
		if !r.ok {
			continue
		}
		want[r.h] = true
		for _, o := range ecmp[r.h] {
			want[o] = true
		}
	}

	ents, err := m.k.neighbours()
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list neighbours: %w", err))...)
	}
	have := make(map[NextHop]Entry, len(ents))
	for _, e := range ents {
		have[e.NextHop] = e
		if !m.adopted && e.ours() {
			m.owned[e.NextHop] = struct{}{}
		}
	}
	m.adopted = true

	wanted := make([]NextHop, 0, len(want))
	for h := range want {
		wanted = append(wanted, h)
	}
	slices.SortFunc(wanted, NextHop.compare)
	m.last = wanted

	var created []NextHop
	for _, h := range wanted {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		e, exists := have[h]
		switch {
		case exists && e.static():
			// An administrator's entry: usable, and not ours to change.
			delete(m.owned, h)
			continue
		case exists && e.Managed:
			if e.Proto == Protocol {
				m.owned[h] = struct{}{}
			}
			continue
		}
		err := m.k.setManaged(h, !exists)
		if err != nil && (errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOENT)) {
			// The entry appeared or vanished since the dump: try the
			// other way once.
			err = m.k.setManaged(h, exists)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("add managed neighbour %s: %w", h, err))
			continue
		}
		m.owned[h] = struct{}{}
		created = append(created, h)
		if exists {
			m.log.Info("made neighbour entry managed", zap.Stringer("nextHop", h.Addr),
				zap.Int("link", h.LinkIndex), zap.String("state", StateString(e.State)))
		} else {
			m.log.Info("added managed neighbour entry", zap.Stringer("nextHop", h.Addr), zap.Int("link", h.LinkIndex))
		}
	}
	if len(created) > 0 {
		if err := m.verifyManaged(created); err != nil {
			errs = append(errs, err)
		}
	}

	if !resolveFailed {
		for h := range m.owned {
			if want[h] {
				continue
			}
			e, exists := have[h]
			if !exists || !e.ours() {
				// Gone, or replaced by someone else's entry.
				delete(m.owned, h)
				continue
			}
			if err := ctx.Err(); err != nil {
				return errors.Join(append(errs, err)...)
			}
			if err := m.k.remove(h); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("delete managed neighbour %s: %w", h, err))
				continue
			}
			delete(m.owned, h)
			m.log.Info("deleted managed neighbour entry", zap.Stringer("nextHop", h.Addr), zap.Int("link", h.LinkIndex))
		}
	}
	return errors.Join(errs...)
}

// v4key is the cache's key for an IPv4 address.
func v4key(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// result is the resolution of one distinct target.
type result struct {
	addr netip.Addr
	h    NextHop
	ok   bool
	err  error
}

// resolve finds the next hop of every distinct target, in the order of
// their first appearance: from the cache while the routing configuration
// is unchanged, otherwise with route lookups, one per group of targets
// that provably share the answer (see planLookups) and one per other
// target. IPv4 answers are cached, failures never. It fails only when ctx
// is done.
func (m *Manager) resolve(ctx context.Context, targets []netip.Addr, rts []route) ([]result, error) {
	rules, err := m.k.rules()
	// Without the rules, or with nexthop objects (which can change while
	// the routes stay the same), nothing is provably unchanged: resolve
	// every target, as without a cache.
	cacheable := err == nil
	if err != nil {
		m.log.Debug("cannot list routing rules: not caching next hops", zap.Error(err))
	}
	for i := range rts {
		if rts[i].NHID != 0 {
			cacheable = false
			break
		}
	}
	if cacheable {
		fp := fingerprint(m.seed, rts, rules)
		if m.cache != nil && fp == m.cacheFP && m.lastTargets != nil && slices.Equal(targets, m.lastTargets) {
			// Nothing changed at all.
			if len(targets) > 0 {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
			}
			res := make([]result, len(m.lastHops))
			for i, h := range m.lastHops {
				res[i] = result{addr: h.Addr, h: h, ok: true}
			}
			return res, nil
		}
		if m.cache == nil || fp != m.cacheFP {
			m.cache = make(map[uint32]*resolution, len(targets))
			m.cacheFP = fp
		}
	} else {
		m.cache = nil
	}
	m.lastTargets, m.lastHops = nil, nil

	m.gen++
	gen := m.gen
	res := make([]result, 0, len(targets))
	// The targets not in the cache, deduplicated.
	expect := max(len(targets)-len(m.cache), 0)
	missed4 := make(map[uint32]struct{}, expect)
	missed := make(map[netip.Addr]struct{})
	miss := make([]netip.Addr, 0, expect)
	missAt := make([]int, 0, expect) // index in res of each miss
	valid, hits := 0, 0
	for _, ip := range targets {
		ip = ip.Unmap()
		if ip.Is4() {
			k := v4key(ip)
			if c := m.cache[k]; c != nil {
				if c.gen != gen { // else a duplicate
					c.gen = gen
					hits++
					valid++
					res = append(res, result{addr: ip, h: c.h, ok: c.ok})
				}
				continue
			}
			n := len(missed4)
			if missed4[k] = struct{}{}; len(missed4) == n {
				continue // a duplicate
			}
		} else {
			n := len(missed)
			if missed[ip] = struct{}{}; len(missed) == n {
				continue
			}
		}
		r := result{addr: ip}
		if !ip.IsValid() {
			r.err = errInvalidAddr
		} else {
			valid++
			miss = append(miss, ip)
			missAt = append(missAt, len(res))
		}
		res = append(res, r)
	}
	if hits < len(m.cache) {
		for a, c := range m.cache {
			if c.gen != gen {
				delete(m.cache, a) // no longer a target
			}
		}
	}
	if valid > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}

	lookups := 0
	lookup := func(i int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		r := &res[missAt[i]]
		lookups++
		r.h, r.ok, r.err = m.k.routeGet(r.addr)
		if r.err == nil && m.cache != nil && r.addr.Is4() {
			m.cache[v4key(r.addr)] = &resolution{h: r.h, ok: r.ok, gen: gen}
		}
		return nil
	}
	defer func() { m.lookups += lookups }()
	var groups []lookupGroup
	var solo []int
	if m.cache != nil {
		groups, solo = planLookups(miss, rts, rules)
	} else {
		solo = make([]int, len(miss))
		for i := range solo {
			solo[i] = i
		}
	}
	shared := 0
	var slab []resolution // the group members' cache entries, in one allocation
	if len(groups) > 0 {
		slab = make([]resolution, 0, len(miss)-len(solo))
	}
	for _, g := range groups {
		if err := lookup(g.Members[0]); err != nil {
			return nil, err
		}
		r0 := res[missAt[g.Members[0]]]
		rest := g.Members[1:]
		if r0.err == nil {
			onLink, consistent := sharedAnswer(&rts[g.Route], r0.addr, r0.h, r0.ok)
			if consistent {
				for _, i := range rest {
					r := &res[missAt[i]]
					r.ok = r0.ok
					if r.ok {
						r.h = r0.h
						if onLink {
							r.h.Addr = r.addr
						}
					}
					slab = append(slab, resolution{h: r.h, ok: r.ok, gen: gen})
					m.cache[v4key(r.addr)] = &slab[len(slab)-1]
				}
				shared += len(rest)
				continue
			}
			m.log.Debug("route lookup does not match its route: resolving each address",
				zap.Stringer("addr", r0.addr), zap.Stringer("route", rts[g.Route].Dst), zap.Stringer("nextHop", r0.h))
		}
		solo = append(solo, rest...)
	}
	for _, i := range solo {
		if err := lookup(i); err != nil {
			return nil, err
		}
	}
	if m.cache != nil {
		hops := make(map[NextHop]bool)
		for _, r := range res {
			if r.err != nil || !r.addr.Is4() { // IPv6 is not cached
				hops = nil
				break
			}
			if r.ok && !hops[r.h] {
				hops[r.h] = true
				m.lastHops = append(m.lastHops, r.h)
			}
		}
		if hops != nil {
			m.lastTargets = append(make([]netip.Addr, 0, len(targets)), targets...)
		} else {
			m.lastHops = nil
		}
	}
	if len(miss) > 0 {
		m.log.Debug("resolved next hops", zap.Int("targets", valid), zap.Int("cached", valid-len(miss)),
			zap.Int("lookups", lookups), zap.Int("shared", shared))
	}
	return res, nil
}

// verifyManaged checks that the kernel honoured NTF_EXT_MANAGED on the
// entries just written; an older kernel silently ignores the attribute.
func (m *Manager) verifyManaged(hs []NextHop) error {
	ents, err := m.k.neighbours()
	if err != nil {
		return fmt.Errorf("list neighbours: %w", err)
	}
	have := make(map[NextHop]Entry, len(ents))
	for _, e := range ents {
		have[e.NextHop] = e
	}
	for _, h := range hs {
		if e, ok := have[h]; ok && !e.Managed {
			return fmt.Errorf("add managed neighbour %s: %w", h, ErrUnsupported)
		}
	}
	return nil
}

// Entries returns the kernel's entries for the next hops the last Sync
// wanted, sorted (Exists false for a missing one). Call it from the
// Manager's namespace.
func (m *Manager) Entries() ([]Entry, error) {
	m.mu.Lock()
	last := slices.Clone(m.last)
	m.mu.Unlock()
	ents, err := m.k.neighbours()
	if err != nil {
		return nil, fmt.Errorf("list neighbours: %w", err)
	}
	have := make(map[NextHop]Entry, len(ents))
	for _, e := range ents {
		have[e.NextHop] = e
	}
	out := make([]Entry, len(last))
	for i, h := range last {
		if e, ok := have[h]; ok {
			out[i] = e
		} else {
			out[i] = Entry{NextHop: h}
		}
	}
	return out, nil
}

// Owned returns the next hops whose entries the Manager owns, sorted.
func (m *Manager) Owned() []NextHop {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]NextHop, 0, len(m.owned))
	for h := range m.owned {
		out = append(out, h)
	}
	slices.SortFunc(out, NextHop.compare)
	return out
}

// StateString names NUD state bits as `ip neigh` does ("REACHABLE",
// "STALE|PROBE", "NONE").
func StateString(s uint16) string {
	names := []struct {
		bit  uint16
		name string
	}{
		{unix.NUD_INCOMPLETE, "INCOMPLETE"}, {unix.NUD_REACHABLE, "REACHABLE"},
		{unix.NUD_STALE, "STALE"}, {unix.NUD_DELAY, "DELAY"}, {unix.NUD_PROBE, "PROBE"},
		{unix.NUD_FAILED, "FAILED"}, {unix.NUD_NOARP, "NOARP"}, {unix.NUD_PERMANENT, "PERMANENT"},
	}
	out := ""
	for _, n := range names {
		if s&n.bit != 0 {
			if out != "" {
				out += "|"
			}
			out += n.name
			s &^= n.bit
		}
	}
	if s != 0 {
		if out != "" {
			out += "|"
		}
		out += fmt.Sprintf("0x%x", s)
	}
	if out == "" {
		return "NONE"
	}
	return out
}

func (e Entry) String() string {
	if !e.Exists {
		return e.NextHop.String() + " (no entry)"
	}
	s := fmt.Sprintf("%s lladdr %s %s", e.NextHop, e.MAC, StateString(e.State))
	if e.Managed {
		s += " managed"
	}
	if e.Proto != 0 {
		s += fmt.Sprintf(" proto %d", e.Proto)
	}
	return s
}
