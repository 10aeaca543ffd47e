package lbmap

// Op names an operation for fault injection.
type Op string

// Operations that can fail.
const (
	OpPut    Op = "put"
	OpDelete Op = "delete"
	OpAll    Op = "all"
	OpSet    Op = "set"
	OpGet    Op = "get"
)

// Injector decides whether an operation on a map fails: return nil to let
// it through.
type Injector func(op Op, mapName string) error

type faultyKV[K comparable, V comparable] struct {
	inner KV[K, V]
	fail  Injector
}

func (f faultyKV[K, V]) Name() string { return f.inner.Name() }

func (f faultyKV[K, V]) Put(keys []K, vals []V) error {
	if err := f.fail(OpPut, f.inner.Name()); err != nil {
		return err
	}
	return f.inner.Put(keys, vals)
}

func (f faultyKV[K, V]) Delete(keys []K) error {
	if err := f.fail(OpDelete, f.inner.Name()); err != nil {
		return err
	}
	return f.inner.Delete(keys)
}

func (f faultyKV[K, V]) All() (map[K]V, error) {
	if err := f.fail(OpAll, f.inner.Name()); err != nil {
		return nil, err
	}
	return f.inner.All()
}

type faultyRings struct {
	inner Rings
	fail  Injector
}

func (f faultyRings) Set(rings map[uint32][]uint32) map[uint32]error {
	if err := f.fail(OpSet, "maglev"); err != nil {
		errs := make(map[uint32]error, len(rings))
		for id := range rings {
			errs[id] = err
		}
		return errs
	}
	return f.inner.Set(rings)
}

func (f faultyRings) SetFrom(ids []uint32, build func(uint32) []uint32) map[uint32]error {
	if err := f.fail(OpSet, "maglev"); err != nil {
		errs := make(map[uint32]error, len(ids))
		for _, id := range ids {
			if build(id) != nil {
				errs[id] = err
			}
		}
		return errs
	}
	return f.inner.SetFrom(ids, build)
}

func (f faultyRings) Delete(ids []uint32) error {
	if err := f.fail(OpDelete, "maglev"); err != nil {
		return err
	}
	return f.inner.Delete(ids)
}

func (f faultyRings) Get(id uint32) ([]uint32, error) {
	if err := f.fail(OpGet, "maglev"); err != nil {
		return nil, err
	}
	return f.inner.Get(id)
}

func wrap[K comparable, V comparable](kv KV[K, V], fail Injector) KV[K, V] {
	return faultyKV[K, V]{inner: kv, fail: fail}
}

// NewFaulty wraps m so that every operation first asks fail.
func NewFaulty(m Maps, fail Injector) Maps {
	return Maps{
		Frontends:   wrap(m.Frontends, fail),
		Services:    wrap(m.Services, fail),
		Backends:    wrap(m.Backends, fail),
		SvcBackends: wrap(m.SvcBackends, fail),
		SrcRanges:   wrap(m.SrcRanges, fail),
		Ifaces:      wrap(m.Ifaces, fail),
		Config:      wrap(m.Config, fail),
		Conntrack:   wrap(m.Conntrack, fail),
		Rings:       faultyRings{inner: m.Rings, fail: fail},
	}
}
