package idalloc

import (
	"errors"
	"fmt"
	"iter"
)

// None is the reserved ID that designates nothing.
const None uint32 = 0

var (
	// ErrFull is returned, wrapped, by [Allocator.Acquire] when every ID
	// in [1, max] is in use.
	ErrFull = errors.New("no free ID")
	// ErrConflict is returned, wrapped, by [Allocator.Restore] when the key
	// already holds another ID or the ID is held by another key.
	ErrConflict = errors.New("ID conflict")
	// ErrOutOfRange is returned, wrapped, by [Allocator.Restore] for ID 0
	// or an ID above the allocator's maximum.
	ErrOutOfRange = errors.New("ID out of range")
)

// An Allocator assigns IDs in [1, max] to keys of type K. The zero value is
// not usable; call [New].
type Allocator[K comparable] struct {
	max  uint32
	ids  map[K]uint32
	keys map[uint32]K
	// next is the lowest ID the counter has not handed out: an ID >= next
	// is in use only if it was restored. Every free ID below next is in
	// free.
	next uint64
	// free is a min-heap of IDs below next that were released. It may hold
	// IDs that have since been restored, and duplicates; both are skipped
	// when popped.
	free []uint32
}

// New returns an allocator of the IDs 1 to maxID inclusive: for a BPF
// array of n entries whose index 0 is unused, maxID is n-1.
func New[K comparable](maxID uint32) *Allocator[K] {
	return &Allocator[K]{
		max:  maxID,
		ids:  make(map[K]uint32),
		keys: make(map[uint32]K),
		next: 1,
	}
}

// Max returns the highest ID the allocator hands out.
func (a *Allocator[K]) Max() uint32 { return a.max }

// Len returns the number of keys holding an ID.
func (a *Allocator[K]) Len() int { return len(a.ids) }

// Lookup returns the ID of k, or [None] and false if k holds none.
func (a *Allocator[K]) Lookup(k K) (uint32, bool) {
	id, ok := a.ids[k]
	return id, ok
}

// Key returns the key holding id, if any.
func (a *Allocator[K]) Key(id uint32) (K, bool) {
	k, ok := a.keys[id]
	return k, ok
}

// All yields every key and its ID, in no particular order. The allocator
// must not be modified during the iteration.
func (a *Allocator[K]) All() iter.Seq2[K, uint32] {
	return func(yield func(K, uint32) bool) {
		for k, id := range a.ids {
			if !yield(k, id) {
				return
			}
		}
	}
}

// Acquire returns the ID of k, assigning it the lowest free ID if it has
// none. It fails with an error wrapping [ErrFull] if every ID is in use.
func (a *Allocator[K]) Acquire(k K) (uint32, error) {
	if id, ok := a.ids[k]; ok {
		return id, nil
	}
	id := a.take()
	if id == None {
		return None, fmt.Errorf("acquiring an ID for %v: %w (all %d in use)", k, ErrFull, a.max)
	}
	a.ids[k] = id
	a.keys[id] = k
	return id, nil
}

// take removes and returns the lowest free ID, or None.
func (a *Allocator[K]) take() uint32 {
	for len(a.free) > 0 {
		id := a.pop()
		if _, used := a.keys[id]; !used {
			return id
		}
	}
	for a.next <= uint64(a.max) {
		id := uint32(a.next)
		a.next++
		if _, used := a.keys[id]; !used {
			return id
		}
	}
	return None
}

// Release frees the ID of k for reuse and returns it, or returns [None] if
// k holds no ID.
func (a *Allocator[K]) Release(k K) uint32 {
	id, ok := a.ids[k]
	if !ok {
		return None
	}
	delete(a.ids, k)
	delete(a.keys, id)
	if uint64(id) < a.next {
		a.push(id)
	}
	return id
}

// Restore gives k the ID id, as found in a pinned map after a restart.
// Restoring the ID k already holds is a no-op. It fails with an error
// wrapping [ErrOutOfRange] if id is 0 or above the maximum, and with one
// wrapping [ErrConflict] if k holds another ID or id is held by another
// key; the allocator is then unchanged.
//
// Restore every ID before acquiring new ones: an ID acquired first may be
// one that a later Restore needs.
func (a *Allocator[K]) Restore(k K, id uint32) error {
	if id == None || id > a.max {
		return fmt.Errorf("restoring ID %d for %v: %w [1, %d]", id, k, ErrOutOfRange, a.max)
	}
	if cur, ok := a.ids[k]; ok {
		if cur == id {
			return nil
		}
		return fmt.Errorf("restoring ID %d for %v: %w: the key holds ID %d", id, k, ErrConflict, cur)
	}
	if other, ok := a.keys[id]; ok {
		return fmt.Errorf("restoring ID %d for %v: %w: the ID is held by %v", id, k, ErrConflict, other)
	}
	// If id is in free (released earlier), the entry goes stale and take
	// skips it; if id >= next, the counter skips it.
	a.ids[k] = id
	a.keys[id] = k
	return nil
}

// push adds id to the free min-heap.
func (a *Allocator[K]) push(id uint32) {
	h := append(a.free, id)
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if h[p] <= id {
			break
		}
		h[i] = h[p]
		i = p
	}
	h[i] = id
	a.free = h
}

// pop removes and returns the least ID of the non-empty free heap.
func (a *Allocator[K]) pop() uint32 {
	h := a.free
	top := h[0]
	last := h[len(h)-1]
	h = h[:len(h)-1]
	n := len(h)
	i := 0
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if c+1 < n && h[c+1] < h[c] {
			c++
		}
		if last <= h[c] {
			break
		}
		h[i] = h[c]
		i = c
	}
	if n > 0 {
		h[i] = last
	}
	a.free = h
	return top
}
