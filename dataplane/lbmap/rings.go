package lbmap

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
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

// ringMem is one inner map, memory-mapped.
type ringMem struct {
	mem     []byte
	words   []uint32
	cap     uint32
	retired time.Time // when the inactive half was last active
}

func (r *ringMem) ctl() uint32 { return atomic.LoadUint32(&r.words[ringCtl]) }

func (r *ringMem) active() []uint32 {
	c := r.ctl()
	base := ringHdr + (c>>31)*r.cap
	return r.words[base : base+c&ringSizeMask]
}

// publish writes ring into the inactive half and flips to it.
func (r *ringMem) publish(ring []uint32) {
	if wait := halfGrace - time.Since(r.retired); wait > 0 {
		time.Sleep(wait)
	}
	next := (r.ctl() >> 31) ^ 1
	base := ringHdr + next*r.cap
	copy(r.words[base:base+uint32(len(ring))], ring)
	atomic.StoreUint32(&r.words[ringCtl], next<<31|uint32(len(ring)))
	r.retired = time.Now()
}

func (r *ringMem) unmap() { _ = unix.Munmap(r.mem) }

// realRings keeps every ring memory-mapped. A new ring that fits its
// map's capacity is written in place (two halves, one atomic flip: no
// syscall); a ring that outgrows it gets a new map, and all new maps of one
// Set are swapped into the outer array with a single batch update, because
// every update of a map-of-maps waits for an RCU grace period.
type realRings struct {
	outer *ebpf.Map
	inner *ebpf.MapSpec
	mu    sync.Mutex
	open  map[uint32]*ringMem
}

func newRealRings(outer *ebpf.Map, inner *ebpf.MapSpec) *realRings {
	return &realRings{outer: outer, inner: inner, open: make(map[uint32]*ringMem)}
}

// capacityFor is the ring size itself: sizes come from a ladder of primes
// (maglev.TableSize), so a service keeps its map until its backend count
// crosses a rung, and the next rung is twice as large anyway.
func capacityFor(size int) uint32 { return uint32(size) }

func mmapRing(m *ebpf.Map) (*ringMem, error) {
	n := int(m.MaxEntries()) * 2 // two 32-bit words per 8-byte element
	size := (n*4 + unix.Getpagesize() - 1) &^ (unix.Getpagesize() - 1)
	mem, err := unix.Mmap(m.FD(), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap ring map: %w", err)
	}
	words := unsafe.Slice((*uint32)(unsafe.Pointer(&mem[0])), n)
	return &ringMem{mem: mem, words: words, cap: uint32((n - ringHdr) / 2)}, nil
}

func (r *realRings) newRing(ring []uint32) (*ebpf.Map, *ringMem, error) {
	spec := r.inner.Copy()
	c := capacityFor(len(ring))
	spec.MaxEntries = (ringHdr + 2*c + 1) / 2
	m, err := ebpf.NewMap(spec)
	if err != nil {
		return nil, nil, fmt.Errorf("create ring map (%d slots): %w", spec.MaxEntries, err)
	}
	rm, err := mmapRing(m)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	rm.words[ringCap] = c
	copy(rm.words[ringHdr:], ring)
	atomic.StoreUint32(&rm.words[ringCtl], uint32(len(ring)))
	return m, rm, nil
}

// lookup returns the mapped ring of id, opening a pinned one left by a
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
	defer m.Close()
	rm, err := mmapRing(m)
	if err != nil {
		return nil, fmt.Errorf("open maglev ring %d: %w", id, err)
	}
	if rm.words[ringCap] != rm.cap {
		rm.unmap()
		return nil, fmt.Errorf("open maglev ring %d: capacity word %d, map holds %d", id, rm.words[ringCap], rm.cap)
	}
	r.open[id] = rm
	return rm, nil
}

// created is a new ring map waiting to be swapped in.
type created struct {
	id   uint32
	ring []uint32
	m    *ebpf.Map
	rm   *ringMem
	err  error
}

func (r *realRings) Set(rings map[uint32][]uint32) map[uint32]error {
	r.mu.Lock()
	defer r.mu.Unlock()
	errs := make(map[uint32]error)
	var todo []created
	for id, ring := range rings {
		if len(ring) == 0 || len(ring) > ringSizeMask {
			errs[id] = fmt.Errorf("set maglev ring %d: bad size %d", id, len(ring))
			continue
		}
		rm, err := r.lookup(id)
		if err != nil {
			errs[id] = err
			continue
		}
		if rm != nil && uint32(len(ring)) <= rm.cap {
			rm.publish(ring)
			continue
		}
		todo = append(todo, created{id: id, ring: ring})
	}
	r.createAll(todo)
	var ids, fds []uint32
	for i := range todo {
		c := &todo[i]
		if c.err != nil {
			errs[c.id] = fmt.Errorf("set maglev ring %d: %w", c.id, c.err)
			continue
		}
		defer c.m.Close()
		ids = append(ids, c.id)
		fds = append(fds, uint32(c.m.FD()))
	}
	if len(ids) > 0 {
		// One batch: each single update of a map-of-maps waits for an RCU
		// grace period (about 8 ms here).
		if _, err := r.outer.BatchUpdate(ids, fds, nil); err != nil {
			for i, id := range ids {
				if err := r.outer.Put(id, fds[i]); err != nil {
					errs[id] = fmt.Errorf("swap maglev ring %d: %w", id, err)
				}
			}
		}
	}
	for _, c := range todo {
		if c.err != nil {
			continue
		}
		if _, failed := errs[c.id]; failed {
			c.rm.unmap()
			continue
		}
		if old := r.open[c.id]; old != nil {
			old.unmap()
		}
		r.open[c.id] = c.rm
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// createAll creates and fills new ring maps on every CPU.
func (r *realRings) createAll(todo []created) {
	workers := min(runtime.GOMAXPROCS(0), len(todo))
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c := &todo[i]
				c.m, c.rm, c.err = r.newRing(c.ring)
			}
		}()
	}
	for i := range todo {
		next <- i
	}
	close(next)
	wg.Wait()
}

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
			rm.unmap()
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
	a := rm.active()
	if len(a) == 0 {
		return nil, nil
	}
	return append([]uint32(nil), a...), nil
}
