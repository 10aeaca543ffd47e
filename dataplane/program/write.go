package program

import (
	"errors"
	"fmt"
	"sync"

	"github.com/straitlb/strait/dataplane/lbmap"
	"github.com/straitlb/strait/dataplane/maglev"
	"github.com/straitlb/strait/model"
)

type kvs[K comparable, V comparable] struct {
	keys []K
	vals []V
}

// diff returns the entries of want that have differs from, the number
// already right, and the keys of have that want lacks.
func diff[K comparable, V comparable](have, want map[K]V) (puts kvs[K, V], same int, dels []K) {
	for k, v := range want {
		if hv, ok := have[k]; ok && hv == v {
			same++
			continue
		}
		puts.keys = append(puts.keys, k)
		puts.vals = append(puts.vals, v)
	}
	for k := range have {
		if _, ok := want[k]; !ok {
			dels = append(dels, k)
		}
	}
	return puts, same, dels
}

// changes returns the entries of want that differ from have and the keys
// of have that want lacks: among keys only, or every key when full.
func changes[K comparable, V comparable](full bool, keys map[K]struct{}, have, want map[K]V) (kvs[K, V], []K) {
	if full {
		puts, _, dels := diff(have, want)
		return puts, dels
	}
	var puts kvs[K, V]
	var dels []K
	for k := range keys {
		wv, inWant := want[k]
		hv, inHave := have[k]
		switch {
		case inWant && (!inHave || hv != wv):
			puts.keys = append(puts.keys, k)
			puts.vals = append(puts.vals, wv)
		case !inWant && inHave:
			dels = append(dels, k)
		}
	}
	return puts, dels
}

// writer makes the maps (p.cur) hold w, looking at the keys in d or, when
// full, at every key; it tracks in p.cur what was written.
type writer struct {
	p      *Programmer
	w      *want
	d      *dirty
	full   bool
	res    *Result
	failed map[uint32]bool // service ids whose writes failed this round
	errs   []error
	// stale are the memberships of UDP services removed: their conntrack
	// entries are flushed.
	stale map[lbmap.SvcBackendKey]bool
	// jobs are the rings to build; ringIDs the services whose ring the
	// write looked at.
	jobs    []ringJob
	ringIDs map[uint32]struct{}
}

func (w *writer) fail(id uint32, err error) {
	if w.failed == nil {
		w.failed = make(map[uint32]bool)
	}
	w.failed[id] = true
	w.res.Failed[w.w.owner[id]] = err
}

// put writes entries in one batch; when the batch fails it retries them
// one by one so the failure lands on the services that own them.
func put[K comparable, V comparable](w *writer, kv lbmap.KV[K, V], p kvs[K, V], cur map[K]V,
	skip func(K, V) bool, owners func(K, V) []uint32) {
	var keys []K
	var vals []V
	for i, k := range p.keys {
		if skip != nil && skip(k, p.vals[i]) {
			continue
		}
		keys = append(keys, k)
		vals = append(vals, p.vals[i])
	}
	if len(keys) == 0 {
		return
	}
	if err := kv.Put(keys, vals); err == nil {
		for i, k := range keys {
			cur[k] = vals[i]
		}
		w.res.Writes += len(keys)
		return
	}
	for i, k := range keys {
		if err := kv.Put(keys[i:i+1], vals[i:i+1]); err != nil {
			for _, id := range owners(k, vals[i]) {
				w.fail(id, err)
			}
			w.errs = append(w.errs, err)
			continue
		}
		cur[k] = vals[i]
		w.res.Writes++
	}
}

func del[K comparable, V comparable](w *writer, kv lbmap.KV[K, V], keys []K, cur map[K]V) {
	if len(keys) == 0 {
		return
	}
	if err := kv.Delete(keys); err != nil {
		w.errs = append(w.errs, err)
		return
	}
	for _, k := range keys {
		delete(cur, k)
	}
	w.res.Writes += len(keys)
}

func (w *writer) skipFailed(id uint32) bool { return w.failed[id] }

func (w *writer) write() error {
	if w.d == nil {
		w.d = newDirty() // unused: a full write
	}
	p, d, cur := w.p, w.d, w.p.cur
	want := w.w
	one := func(id uint32) []uint32 { return []uint32{id} }

	// Make: backends and memberships, rings and services, then the
	// frontends that lead to them.
	bePuts, beDels := changes(w.full, d.backends, cur.Backends, want.backends)
	put(w, p.maps.Backends, bePuts, cur.Backends, nil, func(id uint32, _ lbmap.BackendVal) []uint32 {
		var owners []uint32
		for k := range want.svcBackends {
			if k.BackendId == id {
				owners = append(owners, k.SvcId)
			}
		}
		return owners
	})
	mPuts, mDels := changes(w.full, d.svcBackends, cur.SvcBackends, want.svcBackends)
	put(w, p.maps.SvcBackends, mPuts, cur.SvcBackends,
		func(k lbmap.SvcBackendKey, _ uint8) bool { return w.skipFailed(k.SvcId) },
		func(k lbmap.SvcBackendKey, _ uint8) []uint32 { return one(k.SvcId) })
	w.writeRings()
	sPuts, sDels := changes(w.full, d.services, cur.Services, want.services)
	put(w, p.maps.Services, sPuts, cur.Services,
		func(id uint32, _ lbmap.ServiceVal) bool { return w.skipFailed(id) },
		func(id uint32, _ lbmap.ServiceVal) []uint32 { return one(id) })
	rPuts, rDels := changes(w.full, d.srcRanges, cur.SrcRanges, want.srcRanges)
	srcOwner := func(k lbmap.SrcRangeKey, _ uint8) []uint32 { id, _ := lbmap.SrcRangeOf(k); return one(id) }
	put(w, p.maps.SrcRanges, rPuts, cur.SrcRanges,
		func(k lbmap.SrcRangeKey, v uint8) bool { return w.skipFailed(srcOwner(k, v)[0]) }, srcOwner)
	fPuts, fDels := changes(w.full, d.frontends, cur.Frontends, want.frontends)
	put(w, p.maps.Frontends, fPuts, cur.Frontends,
		func(_ lbmap.FrontendKey, v lbmap.FrontendVal) bool { return w.skipFailed(v.SvcId) },
		func(_ lbmap.FrontendKey, v lbmap.FrontendVal) []uint32 { return one(v.SvcId) })

	// Break: nothing that a kept frontend still leads to is removed. A
	// service that failed keeps what it had.
	keepIDs := w.keptIDs()
	fDels = filter(fDels, func(k lbmap.FrontendKey) bool { return !keepIDs[cur.Frontends[k].SvcId] })
	del(w, p.maps.Frontends, fDels, cur.Frontends)
	rDels = filter(rDels, func(k lbmap.SrcRangeKey) bool { id, _ := lbmap.SrcRangeOf(k); return !keepIDs[id] })
	del(w, p.maps.SrcRanges, rDels, cur.SrcRanges)
	sDels = filter(sDels, func(id uint32) bool { return !keepIDs[id] })
	del(w, p.maps.Services, sDels, cur.Services)
	var ringDels []uint32
	for id := range w.ringIDs {
		if _, inCur := p.ringSums[id]; !inCur {
			continue
		}
		if _, ok := want.ringSums[id]; !ok && !keepIDs[id] {
			ringDels = append(ringDels, id)
		}
	}
	if err := p.maps.Rings.Delete(ringDels); err != nil {
		w.errs = append(w.errs, err)
	} else {
		for _, id := range ringDels {
			delete(p.ringSums, id)
		}
		w.res.Writes += len(ringDels)
	}
	mDels = filter(mDels, func(k lbmap.SvcBackendKey) bool { return !keepIDs[k.SvcId] })
	udp := d.udp
	if w.full {
		udp = udpServices(cur, want)
	}
	nerr := len(w.errs)
	del(w, p.maps.SvcBackends, mDels, cur.SvcBackends)
	if len(w.errs) == nerr {
		for _, k := range mDels {
			if udp[k.SvcId] {
				if w.stale == nil {
					w.stale = make(map[lbmap.SvcBackendKey]bool)
				}
				w.stale[k] = true
			}
		}
	}
	// A backend stays while any service still lists it: rings only name
	// members, and members go no sooner than their service's ring. After
	// a clean incremental round no membership outside want remains.
	if w.full || len(keepIDs) > 0 || len(w.errs) > 0 {
		inRing := make(map[uint32]bool, len(cur.SvcBackends))
		for k := range cur.SvcBackends {
			inRing[k.BackendId] = true
		}
		beDels = filter(beDels, func(id uint32) bool { return !inRing[id] })
	}
	del(w, p.maps.Backends, beDels, cur.Backends)

	if len(w.errs) > 0 {
		return fmt.Errorf("%w: %w", errPartial, errors.Join(w.errs...))
	}
	return nil
}

// writeRings builds and writes the rings that changed: those of w.jobs,
// and any whose checksum differs from the maps'. Each ring is built as it
// is written and dropped after, so a cold start never holds 10,000 rings.
func (w *writer) writeRings() {
	p, want := w.p, w.w
	w.ringIDs = w.d.rings
	if w.full {
		w.ringIDs = make(map[uint32]struct{}, len(want.ringSums)+len(p.ringSums))
		for id := range want.ringSums {
			w.ringIDs[id] = struct{}{}
		}
		for id := range p.ringSums {
			w.ringIDs[id] = struct{}{}
		}
	}
	jobs := make(map[uint32]*ringJob, len(w.jobs))
	for i := range w.jobs {
		jobs[w.jobs[i].e.id] = &w.jobs[i]
		w.ringIDs[w.jobs[i].e.id] = struct{}{}
	}
	var ids []uint32
	for id := range w.ringIDs {
		if w.skipFailed(id) {
			continue
		}
		if _, ok := jobs[id]; ok {
			ids = append(ids, id)
			continue
		}
		sum, ok := want.ringSums[id]
		if !ok || p.ringSums[id] == sum {
			continue
		}
		// Reused from a previous round, but the maps hold something
		// else: build it again.
		e := p.applied[want.owner[id]]
		if e == nil || e.id != id {
			err := fmt.Errorf("ring of service %d: no entries", id)
			w.fail(id, err)
			w.errs = append(w.errs, err)
			continue
		}
		jobs[id] = &ringJob{e: e, keys: e.memberKeys, size: e.val.RingSize}
		ids = append(ids, id)
	}
	var pool sync.Pool
	errs := p.maps.Rings.SetFrom(ids, func(id uint32) []uint32 {
		j := jobs[id]
		b, _ := pool.Get().(*maglev.Builder)
		if b == nil {
			b = new(maglev.Builder)
		}
		ring := make([]uint32, j.size)
		b.Fill(ring, j.keys, j.e.members)
		pool.Put(b)
		j.e.ringSum = ringSum(ring)
		if j.e.ringSum == p.ringSums[id] {
			return nil // the maps hold it already
		}
		return ring
	})
	for _, id := range ids {
		sum := jobs[id].e.ringSum
		want.ringSums[id] = sum
		if err, failed := errs[id]; failed {
			w.fail(id, err)
			w.errs = append(w.errs, err)
			continue
		}
		if p.ringSums[id] != sum {
			p.ringSums[id] = sum
			w.res.Writes++
		}
	}
}

// udpServices are the ids of services with a UDP frontend, in the maps or
// desired.
func udpServices(cur *lbmap.Snapshot, w *want) map[uint32]bool {
	out := make(map[uint32]bool)
	for k, v := range cur.Frontends {
		if k.Proto == uint8(model.UDP) {
			out[v.SvcId] = true
		}
	}
	for k, v := range w.frontends {
		if k.Proto == uint8(model.UDP) {
			out[v.SvcId] = true
		}
	}
	return out
}

// keptIDs are the ids of services that failed, this round or while
// computing the desired state, whose entries in the maps are not wanted
// but stay.
func (w *writer) keptIDs() map[uint32]bool {
	keep := make(map[uint32]bool, len(w.failed))
	for id := range w.failed {
		keep[id] = true
	}
	for name := range w.res.Failed {
		if _, restored := w.p.applied[name]; restored {
			continue // its previous entries are wanted again
		}
		if id, ok := w.p.svcIDs.Lookup(name); ok {
			keep[id] = true
		}
	}
	return keep
}

func filter[K any](ks []K, keep func(K) bool) []K {
	out := ks[:0]
	for _, k := range ks {
		if keep(k) {
			out = append(out, k)
		}
	}
	return out
}
