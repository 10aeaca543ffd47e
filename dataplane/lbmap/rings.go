package lbmap

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/straitlb/strait/internal/parallel"
)

// Layout of an inner ring map in 32-bit words; see struct maglev_inner in
// bpf/include/maps.h.
const (
	ringCtl      = 0
	ringCap      = 1
	ringHdr      = 2
	ringHalfBit  = 1 << 31
	ringSizeMask = ringHalfBit - 1
	// halfGrace is how long a half stays untouched after it stopped being
	// active, so no program still reading it sees it rewritten. A program
	// run lasts microseconds.
	halfGrace = time.Millisecond
)

// ringMem is one inner map. It is memory-mapped only while being read or
// written: 10,000 rings kept mapped would add their pages (8 KiB each at
// 1,009 slots) to the agent's resident memory.
type ringMem struct {
	m       *ebpf.Map
	cap     uint32
	retired time.Time // when the inactive half was last active
}

// mapped calls f with the map's words, memory-mapped for the call.
func (r *ringMem) mapped(f func(words []uint32)) error {
	n := int(r.m.MaxEntries()) * 2 // two 32-bit words per 8-byte element
	size := (n*4 + unix.Getpagesize() - 1) &^ (unix.Getpagesize() - 1)
	mem, err := unix.Mmap(r.m.FD(), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap ring map: %w", err)
	}
	f(unsafe.Slice((*uint32)(unsafe.Pointer(&mem[0])), n))
	return unix.Munmap(mem)
}

func active(words []uint32, capacity uint32) []uint32 {
	c := atomic.LoadUint32(&words[ringCtl])
	base := ringHdr + (c>>31)*capacity
	return words[base : base+c&ringSizeMask]
}

// publish writes ring into the inactive half and flips to it.
func (r *ringMem) publish(ring []uint32) error {
	if wait := halfGrace - time.Since(r.retired); wait > 0 {
		time.Sleep(wait)
	}
	err := r.mapped(func(words []uint32) {
		next := (atomic.LoadUint32(&words[ringCtl]) >> 31) ^ 1
		base := ringHdr + next*r.cap
		copy(words[base:base+uint32(len(ring))], ring)
		atomic.StoreUint32(&words[ringCtl], next<<31|uint32(len(ring)))
	})
	r.retired = time.Now()
	return err
}

func (r *ringMem) close() { _ = r.m.Close() }

// realRings keeps a handle on every ring map. A new ring that fits its
// map's capacity is written in place (two halves, one atomic flip: no map
// update); a ring that outgrows it gets a new map, and all new maps of one
// Set are swapped into the outer array with a single batch update, because
// every update of a map-of-maps waits for an RCU grace period.
type realRings struct {
	outer *ebpf.Map
	inner *ebpf.MapSpec
	mu    sync.Mutex
	open  map[uint32]*ringMem
}

func newRealRings(outer *ebpf.Map, inner *ebpf.MapSpec) *realRings {
	// Inner maps are created without BTF: the kernel does not compare it
	// with the outer map's template, the values hold no special fields,
	// and loading a BTF object for each of 10,000 rings doubled the cost
	// of creating them.
	inner = inner.Copy()
	inner.Key, inner.Value = nil, nil
	return &realRings{outer: outer, inner: inner, open: make(map[uint32]*ringMem)}
}

// capacityFor is the ring size itself: sizes come from a ladder of primes
// (maglev.TableSize), so a service keeps its map until its backend count
// crosses a rung, and the next rung is twice as large anyway.
func capacityFor(size int) uint32 { return uint32(size) }

func capacityOf(m *ebpf.Map) uint32 { return (m.MaxEntries()*2 - ringHdr) / 2 }

func (r *realRings) newRing(ring []uint32) (*ebpf.Map, *ringMem, error) {
	spec := r.inner.Copy()
	c := capacityFor(len(ring))
	spec.MaxEntries = (ringHdr + 2*c + 1) / 2
	m, err := ebpf.NewMap(spec)
	if err != nil {
		return nil, nil, fmt.Errorf("create ring map (%d slots): %w", spec.MaxEntries, err)
	}
	rm := &ringMem{m: m, cap: capacityOf(m)}
	err = rm.mapped(func(words []uint32) {
		words[ringCap] = rm.cap
		copy(words[ringHdr:], ring)
		atomic.StoreUint32(&words[ringCtl], uint32(len(ring)))
	})
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	return m, rm, nil
}

// lookup returns the ring map of id, opening a pinned one left by a
// previous process. nil, nil when the service has none.
func (r *realRings) lookup(id uint32) (*ringMem, error) {
	if rm, ok := r.open[id]; ok {
		return rm, nil
	}
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
	rm := &ringMem{m: m, cap: capacityOf(m)}
	var capWord uint32
	if err := rm.mapped(func(words []uint32) { capWord = words[ringCap] }); err != nil {
		m.Close()
		return nil, fmt.Errorf("open maglev ring %d: %w", id, err)
	}
	if capWord != rm.cap {
		m.Close()
		return nil, fmt.Errorf("open maglev ring %d: capacity word %d, map holds %d", id, capWord, rm.cap)
	}
	r.open[id] = rm
	return rm, nil
}

// created is a new ring map waiting to be swapped in.
type created struct {
	id  uint32
	m   *ebpf.Map
	rm  *ringMem
	err error
}

func (r *realRings) Set(rings map[uint32][]uint32) map[uint32]error {
	return r.SetFrom(slices.Collect(maps.Keys(rings)), func(id uint32) []uint32 { return rings[id] })
}

// SetFrom builds and writes the rings on every CPU, each dropped once
// written: a ring that fits its map is published in place, the others get
// new maps, swapped in with one batch update at the end.
func (r *realRings) SetFrom(ids []uint32, build func(uint32) []uint32) map[uint32]error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var (
		emu  sync.Mutex
		errs = make(map[uint32]error)
	)
	fail := func(id uint32, err error) {
		emu.Lock()
		errs[id] = err
		emu.Unlock()
	}
	ids = slices.Clone(ids)
	// Open the existing maps first: lookup touches r.open.
	have := make([]*ringMem, len(ids))
	for i, id := range ids {
		rm, err := r.lookup(id)
		if err != nil {
			fail(id, err)
			ids[i] = noRing
			continue
		}
		have[i] = rm
	}
	made := make([]created, len(ids))
	parallel.For(len(ids), func(i int) {
		id := ids[i]
		if id == noRing {
			return
		}
		ring := build(id)
		switch {
		case ring == nil:
			return
		case len(ring) > ringSizeMask:
			fail(id, fmt.Errorf("set maglev ring %d: bad size %d", id, len(ring)))
		case have[i] != nil && uint32(len(ring)) <= have[i].cap:
			if err := have[i].publish(ring); err != nil {
				fail(id, fmt.Errorf("set maglev ring %d: %w", id, err))
			}
		default:
			m, rm, err := r.newRing(ring)
			if err != nil {
				fail(id, fmt.Errorf("set maglev ring %d: %w", id, err))
				return
			}
			made[i] = created{id: id, m: m, rm: rm}
		}
	})
	var newIDs, fds []uint32
	for _, c := range made {
		if c.m != nil {
			newIDs = append(newIDs, c.id)
			fds = append(fds, uint32(c.m.FD()))
		}
	}
	if len(newIDs) > 0 {
		// One batch: each single update of a map-of-maps waits for an RCU
		// grace period (about 8 ms here).
		if _, err := r.outer.BatchUpdate(newIDs, fds, nil); err != nil {
			for i, id := range newIDs {
				if err := r.outer.Put(id, fds[i]); err != nil {
					errs[id] = fmt.Errorf("swap maglev ring %d: %w", id, err)
				}
			}
		}
	}
	for _, c := range made {
		if c.m == nil {
			continue
		}
		if _, failed := errs[c.id]; failed {
			c.rm.close()
			continue
		}
		if old := r.open[c.id]; old != nil {
			old.close()
		}
		r.open[c.id] = c.rm
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// noRing marks an id SetFrom skips.
const noRing = ^uint32(0)

func (r *realRings) Delete(ids []uint32) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	var errs []error
	// One batch: each single delete would wait for its own grace period.
	if _, err := r.outer.BatchDelete(ids, nil); err != nil {
		for _, id := range ids {
			if err := r.outer.Delete(id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				errs = append(errs, fmt.Errorf("delete maglev ring %d: %w", id, err))
			}
		}
	}
	for _, id := range ids {
		if rm := r.open[id]; rm != nil {
			rm.close()
			delete(r.open, id)
		}
	}
	return errors.Join(errs...)
}

func (r *realRings) Get(id uint32) ([]uint32, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rm, err := r.lookup(id)
	if rm == nil || err != nil {
		return nil, err
	}
	var out []uint32
	err = rm.mapped(func(words []uint32) {
		if a := active(words, rm.cap); len(a) > 0 {
			out = append([]uint32(nil), a...)
		}
	})
	return out, err
}
