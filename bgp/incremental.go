package bgp

import (
	"hash/maphash"
	"net/netip"
	"slices"

	"github.com/straitlb/strait/model"
)

// announcer computes a Controller's announcements (what desiredLocked
// describes) without redoing everything on every Update. Update gets the
// whole state after every dataplane sync, with no list of what changed, so
// the state is scanned every time; but the scan only compares what each
// service announces with what it announced at the previous scan (the
// services come in the same order every time): when nothing differs and the
// attributes, peers and drain are those of the previous result, that result
// is returned as is (the same slice: the Controller then skips the speaker
// without comparing anything). Otherwise the work is per changed service and
// prefix, plus one copy of the previous result with the changed prefixes
// patched in.
type announcer struct {
	// What the last scan found: each service that announces something
	// (groups, in scan order) and its records, concatenated (recs).
	groups []group
	recs   []rec
	// Where the scan under way rebuilds them once it found a difference.
	groups2 []group
	recs2   []rec
	// The aggregation lengths of each advertisement at the last scan.
	lengths []lengths
	// The prefixes of the records, with their advertisements.
	slots map[netip.Prefix]*slot
	seed  maphash.Seed

	// During a scan.
	cur     []rec   // the service's records
	act     []int32 // the advertisements that announce
	touched []*slot // slots whose records changed

	// An array no longer used for a result, to build the next one in.
	spare []Advertisement

	// The last result and what it was made of.
	valid      bool
	tmpls      []template
	draining   bool
	drainEpoch uint64
	out        []Advertisement
}

// group is what one service announced at the last scan: n records of its
// announcer's recs. The hash of the service's name only helps match
// services between scans: a service matched with another one only costs
// time.
type group struct {
	name uint64
	n    int
}

// rec is one finding of a scan: advertisement ci announces the prefix of a
// LoadBalancer address of a service (local: of Local traffic policy). The
// prefix is only worked out for the records that change.
type rec struct {
	addr  netip.Addr
	ci    int32
	local bool
}

// lengths are the aggregation lengths of an advertisement config: all the
// prefix of a record depends on besides the record.
type lengths struct{ v4, v6 int }

// slot is a prefix that some advertisement announces.
type slot struct {
	prefix netip.Prefix
	// counts has, per advertisement, how many records say it announces
	// the prefix; the first one with any wins (AnnouncementsOf).
	counts []int32
	// win is the winner in the last result (-1: none).
	win     int32
	touched bool
}

// winner returns the first advertisement with records (-1: none).
func (s *slot) winner() int32 {
	for ci, n := range s.counts {
		if n > 0 {
			return int32(ci)
		}
	}
	return -1
}

// template is what one AdvertisementConfig gives each of its prefixes.
type template struct {
	adv Advertisement // Prefix unset
	// drop: the advertisement names peers and none of them is selected
	// (RestrictToPeers drops its prefixes).
	drop bool
}

func (t template) equal(o template) bool { return t.drop == o.drop && t.adv.Equal(o.adv) }

// templates returns the attributes each advertisement config gives its
// prefixes, as announce, GracefulShutdown (when draining) and
// RestrictToPeers would.
func templates(configs []AdvertisementConfig, peers []Peer, draining bool) []template {
	out := make([]template, len(configs))
	for i := range configs {
		cfg := &configs[i]
		a := Advertisement{
			Communities:      cfg.Communities,
			LargeCommunities: cfg.LargeCommunities,
			LocalPref:        cfg.LocalPref,
			Peers:            cfg.Peers,
		}
		if draining {
			a = GracefulShutdown([]Advertisement{a.Canonical()})[0]
		}
		if r := RestrictToPeers([]Advertisement{a}, peers); len(r) == 1 {
			out[i].adv = r[0].Canonical()
		} else {
			out[i].drop = true
		}
	}
	return out
}

// resync is how far ahead the scan looks for a service among the last
// scan's: that many services can go at once before the scan takes every
// following one for new.
const resync = 8

// update returns the announcements for state: each LoadBalancer address of
// each service that should be announced, in the prefix of every active
// advertisement config that selects it; a prefix gets the template of the
// first such config; prefixes whose template is dropped, or missing from
// drainSet when draining, are left out. drainEpoch changes whenever
// drainSet does. The result is sorted by prefix and must not be modified.
func (an *announcer) update(state *model.State, configs []AdvertisementConfig, active []bool, tmpls []template,
	draining bool, drainEpoch uint64, drainSet map[netip.Prefix]bool) []Advertisement {
	if an.slots == nil {
		an.slots = make(map[netip.Prefix]*slot)
		an.seed = maphash.MakeSeed()
	}
	an.act = an.act[:0]
	for i := range configs {
		if active[i] {
			an.act = append(an.act, int32(i))
		}
	}
	// Records are compared without their prefixes: when an aggregation
	// length changes, no service matches its old records.
	oldLengths := an.lengths
	newLengths := make([]lengths, len(configs))
	for i, c := range configs {
		newLengths[i] = lengths{c.AggregationLength, c.AggregationLengthV6}
	}
	sameLengths := slices.Equal(oldLengths, newLengths)
	an.lengths = newLengths

	// Match each service that announces something with the next group
	// of the last scan: same records; or same name (changed records); or
	// the same name a little further (the groups before are gone);
	// otherwise the service is new.
	diverged := false // groups2 and recs2 hold the scan so far
	g, ro := 0, 0     // next group of the last scan, and its records
	diverge := func() {
		if !diverged {
			diverged = true
			an.groups2 = append(an.groups2[:0], an.groups[:g]...)
			an.recs2 = append(an.recs2[:0], an.recs[:ro]...)
		}
	}
	dropOld := func() {
		diverge()
		for _, r := range an.recs[ro : ro+an.groups[g].n] {
			an.count(r, oldLengths, -1)
		}
		ro += an.groups[g].n
		g++
	}
	for i := range state.Services {
		svc := &state.Services[i]
		an.cur = an.records(an.cur[:0], svc, configs)
		if len(an.cur) == 0 {
			continue
		}
		var name uint64
		if g < len(an.groups) && sameLengths && slices.Equal(an.recs[ro:ro+an.groups[g].n], an.cur) {
			name = an.groups[g].name
			ro += an.groups[g].n
			g++
		} else {
			name = maphash.Comparable(an.seed, svc.Name)
			if k := slices.IndexFunc(an.groups[g:min(g+resync, len(an.groups))], func(o group) bool { return o.name == name }); k >= 0 {
				for range k + 1 {
					dropOld() // gone, and this service's old records
				}
			}
			diverge()
			for _, r := range an.cur {
				an.count(r, newLengths, +1)
			}
		}
		if diverged {
			an.groups2 = append(an.groups2, group{name: name, n: len(an.cur)})
			an.recs2 = append(an.recs2, an.cur...)
		}
	}
	for g < len(an.groups) {
		dropOld()
	}
	if diverged {
		an.groups, an.groups2 = an.groups2, an.groups[:0]
		an.recs, an.recs2 = an.recs2, an.recs[:0]
	}

	// The prefixes whose winner changed.
	var changed []*slot
	for _, s := range an.touched {
		s.touched = false
		w := s.winner()
		if w < 0 {
			delete(an.slots, s.prefix)
		}
		if w != s.win {
			s.win = w
			changed = append(changed, s)
		}
	}
	clear(an.touched)
	an.touched = an.touched[:0]

	entry := func(s *slot) (Advertisement, bool) {
		if s.win < 0 {
			return Advertisement{}, false
		}
		t := &tmpls[s.win]
		if t.drop || (draining && !drainSet[s.prefix]) {
			return Advertisement{}, false
		}
		a := t.adv
		a.Prefix = s.prefix
		return a, true
	}
	var out []Advertisement
	if an.valid && draining == an.draining && drainEpoch == an.drainEpoch && slices.EqualFunc(tmpls, an.tmpls, template.equal) {
		if len(changed) == 0 {
			return an.out
		}
		// Patch the last result.
		slices.SortFunc(changed, func(a, b *slot) int { return ComparePrefix(a.prefix, b.prefix) })
		prev := an.out
		out = an.buffer(len(prev) + len(changed))
		for _, s := range changed {
			k, found := slices.BinarySearchFunc(prev, s.prefix, func(a Advertisement, p netip.Prefix) int { return ComparePrefix(a.Prefix, p) })
			out = append(out, prev[:k]...)
			if found {
				k++
			}
			prev = prev[k:]
			if a, ok := entry(s); ok {
				out = append(out, a)
			}
		}
		out = append(out, prev...)
	} else {
		// Everything again, in prefix order.
		all := make([]*slot, 0, len(an.slots))
		for _, s := range an.slots {
			all = append(all, s)
		}
		slices.SortFunc(all, func(a, b *slot) int { return ComparePrefix(a.prefix, b.prefix) })
		out = an.buffer(len(all))
		for _, s := range all {
			if a, ok := entry(s); ok {
				out = append(out, a)
			}
		}
	}
	clear(out[len(out):cap(out)]) // what a recycled array held beyond
	an.valid, an.tmpls, an.draining, an.drainEpoch, an.out = true, tmpls, draining, drainEpoch, out
	return out
}

// buffer returns an empty slice to build a result of about n in.
func (an *announcer) buffer(n int) []Advertisement {
	b := an.spare
	an.spare = nil
	if cap(b) < n {
		return make([]Advertisement, 0, n+n/8)
	}
	return b[:0]
}

// recycle takes back a result no one uses any more.
func (an *announcer) recycle(advs []Advertisement) {
	if cap(advs) > 0 && !sameArray(advs, an.out) {
		an.spare = advs
	}
}

// records appends what svc announces: for each LoadBalancer address, in
// order, each active advertisement that selects it, with its prefix.
func (an *announcer) records(out []rec, svc *model.Service, configs []AdvertisementConfig) []rec {
	if len(an.act) == 0 || !shouldAnnounce(svc) {
		return out
	}
	local := externalPolicy(svc) == PolicyLocal
	for k := range svc.Frontends {
		f := &svc.Frontends[k]
		if f.Kind != model.LoadBalancer || !f.Addr.IsValid() {
			continue
		}
		for _, ci := range an.act {
			cfg := &configs[ci]
			if cfg.Selects != nil && !cfg.Selects(f.Addr) {
				continue
			}
			out = append(out, rec{f.Addr, ci, local})
		}
	}
	return out
}

// count adds d records r, made with aggregation lengths ls.
func (an *announcer) count(r rec, ls []lengths, d int32) {
	c := AdvertisementConfig{AggregationLength: ls[r.ci].v4, AggregationLengthV6: ls[r.ci].v6}
	p := c.prefixFor(r.addr, r.local)
	s := an.slots[p]
	if s == nil {
		s = &slot{prefix: p, win: -1}
		an.slots[p] = s
	}
	if int(r.ci) >= len(s.counts) {
		s.counts = append(s.counts, make([]int32, int(r.ci)+1-len(s.counts))...)
	}
	s.counts[r.ci] += d
	if !s.touched {
		s.touched = true
		an.touched = append(an.touched, s)
	}
}
