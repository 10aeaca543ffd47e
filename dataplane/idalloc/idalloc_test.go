package idalloc

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/straitlb/strait/model"
)

func mustAcquire[K comparable](t *testing.T, a *Allocator[K], k K, want uint32) {
	t.Helper()
	id, err := a.Acquire(k)
	if err != nil || id != want {
		t.Fatalf("Acquire(%v) = %d, %v; want %d", k, id, err, want)
	}
}

func TestAcquireRelease(t *testing.T) {
	a := New[string](3)
	mustAcquire(t, a, "a", 1)
	mustAcquire(t, a, "b", 2)
	mustAcquire(t, a, "a", 1) // existing key keeps its ID
	mustAcquire(t, a, "c", 3)
	if a.Len() != 3 {
		t.Errorf("Len = %d", a.Len())
	}
	_, err := a.Acquire("d")
	if !errors.Is(err, ErrFull) {
		t.Fatalf("Acquire on a full allocator: %v", err)
	}
	t.Logf("full: %v", err)
	if id, ok := a.Lookup("d"); ok || id != None {
		t.Errorf("failed Acquire left d = %d", id)
	}
	if got := a.Release("b"); got != 2 {
		t.Errorf("Release(b) = %d", got)
	}
	if got := a.Release("b"); got != None {
		t.Errorf("second Release(b) = %d", got)
	}
	if _, ok := a.Lookup("b"); ok {
		t.Errorf("b still has an ID")
	}
	if _, ok := a.Key(2); ok {
		t.Errorf("ID 2 still has a key")
	}
	mustAcquire(t, a, "d", 2)
	if k, ok := a.Key(2); !ok || k != "d" {
		t.Errorf("Key(2) = %q, %v", k, ok)
	}
	// Lowest released first.
	a.Release("c")
	a.Release("a")
	mustAcquire(t, a, "e", 1)
	mustAcquire(t, a, "f", 3)
	got := map[string]uint32{}
	for k, id := range a.All() {
		got[k] = id
	}
	if fmt.Sprint(got) != "map[d:2 e:1 f:3]" {
		t.Errorf("All = %v", got)
	}
}

func TestZeroMax(t *testing.T) {
	a := New[int](0)
	if _, err := a.Acquire(1); !errors.Is(err, ErrFull) {
		t.Errorf("Acquire with max 0: %v", err)
	}
	if err := a.Restore(1, 1); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("Restore with max 0: %v", err)
	}
}

func TestMaxUint32(t *testing.T) {
	a := New[int](^uint32(0))
	if err := a.Restore(1, ^uint32(0)); err != nil {
		t.Fatal(err)
	}
	mustAcquire(t, a, 2, 1)
	a.next = uint64(^uint32(0)) - 1 // pretend the rest was handed out
	mustAcquire(t, a, 3, ^uint32(0)-1)
	if _, err := a.Acquire(4); !errors.Is(err, ErrFull) {
		t.Fatalf("Acquire past the top: %v", err)
	}
}

func TestRestore(t *testing.T) {
	a := New[string](10)
	for _, c := range []struct {
		k    string
		id   uint32
		want error
	}{
		{"a", 5, nil},
		{"a", 5, nil}, // idempotent
		{"b", 2, nil},
		{"a", 6, ErrConflict}, // key holds another ID
		{"c", 5, ErrConflict}, // ID held by another key
		{"c", 0, ErrOutOfRange},
		{"c", 11, ErrOutOfRange},
		{"c", 10, nil},
	} {
		err := a.Restore(c.k, c.id)
		if !errors.Is(err, c.want) || (err == nil) != (c.want == nil) {
			t.Errorf("Restore(%q, %d) = %v, want %v", c.k, c.id, err, c.want)
		} else if err != nil {
			t.Logf("Restore(%q, %d): %v", c.k, c.id, err)
		}
	}
	if id, _ := a.Lookup("a"); id != 5 {
		t.Errorf("a = %d after conflicts", id)
	}
	// Acquire fills the gaps around restored IDs, lowest first.
	for _, want := range []uint32{1, 3, 4, 6, 7, 8, 9} {
		mustAcquire(t, a, fmt.Sprint("n", want), want)
	}
	if _, err := a.Acquire("x"); !errors.Is(err, ErrFull) {
		t.Fatalf("expected full: %v", err)
	}
	// Released, then restored to another key before reuse: the stale free
	// entry is skipped.
	a.Release("n3")
	a.Release("n1")
	if err := a.Restore("r", 1); err != nil {
		t.Fatal(err)
	}
	mustAcquire(t, a, "y", 3)
	if _, err := a.Acquire("z"); !errors.Is(err, ErrFull) {
		t.Fatalf("expected full: %v", err)
	}
	// A restored ID above the counter, released, is reused in order.
	b := New[string](10)
	b.Restore("hi", 8)
	b.Release("hi")
	for want := uint32(1); want <= 10; want++ {
		mustAcquire(t, b, fmt.Sprint(want), want)
	}
}

// reference is the obvious O(max) allocator the real one must agree with.
type reference struct {
	max   uint32
	owner map[uint32]int
	ids   map[int]uint32
}

func (r *reference) acquire(k int) (uint32, bool) {
	if id, ok := r.ids[k]; ok {
		return id, true
	}
	for id := uint32(1); id <= r.max; id++ {
		if _, used := r.owner[id]; !used {
			r.owner[id], r.ids[k] = k, id
			return id, true
		}
	}
	return 0, false
}

func TestAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		maxID := uint32(1 + rng.IntN(200))
		a := New[int](maxID)
		ref := &reference{max: maxID, owner: map[uint32]int{}, ids: map[int]uint32{}}
		for step := range 5000 {
			k := rng.IntN(int(maxID) * 2)
			switch op := rng.IntN(10); {
			case op < 5:
				id, err := a.Acquire(k)
				want, ok := ref.acquire(k)
				if id != want || (err == nil) != ok || (err != nil && !errors.Is(err, ErrFull)) {
					t.Fatalf("round %d step %d: Acquire(%d) = %d, %v; want %d, %v", round, step, k, id, err, want, ok)
				}
			case op < 9:
				want := ref.ids[k]
				if got := a.Release(k); got != want {
					t.Fatalf("round %d step %d: Release(%d) = %d, want %d", round, step, k, got, want)
				}
				if want != 0 {
					delete(ref.owner, want)
					delete(ref.ids, k)
				}
			default:
				id := uint32(rng.IntN(int(maxID) + 2))
				err := a.Restore(k, id)
				cur, hasID := ref.ids[k]
				_, taken := ref.owner[id]
				var want error
				switch {
				case id == 0 || id > maxID:
					want = ErrOutOfRange
				case hasID && cur == id:
				case hasID || taken:
					want = ErrConflict
				default:
					ref.owner[id], ref.ids[k] = k, id
				}
				if !errors.Is(err, want) || (err == nil) != (want == nil) {
					t.Fatalf("round %d step %d: Restore(%d, %d) = %v, want %v", round, step, k, id, err, want)
				}
			}
			if a.Len() != len(ref.ids) {
				t.Fatalf("round %d step %d: Len = %d, want %d", round, step, a.Len(), len(ref.ids))
			}
		}
		for k, id := range ref.ids {
			if got, ok := a.Lookup(k); !ok || got != id {
				t.Fatalf("round %d: Lookup(%d) = %d, want %d", round, k, got, id)
			}
			if got, ok := a.Key(id); !ok || got != k {
				t.Fatalf("round %d: Key(%d) = %d, want %d", round, id, got, k)
			}
		}
	}
}

func backendKey(i int) model.BackendKey {
	return model.BackendKey{
		Addr: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}),
		Port: 8080,
	}
}

// BenchmarkAcquireRelease churns one backend in and out of an allocator
// holding 100,000.
func BenchmarkAcquireRelease(b *testing.B) {
	const n = 100000
	a := New[model.BackendKey](1 << 20)
	keys := make([]model.BackendKey, n)
	for i := range keys {
		keys[i] = backendKey(i)
		if _, err := a.Acquire(keys[i]); err != nil {
			b.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for b.Loop() {
		k := keys[rng.IntN(n)]
		a.Release(k)
		if _, err := a.Acquire(k); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFill acquires 100,000 IDs in a fresh allocator.
func BenchmarkFill(b *testing.B) {
	const n = 100000
	keys := make([]model.BackendKey, n)
	for i := range keys {
		keys[i] = backendKey(i)
	}
	for b.Loop() {
		a := New[model.BackendKey](1 << 20)
		for _, k := range keys {
			if _, err := a.Acquire(k); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkRestore restores 100,000 scattered IDs, as after a restart.
func BenchmarkRestore(b *testing.B) {
	const n = 100000
	keys := make([]model.BackendKey, n)
	ids := rand.New(rand.NewPCG(3, 4)).Perm(1 << 18)[:n]
	for i := range keys {
		keys[i] = backendKey(i)
	}
	for b.Loop() {
		a := New[model.BackendKey](1 << 20)
		for i, k := range keys {
			if err := a.Restore(k, uint32(ids[i]+1)); err != nil {
				b.Fatal(err)
			}
		}
	}
}
