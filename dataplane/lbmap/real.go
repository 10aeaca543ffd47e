package lbmap

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/straitlb/strait/dataplane/kern"
)

// realKV is a KV over a kernel map, written in batches where the map type
// supports it.
type realKV[K comparable, V comparable] struct {
	m     *ebpf.Map
	name  string
	array bool // deleting writes the zero value; zero values read as absent
	batch bool
}

func newRealKV[K comparable, V comparable](m *ebpf.Map, name string) *realKV[K, V] {
	t := m.Type()
	return &realKV[K, V]{
		m:     m,
		name:  name,
		array: t == ebpf.Array || t == ebpf.PerCPUArray,
		batch: t == ebpf.Hash || t == ebpf.Array || t == ebpf.LRUHash,
	}
}

func (r *realKV[K, V]) Name() string { return r.name }

func (r *realKV[K, V]) wrapErr(verb string, err error) error {
	if errors.Is(err, unix.E2BIG) || errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.ENOMEM) {
		return fmt.Errorf("%s map %s: %w (%d entries): %w", verb, r.name, ErrMapFull, r.m.MaxEntries(), err)
	}
	return fmt.Errorf("%s map %s: %w", verb, r.name, err)
}

func (r *realKV[K, V]) Put(keys []K, vals []V) error {
	if len(keys) != len(vals) {
		return fmt.Errorf("update map %s: %d keys but %d values", r.name, len(keys), len(vals))
	}
	if len(keys) == 0 {
		return nil
	}
	if r.batch {
		_, err := r.m.BatchUpdate(keys, vals, nil)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ebpf.ErrNotSupported) {
			return r.wrapErr("update", err)
		}
		r.batch = false
	}
	for i := range keys {
		if err := r.m.Put(&keys[i], &vals[i]); err != nil {
			return r.wrapErr("update", err)
		}
	}
	return nil
}

func (r *realKV[K, V]) Delete(keys []K) error {
	if len(keys) == 0 {
		return nil
	}
	if r.array {
		zeros := make([]V, len(keys))
		return r.Put(keys, zeros)
	}
	for i := range keys {
		if err := r.m.Delete(&keys[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return r.wrapErr("delete from", err)
		}
	}
	return nil
}

func (r *realKV[K, V]) All() (map[K]V, error) {
	if r.batch {
		out, err := r.allBatch()
		if err == nil {
			return out, nil
		}
		if !errors.Is(err, ebpf.ErrNotSupported) {
			return nil, err
		}
	}
	out := make(map[K]V)
	var (
		k    K
		v    V
		zero V
	)
	it := r.m.Iterate()
	for it.Next(&k, &v) {
		if r.array && v == zero {
			continue
		}
		out[k] = v
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("iterate map %s: %w", r.name, err)
	}
	return out, nil
}

// allBatch reads the map in chunks: a 262144-slot array costs 64 syscalls
// instead of half a million.
func (r *realKV[K, V]) allBatch() (map[K]V, error) {
	const chunk = 4096
	out := make(map[K]V)
	keys := make([]K, chunk)
	vals := make([]V, chunk)
	var zero V
	var cursor ebpf.MapBatchCursor
	for {
		n, err := r.m.BatchLookup(&cursor, keys, vals, nil)
		for i := 0; i < n; i++ {
			if r.array && vals[i] == zero {
				continue
			}
			out[keys[i]] = vals[i]
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read map %s: %w", r.name, err)
		}
	}
}

// realRings creates one inner array per ring and swaps it into the outer
// array-of-maps with a single update.
type realRings struct {
	outer *ebpf.Map
	inner *ebpf.MapSpec
}

func (r *realRings) Set(id uint32, ring []uint32) error {
	if len(ring) == 0 {
		return fmt.Errorf("set maglev ring %d: empty ring", id)
	}
	spec := r.inner.Copy()
	spec.MaxEntries = uint32(len(ring)) + 1
	// Slot 0 holds the size, so size and slots change together.
	vals := make([]uint32, len(ring)+1)
	vals[0] = uint32(len(ring))
	copy(vals[1:], ring)
	keys := make([]uint32, len(vals))
	for i := range keys {
		keys[i] = uint32(i)
	}
	m, err := ebpf.NewMap(spec)
	if err != nil {
		return fmt.Errorf("create maglev ring %d (%d slots): %w", id, len(ring), err)
	}
	defer m.Close()
	if _, err := m.BatchUpdate(keys, vals, nil); err != nil {
		return fmt.Errorf("fill maglev ring %d: %w", id, err)
	}
	if err := r.outer.Put(id, m); err != nil {
		return fmt.Errorf("swap maglev ring %d: %w", id, err)
	}
	return nil
}

func (r *realRings) Delete(id uint32) error {
	if err := r.outer.Delete(id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete maglev ring %d: %w", id, err)
	}
	return nil
}

func (r *realRings) Get(id uint32) ([]uint32, error) {
	var innerID uint32
	if err := r.outer.Lookup(id, &innerID); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("look up maglev ring %d: %w", id, err)
	}
	m, err := ebpf.NewMapFromID(ebpf.MapID(innerID))
	if err != nil {
		return nil, fmt.Errorf("open maglev ring %d (map id %d): %w", id, innerID, err)
	}
	defer m.Close()
	n := m.MaxEntries()
	keys := make([]uint32, n)
	vals := make([]uint32, n)
	var cursor ebpf.MapBatchCursor
	got, err := m.BatchLookup(&cursor, keys, vals, nil)
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil, fmt.Errorf("read maglev ring %d: %w", id, err)
	}
	if got < 1 || vals[0] == 0 || int(vals[0]) >= got {
		return nil, fmt.Errorf("read maglev ring %d: corrupt (size slot %d of %d read)", id, vals[0], got)
	}
	return vals[1 : vals[0]+1], nil
}

// NewReal wraps loaded maps. innerSpec is the template of the Maglev rings
// (the maglev map spec's InnerMap).
func NewReal(m *kern.StraitMaps, innerSpec *ebpf.MapSpec) Maps {
	return Maps{
		Frontends:   newRealKV[FrontendKey, FrontendVal](m.Frontends, "frontends"),
		Services:    newRealKV[uint32, ServiceVal](m.Services, "services"),
		Backends:    newRealKV[uint32, BackendVal](m.Backends, "backends"),
		SvcBackends: newRealKV[SvcBackendKey, uint8](m.SvcBackends, "svc_backends"),
		SrcRanges:   newRealKV[SrcRangeKey, uint8](m.SrcRanges, "src_ranges"),
		Ifaces:      newRealKV[uint32, IfaceVal](m.Ifaces, "ifaces"),
		Config:      newRealKV[uint32, Config](m.Config, "config"),
		Conntrack:   newRealKV[CtKey, CtVal](m.Conntrack, "conntrack"),
		Rings:       &realRings{outer: m.Maglev, inner: innerSpec},
	}
}
