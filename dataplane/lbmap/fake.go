package lbmap

import (
	"fmt"
	"maps"
	"slices"
	"sync"
)

// fakeKV is a KV in a Go map that enforces the real map's capacity.
type fakeKV[K comparable, V comparable] struct {
	mu   sync.Mutex
	name string
	max  int
	m    map[K]V
	// check, when set, validates each entry as the kernel would.
	check func(K, V) error
}

func newFakeKV[K comparable, V comparable](name string, max uint32) *fakeKV[K, V] {
	return &fakeKV[K, V]{name: name, max: int(max), m: make(map[K]V)}
}

func (f *fakeKV[K, V]) Name() string { return f.name }

func (f *fakeKV[K, V]) Put(keys []K, vals []V) error {
	if len(keys) != len(vals) {
		return fmt.Errorf("update map %s: %d keys but %d values", f.name, len(keys), len(vals))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, k := range keys {
		if f.check != nil {
			if err := f.check(k, vals[i]); err != nil {
				return fmt.Errorf("update map %s: %w", f.name, err)
			}
		}
		if _, ok := f.m[k]; !ok && len(f.m) >= f.max {
			return fmt.Errorf("update map %s: %w (%d entries)", f.name, ErrMapFull, f.max)
		}
		f.m[k] = vals[i]
	}
	return nil
}

func (f *fakeKV[K, V]) Delete(keys []K) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range keys {
		delete(f.m, k)
	}
	return nil
}

func (f *fakeKV[K, V]) All() (map[K]V, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.m), nil
}

type fakeRings struct {
	mu    sync.Mutex
	max   uint32
	rings map[uint32][]uint32
}

func (r *fakeRings) Set(rings map[uint32][]uint32) map[uint32]error {
	return r.SetFrom(slices.Collect(maps.Keys(rings)), func(id uint32) []uint32 { return rings[id] })
}

func (r *fakeRings) SetFrom(ids []uint32, build func(uint32) []uint32) map[uint32]error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs map[uint32]error
	for _, id := range ids {
		ring := build(id)
		if ring == nil {
			continue
		}
		var err error
		switch {
		case id >= r.max:
			err = fmt.Errorf("set maglev ring %d: id beyond %d", id, r.max)
		case len(ring) == 0:
			err = fmt.Errorf("set maglev ring %d: empty ring", id)
		}
		if err != nil {
			if errs == nil {
				errs = make(map[uint32]error)
			}
			errs[id] = err
			continue
		}
		r.rings[id] = slices.Clone(ring)
	}
	return errs
}

func (r *fakeRings) Delete(ids []uint32) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		delete(r.rings, id)
	}
	return nil
}

func (r *fakeRings) Get(id uint32) ([]uint32, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.rings[id]), nil
}

// NewFake returns in-memory maps with the given capacities. Array maps
// reject ids beyond their size, as the kernel does.
func NewFake(c Capacities) Maps {
	services := newFakeKV[uint32, ServiceVal]("services", c.Services)
	services.check = func(id uint32, _ ServiceVal) error { return arrayIndex(id, c.Services) }
	backends := newFakeKV[uint32, BackendVal]("backends", c.Backends)
	backends.check = func(id uint32, _ BackendVal) error { return arrayIndex(id, c.Backends) }
	cfg := newFakeKV[uint32, Config]("config", 1)
	cfg.check = func(id uint32, _ Config) error { return arrayIndex(id, 1) }
	return Maps{
		Frontends:   newFakeKV[FrontendKey, FrontendVal]("frontends", c.Frontends),
		Services:    services,
		Backends:    backends,
		SvcBackends: newFakeKV[SvcBackendKey, uint8]("svc_backends", c.Backends),
		SrcRanges:   newFakeKV[SrcRangeKey, uint8]("src_ranges", c.SrcRanges),
		Ifaces:      newFakeKV[uint32, IfaceVal]("ifaces", MaxIfaces),
		Config:      cfg,
		Conntrack:   newFakeKV[CtKey, CtVal]("conntrack", c.Conntrack),
		Rings:       &fakeRings{max: c.Services, rings: make(map[uint32][]uint32)},
	}
}

func arrayIndex(id, size uint32) error {
	if id >= size {
		return fmt.Errorf("index %d beyond array size %d", id, size)
	}
	return nil
}
