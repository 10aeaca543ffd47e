package program

import (
	"errors"
	"fmt"
	"slices"

	"github.com/straitlb/strait/dataplane/lbmap"
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

// writer applies one desired state, tracking in p.cur what was written.
type writer struct {
	p      *Programmer
	d      *desired
	res    *Result
	failed map[uint32]bool // service ids whose writes failed this round
	errs   []error
}

func (w *writer) fail(id uint32, err error) {
	if w.failed == nil {
		w.failed = make(map[uint32]bool)
	}
	w.failed[id] = true
	w.res.Failed[w.d.owner[id]] = err
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
	p, d, cur := w.p, w.d, w.p.cur
	one := func(id uint32) []uint32 { return []uint32{id} }

	// Make: backends and memberships, rings and services, then the
	// frontends that lead to them.
	bePuts, _, beDels := diff(cur.Backends, d.backends)
	put(w, p.maps.Backends, bePuts, cur.Backends, nil, func(id uint32, _ lbmap.BackendVal) []uint32 {
		var owners []uint32
		for k := range d.svcBackends {
			if k.BackendId == id {
				owners = append(owners, k.SvcId)
			}
		}
		return owners
	})
	mPuts, _, mDels := diff(cur.SvcBackends, d.svcBackends)
	put(w, p.maps.SvcBackends, mPuts, cur.SvcBackends,
		func(k lbmap.SvcBackendKey, _ uint8) bool { return w.skipFailed(k.SvcId) },
		func(k lbmap.SvcBackendKey, _ uint8) []uint32 { return one(k.SvcId) })
	changed := make(map[uint32][]uint32)
	for id, ring := range d.rings {
		if !w.skipFailed(id) && !slices.Equal(cur.Rings[id], ring) {
			changed[id] = ring
		}
	}
	errs := p.maps.Rings.Set(changed)
	for id, ring := range changed {
		if err, failed := errs[id]; failed {
			w.fail(id, err)
			w.errs = append(w.errs, err)
			continue
		}
		cur.Rings[id] = ring
		w.res.Writes++
	}
	sPuts, _, sDels := diff(cur.Services, d.services)
	put(w, p.maps.Services, sPuts, cur.Services,
		func(id uint32, _ lbmap.ServiceVal) bool { return w.skipFailed(id) },
		func(id uint32, _ lbmap.ServiceVal) []uint32 { return one(id) })
	rPuts, _, rDels := diff(cur.SrcRanges, d.srcRanges)
	srcOwner := func(k lbmap.SrcRangeKey, _ uint8) []uint32 { id, _ := lbmap.SrcRangeOf(k); return one(id) }
	put(w, p.maps.SrcRanges, rPuts, cur.SrcRanges,
		func(k lbmap.SrcRangeKey, v uint8) bool { return w.skipFailed(srcOwner(k, v)[0]) }, srcOwner)
	fPuts, _, fDels := diff(cur.Frontends, d.frontends)
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
	for id := range cur.Rings {
		if _, ok := d.rings[id]; !ok && !keepIDs[id] {
			ringDels = append(ringDels, id)
		}
	}
	if err := p.maps.Rings.Delete(ringDels); err != nil {
		w.errs = append(w.errs, err)
	} else {
		for _, id := range ringDels {
			delete(cur.Rings, id)
		}
		w.res.Writes += len(ringDels)
	}
	mDels = filter(mDels, func(k lbmap.SvcBackendKey) bool { return !keepIDs[k.SvcId] })
	del(w, p.maps.SvcBackends, mDels, cur.SvcBackends)
	// A backend stays while any service still lists it: rings only name
	// members, and members go no sooner than their service's ring.
	inRing := make(map[uint32]bool, len(cur.SvcBackends))
	for k := range cur.SvcBackends {
		inRing[k.BackendId] = true
	}
	beDels = filter(beDels, func(id uint32) bool { return !inRing[id] })
	del(w, p.maps.Backends, beDels, cur.Backends)

	if len(w.errs) > 0 {
		return fmt.Errorf("%w: %w", errPartial, errors.Join(w.errs...))
	}
	return nil
}

// keptIDs are the ids of services that failed, this round or while
// computing the desired state, and still have entries in the maps.
func (w *writer) keptIDs() map[uint32]bool {
	keep := make(map[uint32]bool, len(w.failed))
	for id := range w.failed {
		keep[id] = true
	}
	for name := range w.res.Failed {
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
