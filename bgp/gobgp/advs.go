package gobgp

import (
	"net/netip"
	"slices"
	"strconv"

	"github.com/straitlb/strait/bgp"
)

// SetAdvertisements gets the complete desired set on every call, and a
// change is usually one prefix among thousands: it compares the set with
// the applied one in a single pass (both sorted by prefix), which costs a
// few nanoseconds per unchanged prefix, and does the rest per changed
// prefix only.

// entry is one applied advertisement.
type entry struct {
	prefix netip.Prefix
	attrs  *attrs // shared by the entries with the same attributes
}

// attrs are the attributes of an advertisement, canonical. They are never
// modified.
type attrs struct {
	communities []uint32
	large       []bgp.LargeCommunity
	localPref   *uint32
	peers       []string
}

// adv returns the advertisement; its slices must not be modified.
func (e *entry) adv() bgp.Advertisement {
	return bgp.Advertisement{
		Prefix:           e.prefix,
		Communities:      e.attrs.communities,
		LargeCommunities: e.attrs.large,
		LocalPref:        e.attrs.localPref,
		Peers:            e.attrs.peers,
	}
}

// maxInterned bounds Speaker.attrs: past it, the attributes are interned
// anew (entries keep theirs: sharing saves memory and cache misses, and
// nothing depends on it).
const maxInterned = 4096

// entryOf returns the entry of a canonical advertisement.
func (s *Speaker) entryOf(a bgp.Advertisement) entry {
	key := attrsKey(a)
	at := s.attrs[key]
	if at == nil {
		if len(s.attrs) >= maxInterned {
			clear(s.attrs)
		}
		at = &attrs{communities: a.Communities, large: a.LargeCommunities, localPref: a.LocalPref, peers: a.Peers}
		s.attrs[key] = at
	}
	return entry{prefix: a.Prefix, attrs: at}
}

// attrsKey encodes the attributes of a canonical advertisement.
func attrsKey(a bgp.Advertisement) string {
	b := make([]byte, 0, 64)
	for _, c := range a.Communities {
		b = strconv.AppendUint(append(b, 'c'), uint64(c), 10)
	}
	for _, c := range a.LargeCommunities {
		b = strconv.AppendUint(append(b, 'l'), uint64(c.GlobalAdmin), 10)
		b = strconv.AppendUint(append(b, ':'), uint64(c.LocalData1), 10)
		b = strconv.AppendUint(append(b, ':'), uint64(c.LocalData2), 10)
	}
	if a.LocalPref != nil {
		b = strconv.AppendUint(append(b, 'p'), uint64(*a.LocalPref), 10)
	}
	for _, p := range a.Peers {
		b = strconv.AppendQuote(append(b, 'n'), p)
	}
	return string(b)
}

// opKind is what SetAdvertisements does with one prefix.
type opKind uint8

const (
	opWithdraw opKind = iota // withdraw old
	opReplace                // withdraw old, then announce adv
	opAnnounce               // announce adv (new, or replacing old)
	opRegroup                // only peers gain it: record adv, resend to the gaining peers
)

// op is a change to one prefix.
type op struct {
	kind opKind
	// at is old's index in Speaker.advs (hasOld), or where adv goes.
	at     int
	hasOld bool
	adv    bgp.Advertisement // canonical
	// Outcome.
	withdrawn, announced, regrouped bool
}

// diff is what SetAdvertisements must do: ops are sorted by prefix.
type diff struct {
	ops    []op
	resend map[netip.Addr]bool // peers that gain an unchanged path
	// samePolicy: the advertisements that name peers are s.policyAdvs.
	samePolicy bool
}

// diffLocked status.
const (
	diffOK = iota
	diffUnsorted
	diffInvalid
)

// diffLocked compares advs, sorted by prefix, with s.advs in one pass. It
// reports diffUnsorted if advs is not sorted, diffInvalid if
// bgp.ValidateAdvertisements(advs, peers) would fail.
func (s *Speaker) diffLocked(advs []bgp.Advertisement, peers []bgp.Peer) (diff, int) {
	old := s.advs
	d := diff{samePolicy: true}
	pol := s.policyAdvs
	// The walk keeps every prefix of advs seen so far below old[j]: one
	// equal to old[j] is in order and not a duplicate.
	j := 0
	for i := range advs {
		a := &advs[i]
		if len(a.Peers) > 0 {
			for _, name := range a.Peers {
				if !slices.ContainsFunc(peers, func(p bgp.Peer) bool { return p.Name == name }) {
					return d, diffInvalid
				}
			}
			if d.samePolicy {
				d.samePolicy = len(pol) > 0 && pol[0].Prefix == a.Prefix &&
					bgp.Advertisement{Peers: pol[0].Peers}.Equal(bgp.Advertisement{Peers: a.Peers})
				if d.samePolicy {
					pol = pol[1:]
				}
			}
		}
		// Unchanged: in order, and valid as old[j] is.
		if j < len(old) && same(a, &old[j]) {
			j++
			continue
		}
		if !valid(a) && a.Validate() != nil {
			return d, diffInvalid
		}
		matched := j < len(old) && old[j].prefix == a.Prefix
		if !matched {
			if i > 0 {
				switch c := bgp.ComparePrefix(advs[i-1].Prefix, a.Prefix); {
				case c == 0:
					return d, diffInvalid // listed twice
				case c > 0:
					return d, diffUnsorted
				}
			}
			for j < len(old) && bgp.ComparePrefix(old[j].prefix, a.Prefix) < 0 {
				d.ops = append(d.ops, op{kind: opWithdraw, at: j, hasOld: true})
				j++
			}
			matched = j < len(old) && old[j].prefix == a.Prefix
		}
		if !matched {
			d.ops = append(d.ops, op{kind: opAnnounce, at: j, adv: a.Canonical()})
			continue
		}
		o := old[j].adv()
		j++
		if a.Equal(o) {
			continue
		}
		n := a.Canonical()
		switch {
		case slices.ContainsFunc(peers, func(p bgp.Peer) bool { return sendsTo(o, p) && !sendsTo(n, p) }):
			// A peer loses the prefix: GoBGP would not withdraw it
			// from that peer under the new policy.
			d.ops = append(d.ops, op{kind: opReplace, at: j - 1, hasOld: true, adv: n})
		case sameAttributes(n, o):
			// Only peers gain it. GoBGP does not propagate a path
			// identical to the one it replaces: soft-reset the
			// gaining peers instead.
			d.ops = append(d.ops, op{kind: opRegroup, at: j - 1, hasOld: true, adv: n})
			for _, p := range peers {
				if sendsTo(n, p) && !sendsTo(o, p) {
					if d.resend == nil {
						d.resend = make(map[netip.Addr]bool)
					}
					d.resend[p.Address] = true
				}
			}
		default:
			d.ops = append(d.ops, op{kind: opAnnounce, at: j - 1, hasOld: true, adv: n})
		}
	}
	for ; j < len(old); j++ {
		d.ops = append(d.ops, op{kind: opWithdraw, at: j, hasOld: true})
	}
	d.samePolicy = d.samePolicy && len(pol) == 0
	return d, diffOK
}

// valid is a.Validate() == nil without copying a (false may also mean
// "ask Validate").
func valid(a *bgp.Advertisement) bool {
	p := a.Prefix
	return p.IsValid() && p.Addr().Zone() == "" && !p.Addr().Is4In6() && p == p.Masked() && !slices.Contains(a.Peers, "")
}

// same is a.Equal(e.adv()), quickly when they are equal element by element.
func same(a *bgp.Advertisement, e *entry) bool {
	at := e.attrs
	if a.Prefix != e.prefix || (a.LocalPref == nil) != (at.localPref == nil) || a.LocalPref != nil && *a.LocalPref != *at.localPref {
		return false
	}
	// Element by element equal to canonical attributes: a is canonical
	// too.
	if equal(a.Communities, at.communities) && equal(a.LargeCommunities, at.large) && equal(a.Peers, at.peers) {
		return true
	}
	return a.Equal(e.adv())
}

// equal is slices.Equal, quicker for short slices and shared arrays.
func equal[T comparable](x, y []T) bool {
	if len(x) != len(y) {
		return false
	}
	if len(x) == 0 || &x[0] == &y[0] {
		return true
	}
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

// commitLocked makes s.advs what the ops left: each op's prefix has the old
// advertisement, the new one or none, as far as the calls made succeeded.
func (s *Speaker) commitLocked(ops []op) {
	if len(ops) == 0 {
		return
	}
	old := s.advs
	result := func(o *op) (entry, bool) {
		switch {
		case o.announced || o.regrouped:
			return s.entryOf(o.adv), true
		case o.hasOld && !o.withdrawn:
			return old[o.at], true
		}
		return entry{}, false
	}
	inPlace := true
	for i := range ops {
		o := &ops[i]
		inPlace = inPlace && o.hasOld == (o.announced || o.regrouped || !o.withdrawn)
	}
	if inPlace { // no prefix comes or goes
		for i := range ops {
			old[ops[i].at], _ = result(&ops[i])
		}
		return
	}
	// Copy the unchanged runs around the changed prefixes.
	out := s.spare[:0]
	j := 0
	for i := range ops {
		o := &ops[i]
		out = append(out, old[j:o.at]...)
		j = o.at
		if o.hasOld {
			j++
		}
		if e, ok := result(o); ok {
			out = append(out, e)
		}
	}
	out = append(out, old[j:]...)
	clear(out[len(out):cap(out)]) // what the spare array held beyond
	s.advs, s.spare = out, old[:0]
}
