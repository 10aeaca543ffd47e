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
	if r.batch {
		// A batch stops at the first absent key: skip it and go on.
		for i := 0; i < len(keys); {
			n, err := r.m.BatchDelete(keys[i:], nil)
			i += n
			if err == nil {
				return nil
			}
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				i++
				continue
			}
			if errors.Is(err, ebpf.ErrNotSupported) {
				r.batch = false
				keys = keys[i:]
				break
			}
			return r.wrapErr("delete from", err)
		}
		if r.batch {
			return nil
		}
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
		Rings:       newRealRings(m.Maglev, innerSpec),
	}
}
