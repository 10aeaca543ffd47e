package program

import (
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/straitlb/strait/dataplane/lbmap"
	"github.com/straitlb/strait/dataplane/maglev"
	"github.com/straitlb/strait/model"
)

// desired is the full content the maps should hold.
type desired struct {
	frontends   map[lbmap.FrontendKey]lbmap.FrontendVal
	services    map[uint32]lbmap.ServiceVal
	backends    map[uint32]lbmap.BackendVal
	svcBackends map[lbmap.SvcBackendKey]uint8
	srcRanges   map[lbmap.SrcRangeKey]uint8
	rings       map[uint32][]uint32
	// owner maps every service id to its name, for error attribution.
	owner map[uint32]model.ServiceName
	// jobs are the rings still to build.
	jobs []ringJob
}

type ringJob struct {
	id   uint32
	keys []model.BackendKey
	ids  []uint32
	size uint32
	ring []uint32
}

func newDesired(n int) *desired {
	return &desired{
		frontends:   make(map[lbmap.FrontendKey]lbmap.FrontendVal, 2*n),
		services:    make(map[uint32]lbmap.ServiceVal, n),
		backends:    make(map[uint32]lbmap.BackendVal, 4*n),
		svcBackends: make(map[lbmap.SvcBackendKey]uint8, 4*n),
		srcRanges:   make(map[lbmap.SrcRangeKey]uint8),
		rings:       make(map[uint32][]uint32, n),
		owner:       make(map[uint32]model.ServiceName, n),
	}
}

// ringCacheEntry remembers the ring last built for a service so an
// unchanged backend set costs no rebuild.
type ringCacheEntry struct {
	ids  []uint32
	ring []uint32
}

// addService computes one service's entries. It allocates IDs but writes
// nothing; on error the service contributes nothing.
func (p *Programmer) addService(d *desired, svc *model.Service) error {
	if err := svc.Validate(); err != nil {
		return err
	}
	for _, fe := range svc.Frontends {
		k := lbmap.MakeFrontendKey(fe.Key())
		if _, taken := d.frontends[k]; taken {
			return fmt.Errorf("service %s: frontend %s already belongs to service %s", svc.Name, fe, d.owner[d.frontends[k].SvcId])
		}
	}
	id, err := p.serviceID(svc)
	if err != nil {
		return fmt.Errorf("service %s: allocate service id: %w", svc.Name, err)
	}
	byKey := func(a, b model.Backend) int { return a.Key().Compare(b.Key()) }
	backends := svc.Backends // canonical states arrive sorted
	if !slices.IsSortedFunc(backends, byKey) {
		backends = slices.Clone(backends)
		slices.SortFunc(backends, byKey)
	}
	keys := make([]model.BackendKey, len(backends))
	ids := make([]uint32, len(backends))
	for i, b := range backends {
		keys[i] = b.Key()
		bid, err := p.beIDs.Acquire(keys[i])
		if err != nil {
			return fmt.Errorf("service %s: allocate backend id for %s: %w", svc.Name, b, err)
		}
		ids[i] = bid
		v := lbmap.MakeBackendVal(b)
		if prev, ok := d.backends[bid]; ok && prev != v {
			return fmt.Errorf("service %s: backend %s is local in one service and remote in another", svc.Name, b)
		}
		d.backends[bid] = v
		d.svcBackends[lbmap.SvcBackendKey{SvcId: id, BackendId: bid}] = 1
	}

	var sv lbmap.ServiceVal
	sv.Flags = lbmap.SvcFlagActive
	sv.BackendCount = uint32(len(backends))
	if svc.IfEmpty == model.Drop {
		sv.Flags |= lbmap.SvcFlagDropEmpty
	}
	if svc.AffinityTimeout > 0 {
		sv.Flags |= lbmap.SvcFlagAffinity
		sv.AffinityTimeout = uint32(svc.AffinityTimeout.Seconds())
	}
	if len(svc.SourceRanges) > 0 {
		sv.Flags |= lbmap.SvcFlagSrcRanges
		for _, pfx := range svc.SourceRanges {
			d.srcRanges[lbmap.MakeSrcRangeKey(id, pfx)] = 1
		}
	}
	if len(backends) > 0 {
		sv.RingSize = maglev.TableSize(len(backends), p.cfg.MaxRingSize)
		if c, ok := p.ringCache[id]; ok && uint32(len(c.ring)) == sv.RingSize && slices.Equal(c.ids, ids) {
			d.rings[id] = c.ring
		} else {
			d.jobs = append(d.jobs, ringJob{id: id, keys: keys, ids: ids, size: sv.RingSize})
		}
	}
	d.services[id] = sv
	d.owner[id] = svc.Name
	for _, fe := range svc.Frontends {
		var fv lbmap.FrontendVal
		fv.SvcId = id
		if fe.Kind.External() {
			fv.Flags |= lbmap.FeFlagExternal
		}
		if fe.Kind == model.LoadBalancer {
			fv.Flags |= lbmap.FeFlagLoadBalancer
		}
		d.frontends[lbmap.MakeFrontendKey(fe.Key())] = fv
	}
	return nil
}

// buildRings builds the rings of d.jobs on every CPU: at a cold start of
// 10,000 services this is most of the work.
func (p *Programmer) buildRings(d *desired) {
	workers := min(runtime.GOMAXPROCS(0), len(d.jobs))
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b maglev.Builder
			for i := range next {
				j := &d.jobs[i]
				j.ring = make([]uint32, j.size)
				b.Fill(j.ring, j.keys, j.ids)
			}
		}()
	}
	for i := range d.jobs {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, j := range d.jobs {
		d.rings[j.id] = j.ring
		p.ringCache[j.id] = ringCacheEntry{ids: j.ids, ring: j.ring}
	}
	d.jobs = nil
}

// serviceID returns the service's id, reclaiming the one its frontends had
// in the maps before a restart when possible. Restored ids stay reserved
// under placeholder names until claimed, so no new service can take an id
// that old frontends still point to.
func (p *Programmer) serviceID(svc *model.Service) (uint32, error) {
	if id, ok := p.svcIDs.Lookup(svc.Name); ok {
		return id, nil
	}
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
