package program

import (
	"fmt"
	"slices"

	"github.com/straitlb/strait/dataplane/lbmap"
	"github.com/straitlb/strait/dataplane/maglev"
	"github.com/straitlb/strait/model"
)

// entries is what one programmed service contributes to the maps.
type entries struct {
	svc        model.Service // as programmed, to detect changes
	id         uint32
	val        lbmap.ServiceVal
	frontends  []feEntry
	members    []uint32 // backend ids, in backend key order
	memberVals []lbmap.BackendVal
	memberKeys []model.BackendKey
	ranges     []lbmap.SrcRangeKey
	// ringSum is the checksum of the Maglev ring: rings are built as they
	// are written and not kept (10,000 rings of 1,009 slots are 40 MB).
	// 0 without backends, or while the ring is still to be built.
	ringSum uint64
	udp     bool // some frontend is UDP
}

type feEntry struct {
	k lbmap.FrontendKey
	v lbmap.FrontendVal
}

// want is the maps' desired content, kept up to date service by service.
type want struct {
	frontends   map[lbmap.FrontendKey]lbmap.FrontendVal
	services    map[uint32]lbmap.ServiceVal
	backends    map[uint32]lbmap.BackendVal
	beRefs      map[uint32]int // services listing each backend
	svcBackends map[lbmap.SvcBackendKey]uint8
	srcRanges   map[lbmap.SrcRangeKey]uint8
	// ringSums are the checksums of the rings.
	ringSums map[uint32]uint64
	owner    map[uint32]model.ServiceName
}

// newWant returns an empty want sized for the services of state (growing
// maps entry by entry costs a third of a cold start).
func newWant(state *model.State) *want {
	var services, frontends, backends int
	if state != nil {
		services = len(state.Services)
		for i := range state.Services {
			frontends += len(state.Services[i].Frontends)
			backends += len(state.Services[i].Backends)
		}
	}
	return &want{
		frontends:   make(map[lbmap.FrontendKey]lbmap.FrontendVal, frontends),
		services:    make(map[uint32]lbmap.ServiceVal, services),
		backends:    make(map[uint32]lbmap.BackendVal, backends),
		beRefs:      make(map[uint32]int, backends),
		svcBackends: make(map[lbmap.SvcBackendKey]uint8, backends),
		srcRanges:   make(map[lbmap.SrcRangeKey]uint8),
		ringSums:    make(map[uint32]uint64, services),
		owner:       make(map[uint32]model.ServiceName, services),
	}
}

// dirty holds the keys whose desired value may differ from the maps: the
// only keys an incremental write looks at.
type dirty struct {
	frontends   map[lbmap.FrontendKey]struct{}
	services    map[uint32]struct{}
	backends    map[uint32]struct{}
	svcBackends map[lbmap.SvcBackendKey]struct{}
	srcRanges   map[lbmap.SrcRangeKey]struct{}
	rings       map[uint32]struct{}
	// udp are the services with a UDP frontend before or after: their
	// departed members' conntrack entries are flushed.
	udp map[uint32]bool
}

func newDirty() *dirty {
	return &dirty{
		frontends:   make(map[lbmap.FrontendKey]struct{}),
		services:    make(map[uint32]struct{}),
		backends:    make(map[uint32]struct{}),
		svcBackends: make(map[lbmap.SvcBackendKey]struct{}),
		srcRanges:   make(map[lbmap.SrcRangeKey]struct{}),
		rings:       make(map[uint32]struct{}),
		udp:         make(map[uint32]bool),
	}
}

// add puts e's entries into w, marking their keys dirty (d is nil when
// every key is compared anyway).
func (w *want) add(e *entries, name model.ServiceName, d *dirty) {
	for _, f := range e.frontends {
		w.frontends[f.k] = f.v
	}
	w.services[e.id] = e.val
	w.owner[e.id] = name
	for i, bid := range e.members {
		// A backend has one value; compute refuses a service that
		// disagrees with its holders, and a restored service does not
		// override them.
		if w.beRefs[bid] == 0 {
			w.backends[bid] = e.memberVals[i]
		}
		w.beRefs[bid]++
		w.svcBackends[lbmap.SvcBackendKey{SvcId: e.id, BackendId: bid}] = 1
	}
	for _, r := range e.ranges {
		w.srcRanges[r] = 1
	}
	if e.ringSum != 0 {
		w.ringSums[e.id] = e.ringSum
	}
	d.mark(e)
}

// mark records e's keys as dirty.
func (d *dirty) mark(e *entries) {
	if d == nil {
		return
	}
	for _, f := range e.frontends {
		d.frontends[f.k] = struct{}{}
	}
	d.services[e.id] = struct{}{}
	for _, bid := range e.members {
		d.backends[bid] = struct{}{}
		d.svcBackends[lbmap.SvcBackendKey{SvcId: e.id, BackendId: bid}] = struct{}{}
	}
	for _, r := range e.ranges {
		d.srcRanges[r] = struct{}{}
	}
	d.rings[e.id] = struct{}{}
	if e.udp {
		d.udp[e.id] = true
	}
}

// remove takes e's entries out of w, marking their keys dirty; backends
// no service lists any more are passed to unused. Frontends already given
// to another service stay with it.
func (w *want) remove(e *entries, d *dirty, unused func(model.BackendKey)) {
	for _, f := range e.frontends {
		if cur, ok := w.frontends[f.k]; ok && cur.SvcId == e.id {
			delete(w.frontends, f.k)
		}
	}
	delete(w.services, e.id)
	delete(w.owner, e.id)
	for i, bid := range e.members {
		if w.beRefs[bid]--; w.beRefs[bid] <= 0 {
			delete(w.beRefs, bid)
			delete(w.backends, bid)
			unused(e.memberKeys[i])
		}
		delete(w.svcBackends, lbmap.SvcBackendKey{SvcId: e.id, BackendId: bid})
	}
	for _, r := range e.ranges {
		delete(w.srcRanges, r)
	}
	delete(w.ringSums, e.id)
	d.mark(e)
}

// ringJob is a ring still to build.
type ringJob struct {
	e    *entries
	keys []model.BackendKey
	size uint32
}

// compute works out one service's entries against the current desired
// content (which no longer holds the service's previous entries). It
// allocates ids but changes nothing else; prev, when not nil, is what the
// service had, whose ring is reused when its members are unchanged.
func (p *Programmer) compute(w *want, svc *model.Service, prev *entries, jobs *[]ringJob) (*entries, error) {
	if err := svc.Validate(); err != nil {
		return nil, err
	}
	for _, fe := range svc.Frontends {
		if v, taken := w.frontends[lbmap.MakeFrontendKey(fe.Key())]; taken {
			return nil, fmt.Errorf("service %s: frontend %s already belongs to service %s", svc.Name, fe, w.owner[v.SvcId])
		}
	}
	id, err := p.serviceID(svc)
	if err != nil {
		return nil, fmt.Errorf("service %s: allocate service id: %w", svc.Name, err)
	}
	e := &entries{svc: *svc, id: id}
	byKey := func(a, b model.Backend) int { return a.Key().Compare(b.Key()) }
	backends := svc.Backends // canonical states arrive sorted
	if !slices.IsSortedFunc(backends, byKey) {
		backends = slices.Clone(backends)
		slices.SortFunc(backends, byKey)
	}
	e.members = make([]uint32, len(backends))
	e.memberVals = make([]lbmap.BackendVal, len(backends))
	e.memberKeys = make([]model.BackendKey, len(backends))
	// Ids acquired for a service that then fails may be unused.
	fail := func(err error) (*entries, error) {
		for _, k := range e.memberKeys {
			if k.Addr.IsValid() {
				p.beCheck[k] = struct{}{}
			}
		}
		return nil, err
	}
	for i, b := range backends {
		k := b.Key()
		bid, err := p.beIDs.Acquire(k)
		if err != nil {
			return fail(fmt.Errorf("service %s: allocate backend id for %s: %w", svc.Name, b, err))
		}
		e.memberKeys[i] = k
		v := lbmap.MakeBackendVal(b)
		if have, ok := w.backends[bid]; ok && have != v {
			return fail(fmt.Errorf("service %s: backend %s is local in one service and remote in another", svc.Name, b))
		}
		e.members[i], e.memberVals[i] = bid, v
	}

	e.val.Flags = lbmap.SvcFlagActive
	e.val.BackendCount = uint32(len(backends))
	if svc.IfEmpty == model.Drop {
		e.val.Flags |= lbmap.SvcFlagDropEmpty
	}
	if svc.AffinityTimeout > 0 {
		e.val.Flags |= lbmap.SvcFlagAffinity
		e.val.AffinityTimeout = uint32(svc.AffinityTimeout.Seconds())
	}
	if len(svc.SourceRanges) > 0 {
		e.val.Flags |= lbmap.SvcFlagSrcRanges
		for _, pfx := range svc.SourceRanges {
			e.ranges = append(e.ranges, lbmap.MakeSrcRangeKey(id, pfx))
		}
	}
	if len(backends) > 0 {
		e.val.RingSize = maglev.TableSize(len(backends), p.cfg.MaxRingSize)
		// The ring depends on the members only. Reuse it unless the maps
		// may hold something else (a full comparison after a failure).
		if prev != nil && prev.id == id && prev.ringSum != 0 && prev.val.RingSize == e.val.RingSize &&
			slices.Equal(prev.members, e.members) && (!p.full || p.ringSums[id] == prev.ringSum) {
			e.ringSum = prev.ringSum
		} else {
			*jobs = append(*jobs, ringJob{e: e, keys: e.memberKeys, size: e.val.RingSize})
		}
	}
	e.frontends = make([]feEntry, len(svc.Frontends))
	for i, fe := range svc.Frontends {
		var fv lbmap.FrontendVal
		fv.SvcId = id
		if fe.Kind.External() {
			fv.Flags |= lbmap.FeFlagExternal
		}
		if fe.Kind == model.LoadBalancer {
			fv.Flags |= lbmap.FeFlagLoadBalancer
		}
		if fe.Proto == model.UDP {
			e.udp = true
		}
		e.frontends[i] = feEntry{lbmap.MakeFrontendKey(fe.Key()), fv}
	}
	return e, nil
}

// ringSum is a checksum of a ring (FNV-1a over its words), never 0.
func ringSum(ring []uint32) uint64 {
	h := uint64(14695981039346656037)
	for _, w := range ring {
		h ^= uint64(w)
		h *= 1099511628211
	}
	h ^= uint64(len(ring))
	h *= 1099511628211
	return h | 1
}

// serviceID returns the service's id, reclaiming the one its frontends had
// in the maps before a restart when possible. Restored ids stay reserved
// under placeholder names until claimed, so no new service can take an id
// that old frontends still point to.
func (p *Programmer) serviceID(svc *model.Service) (uint32, error) {
	if id, ok := p.svcIDs.Lookup(svc.Name); ok {
		return id, nil
	}
	p.svcCheck[svc.Name] = struct{}{}
	for _, fe := range svc.Frontends {
		id, ok := p.restored[lbmap.MakeFrontendKey(fe.Key())]
		if !ok {
			continue
		}
		ph := placeholder(id)
		if cur, held := p.svcIDs.Lookup(ph); !held || cur != id {
			continue
		}
		p.svcIDs.Release(ph)
		if err := p.svcIDs.Restore(svc.Name, id); err != nil {
			return 0, err
		}
		return id, nil
	}
	return p.svcIDs.Acquire(svc.Name)
}

// placeholder names a restored service id not yet claimed.
func placeholder(id uint32) model.ServiceName {
	return model.ServiceName{Scope: fmt.Sprintf("restored-%d", id)}
}
