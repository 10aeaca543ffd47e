package maglev

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/straitlb/strait/model"
)

// podBackends returns n backends as a Kubernetes cluster assigns them:
// consecutive pod addresses, one port.
func podBackends(n int) []model.BackendKey {
	ks := make([]model.BackendKey, n)
	for i := range ks {
		ks[i] = model.BackendKey{
			Addr: netip.AddrFrom4([4]byte{10, 244, byte(i / 250), byte(i%250 + 2)}),
			Port: 8080,
		}
	}
	return ks
}

// randomBackends returns n distinct pseudo-random IPv4 and IPv6 backends.
func randomBackends(r *rand.Rand, n int) []model.BackendKey {
	seen := make(map[model.BackendKey]bool, n)
	ks := make([]model.BackendKey, 0, n)
	for len(ks) < n {
		var k model.BackendKey
		if r.IntN(2) == 0 {
			var a [4]byte
			for i := range a {
				a[i] = byte(r.Uint32())
			}
			k.Addr = netip.AddrFrom4(a)
		} else {
			var a [16]byte
			for i := range a {
				a[i] = byte(r.Uint32())
			}
			k.Addr = netip.AddrFrom16(a)
		}
		k.Port = uint16(r.Uint32())
		if !seen[k] {
			seen[k] = true
			ks = append(ks, k)
		}
	}
	return ks
}

// backendSets are the kinds of backend sets the property tests run over.
var backendSets = []struct {
	name string
	make func(n int) []model.BackendKey
}{
	{"pods", podBackends},
	{"random", func(n int) []model.BackendKey {
		return randomBackends(rand.New(rand.NewPCG(uint64(n), 42)), n)
	}},
}

// reference is Pseudocode 1 of the Maglev paper, transcribed literally with
// an explicit permutation matrix, over backends in the order given.
func reference(backends []model.BackendKey, m uint32) []int {
	n := len(backends)
	perm := make([][]uint32, n)
	for i, k := range backends {
		h1, h2 := Hashes(k)
		offset := h1 % uint64(m)
		skip := h2%uint64(m-1) + 1
		perm[i] = make([]uint32, m)
		for j := range uint64(m) {
			perm[i][j] = uint32((offset + j*skip) % uint64(m))
		}
	}
	next := make([]uint32, n)
	entry := make([]int, m)
	for j := range entry {
		entry[j] = -1
	}
	var filled uint32
	for {
		for i := range n {
			c := perm[i][next[i]]
			for entry[c] >= 0 {
				next[i]++
				c = perm[i][next[i]]
			}
			entry[c] = i
			next[i]++
			filled++
			if filled == m {
				return entry
			}
		}
	}
}

func counts(table []int, n int) []int {
	c := make([]int, n)
	for _, b := range table {
		c[b]++
	}
	return c
}

func TestHashGolden(t *testing.T) {
	// With seed 0, fnv1a is the standard FNV-1a 64.
	for _, s := range []string{"", "a", "10.0.0.1:80", "\x00\xff"} {
		h := fnv.New64a()
		h.Write([]byte(s))
		if got, want := fnv1a(0, []byte(s)), h.Sum64(); got != want {
			t.Errorf("fnv1a(0, %q) = %#x, want %#x", s, got, want)
		}
	}
	// Pinned values: these must never change (see the hash constants).
	for _, c := range []struct {
		key    model.BackendKey
		h1, h2 uint64
	}{
		{model.BackendKey{Addr: netip.MustParseAddr("10.0.0.1"), Port: 80}, 0xfbd5cbc561f8d8eb, 0xd8d474a0b780fffd},
		{model.BackendKey{Addr: netip.MustParseAddr("10.0.0.2"), Port: 80}, 0x9df2371dc79c1210, 0x3b7228c83cedcd8e},
		{model.BackendKey{Addr: netip.MustParseAddr("fd00::3"), Port: 8080}, 0x8f6d6d8074e3b5c0, 0x811c460e2977cf29},
	} {
		h1, h2 := Hashes(c.key)
		if h1 != c.h1 || h2 != c.h2 {
			t.Errorf("Hashes(%v) = %#x, %#x; want %#x, %#x", c.key, h1, h2, c.h1, c.h2)
		}
	}
	// The zone is not hashed; an IPv4-mapped address is not an IPv4 one.
	a := model.BackendKey{Addr: netip.MustParseAddr("fe80::1"), Port: 1}
	b := model.BackendKey{Addr: netip.MustParseAddr("fe80::1%eth0"), Port: 1}
	if h1a, h2a := Hashes(a); true {
		if h1b, h2b := Hashes(b); h1a != h1b || h2a != h2b {
			t.Errorf("zone changed the hashes")
		}
	}
	v4 := model.BackendKey{Addr: netip.MustParseAddr("10.0.0.1"), Port: 80}
	mapped := model.BackendKey{Addr: netip.MustParseAddr("::ffff:10.0.0.1"), Port: 80}
	if h1, _ := Hashes(v4); h1 == func() uint64 { h, _ := Hashes(mapped); return h }() {
		t.Errorf("IPv4 and IPv4-mapped keys hash alike")
	}
}

func TestBuildGolden(t *testing.T) {
	// Three backends, 13 slots, worked by hand from the pinned hashes above.
	//
	//   backend (key order)  offset=h1%13  skip=h2%12+1  permutation
	//   0 10.0.0.1:80         9             6             9 2 8 1 7 0 6 12 5 11 4 10 3
	//   1 10.0.0.2:80         1            11             1 12 10 8 6 4 2 0 11 9 7 5 3
	//   2 [fd00::3]:8080      7             2             7 9 11 0 2 4 6 8 10 12 1 3 5
	//
	//   round 1: 0 takes 9; 1 takes 1; 2 takes 7
	//   round 2: 0 takes 2; 1 takes 12; 2 skips 9, takes 11
	//   round 3: 0 takes 8; 1 takes 10; 2 takes 0
	//   round 4: 0 skips 1 7 0, takes 6; 1 skips 8 6, takes 4;
	//            2 skips 2 4 6 8 10 12 1, takes 3
	//   round 5: 0 skips 12, takes 5; the table is full.
	keys := []model.BackendKey{
		{Addr: netip.MustParseAddr("10.0.0.1"), Port: 80},
		{Addr: netip.MustParseAddr("10.0.0.2"), Port: 80},
		{Addr: netip.MustParseAddr("fd00::3"), Port: 8080},
	}
	want := []int{2, 1, 0, 2, 1, 0, 0, 2, 0, 0, 1, 2, 1}
	if got := Build(keys, 13); !slices.Equal(got, want) {
		t.Errorf("Build = %v, want %v", got, want)
	}
	// Reversed input: same keys per slot, so indexes map 0<->2.
	rev := []model.BackendKey{keys[2], keys[1], keys[0]}
	got := Build(rev, 13)
	for s := range got {
		if rev[got[s]] != keys[want[s]] {
			t.Fatalf("reversed input: slot %d is %v, want %v", s, rev[got[s]], keys[want[s]])
		}
	}
	ids := []uint32{100, 200, 300}
	dst := make([]uint32, 13)
	Fill(dst, keys, ids)
	for s := range dst {
		if dst[s] != ids[want[s]] {
			t.Fatalf("Fill: slot %d = %d, want %d", s, dst[s], ids[want[s]])
		}
	}
}

func TestBuildMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, m := range []uint32{2, 3, 5, 13, 251, 1009, 4099} {
		for _, n := range []int{1, 2, 3, 7, 10, 31, 100} {
			keys := randomBackends(r, n)
			sorted := slices.Clone(keys)
			slices.SortFunc(sorted, model.BackendKey.Compare)
			want := reference(sorted, m)
			got := Build(keys, m)
			for s := range want {
				if keys[got[s]] != sorted[want[s]] {
					t.Fatalf("m=%d n=%d: slot %d is %v, reference says %v", m, n, s, keys[got[s]], sorted[want[s]])
				}
			}
		}
	}
}

func TestBalance(t *testing.T) {
	type tc struct {
		n   int
		cap uint32
	}
	var cases []tc
	for n := 1; n <= 50; n++ {
		cases = append(cases, tc{n, 0})
	}
	for _, n := range []int{100, 163, 200, 500, 1000} {
		cases = append(cases, tc{n, PrimeTableLimit})
	}
	for _, set := range backendSets {
		worst := 0.0
		for _, c := range cases {
			keys := set.make(c.n)
			m := TableSize(c.n, c.cap)
			if m < uint32(SlotsPerBackend*c.n) {
				t.Fatalf("TableSize(%d, %d) = %d < %d", c.n, c.cap, m, SlotsPerBackend*c.n)
			}
			fair := float64(m) / float64(c.n)
			for i, cnt := range counts(Build(keys, m), c.n) {
				// Population hands out slots one round at a time, so each
				// backend has floor or ceil of the fair share.
				if cnt != int(m)/c.n && cnt != (int(m)+c.n-1)/c.n {
					t.Errorf("%s n=%d m=%d: backend %d has %d slots, fair %.2f", set.name, c.n, m, i, cnt, fair)
				}
				dev := abs(float64(cnt)-fair) / fair
				worst = max(worst, dev)
				if dev >= 0.01 {
					t.Errorf("%s n=%d m=%d: backend %d has %d slots, %.3f%% off fair %.2f", set.name, c.n, m, i, cnt, 100*dev, fair)
				}
			}
		}
		t.Logf("%s: worst deviation from fair share %.3f%%", set.name, 100*worst)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// TestDisruption removes each backend in turn (for N > 20, about 11 of
// them spread over the key order) from sets of N = 5..100 backends, keeping the table size, and counts the slots that change
// backend although their backend was not the removed one. Ideal consistent
// hashing moves none of them; Maglev trades some of that for balance, and
// the trade depends on the slots per backend, not on the hash (truly random
// offsets and skips measured the same).
//
// Measured with TableSize(N, 0) slots (~100 per backend), over these
// removals and both backend sets: worst 4.25% of the table (pods, N=12;
// random: 4.11%, N=18), mean 2.0%. Asserted: worst < 6%, mean < 2.5%.
// So removing 1 of 10 backends moves the removed backend's 10% of slots
// plus about 2% more. (With ~1000 slots per backend the extra drops to
// about 0.6%, worst 0.9%.)
func TestDisruption(t *testing.T) {
	const worstBound, meanBound = 0.06, 0.025
	var b Builder
	for _, set := range backendSets {
		worst, sum, runs := 0.0, 0.0, 0
		worstN := 0
		for n := 5; n <= 100; n++ {
			keys := set.make(n)
			m := TableSize(n, 0)
			before := b.Build(keys, m)
			rest := make([]model.BackendKey, n-1)
			for r := range n {
				if n > 20 && r%(n/10) != 0 && r != n-1 {
					continue // sample about 11 removals of large sets, to keep the test fast
				}
				copy(rest, keys[:r])
				copy(rest[r:], keys[r+1:])
				after := b.Build(rest, m)
				extra := 0
				for s, old := range before {
					if old == r {
						continue
					}
					now := after[s]
					if now >= r {
						now++ // index in keys
					}
					if now != old {
						extra++
					}
				}
				frac := float64(extra) / float64(m)
				sum += frac
				runs++
				if frac > worst {
					worst, worstN = frac, n
				}
				if frac >= worstBound {
					t.Errorf("%s n=%d m=%d removing %d: %.2f%% of slots moved needlessly", set.name, n, m, r, 100*frac)
				}
			}
		}
		mean := sum / float64(runs)
		t.Logf("%s: extra disruption worst %.3f%% (N=%d), mean %.3f%%", set.name, 100*worst, worstN, 100*mean)
		if mean >= meanBound {
			t.Errorf("%s: mean extra disruption %.3f%%", set.name, 100*mean)
		}
	}
}

func TestOrderIndependence(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 2, 10, 57} {
		keys := randomBackends(r, n)
		m := TableSize(n, 0)
		want := Build(keys, m)
		ids := make([]uint32, n)
		for i := range ids {
			ids[i] = uint32(1000 + i)
		}
		for range 5 {
			perm := r.Perm(n)
			shuffled := make([]model.BackendKey, n)
			sids := make([]uint32, n)
			for i, p := range perm {
				shuffled[i], sids[i] = keys[p], ids[p]
			}
			got := Build(shuffled, m)
			dst := make([]uint32, m)
			Fill(dst, shuffled, sids)
			for s := range want {
				if shuffled[got[s]] != keys[want[s]] {
					t.Fatalf("n=%d: slot %d differs after shuffle", n, s)
				}
				if dst[s] != ids[want[s]] {
					t.Fatalf("n=%d: Fill slot %d = %d, want %d", n, s, dst[s], ids[want[s]])
				}
			}
		}
	}
}

func TestDuplicates(t *testing.T) {
	keys := podBackends(5)
	dup := append(slices.Clone(keys), keys[3], keys[0])
	m := TableSize(5, 0)
	want, got := Build(keys, m), Build(dup, m)
	if !slices.Equal(got, want) {
		t.Errorf("duplicates changed the table")
	}
	// The lowest-indexed duplicate wins regardless of where it is.
	dup2 := append([]model.BackendKey{keys[4]}, keys...)
	for s, i := range Build(dup2, m) {
		if i == 5 {
			t.Fatalf("slot %d names the higher-indexed duplicate", s)
		}
		if dup2[i] != keys[want[s]] {
			t.Fatalf("slot %d: wrong key", s)
		}
	}
}

func TestEdgeCases(t *testing.T) {
	if got := Build(nil, 13); got != nil {
		t.Errorf("Build(nil, 13) = %v", got)
	}
	if got := Build(podBackends(3), 0); got != nil {
		t.Errorf("Build(_, 0) = %v", got)
	}
	dst := []uint32{7, 7, 7, 7, 7}
	Fill(dst, nil, nil)
	if !slices.Equal(dst, make([]uint32, 5)) {
		t.Errorf("Fill with no backends left %v", dst)
	}
	// More backends than slots: every slot is taken, by the first in key order.
	keys := podBackends(20)
	if got := Build(keys, 7); !slices.Equal(counts(got, 20), append(slices.Repeat([]int{1}, 7), make([]int, 13)...)) {
		t.Errorf("Build(20 backends, 7) = %v", got)
	}
	for _, size := range []uint32{1, 4, 1000, 1 << 20} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Build with size %d did not panic", size)
				}
			}()
			Build(keys, size)
		}()
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Errorf("Fill with mismatched ids did not panic")
			}
		}()
		Fill(make([]uint32, 13), keys, make([]uint32, 3))
	}()
}

func TestFillDoesNotAllocate(t *testing.T) {
	keys := podBackends(10)
	ids := make([]uint32, 10)
	dst := make([]uint32, TableSize(10, 0))
	var b Builder
	if n := testing.AllocsPerRun(100, func() { b.Fill(dst, keys, ids) }); n != 0 {
		t.Errorf("Builder.Fill allocates %v times per run", n)
	}
}

func isPrimeSlow(n uint32) bool {
	if n < 2 {
		return false
	}
	for d := uint32(2); uint64(d)*uint64(d) <= uint64(n); d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

func TestIsPrime(t *testing.T) {
	for n := range uint32(PrimeTableLimit + 5000) {
		if IsPrime(n) != isPrimeSlow(n) {
			t.Fatalf("IsPrime(%d) = %v", n, IsPrime(n))
		}
	}
	for _, n := range []uint32{4294967291, 4294967295, 4294967279, 65537 * 65537 % 4294967296, 65521 * 65519, 131071 * 32749} {
		if IsPrime(n) != isPrimeSlow(n) {
			t.Errorf("IsPrime(%d) = %v", n, IsPrime(n))
		}
	}
}

func TestTableSize(t *testing.T) {
	for _, c := range []struct {
		backends int
		max      uint32
		want     uint32
	}{
		{0, 0, 0},
		{-1, 0, 0},
		{1, 0, MinSize},
		{2, 0, MinSize},
		{3, 0, 503},
		{5, 0, 503},
		{6, 0, 1009},
		{9, 0, 1009},
		{10, 0, 1009},
		{11, 0, 2011},
		{50, 0, 8039},
		{80, 0, 8039},
		{81, 0, 16067},
		{160, 0, 16067},
		{161, 0, DefaultMaxSize},
		{100000, 0, DefaultMaxSize},
		{1 << 40, 0, DefaultMaxSize},
		{10, 500, 499},
		{1, 100, 97},
		{1, 2, 2},
		{1, 1, 0},
		{1000, PrimeTableLimit, 128519},
		{2000, PrimeTableLimit, PrimeTableLimit},
		{2000, 1 << 20, 257053},
	} {
		if got := TableSize(c.backends, c.max); got != c.want {
			t.Errorf("TableSize(%d, %d) = %d, want %d", c.backends, c.max, got, c.want)
		}
	}
	// Against the definition, for every backend count up to past the
	// default cap and a few caps.
	next := func(c uint32) uint32 {
		for ; !isPrimeSlow(c); c++ {
		}
		return c
	}
	for _, maxSize := range []uint32{0, 2, 300, 1000, 16380, 16381, 50000, 200000} {
		capped := maxSize
		if capped == 0 {
			capped = DefaultMaxSize
		}
		for n := 1; n <= 2100; n++ {
			want := uint32(0)
			for rung := uint32(MinSize); rung <= capped; rung *= 2 {
				if p := next(rung); p <= capped && p >= uint32(max(MinSize, 100*n)) {
					want = p
					break
				}
			}
			if want == 0 {
				for c := capped; c >= 2; c-- {
					if isPrimeSlow(c) {
						want = c
						break
					}
				}
			}
			if got := TableSize(n, maxSize); got != want {
				t.Fatalf("TableSize(%d, %d) = %d, want %d", n, maxSize, got, want)
			}
		}
	}
}

// Removing one backend keeps the table size within a rung, so flows move
// only as far as Maglev's minimal disruption says.
func TestLadderKeepsSizeOnSmallChanges(t *testing.T) {
	if TableSize(10, 0) != TableSize(9, 0) || TableSize(9, 0) != TableSize(6, 0) {
		t.Fatal("sizes differ within a rung")
	}
}

// TestResizeDisruption documents what happens when a backend change also
// changes the table size: slot indexes no longer line up, and most flow
// hashes move to another backend. It asserts nothing beyond sanity.
func TestResizeDisruption(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{5, 10, 50} {
		keys := podBackends(n)
		rest := keys[:n-1]
		m1, m2 := TableSize(n, 0), TableSize(n-1, 0)
		t1, t2 := Build(keys, m1), Build(rest, m1)
		t3 := Build(rest, m2)
		var same, resized int
		const flows = 100000
		for range flows {
			h := r.Uint32()
			old := keys[t1[h%m1]]
			if old != rest[t2[h%m1]] {
				same++
			}
			if old != rest[t3[h%m2]] {
				resized++
			}
		}
		t.Logf("N=%d -> %d: flows moved %.1f%% keeping %d slots, %.1f%% resizing to %d", n, n-1,
			100*float64(same)/flows, m1, 100*float64(resized)/flows, m2)
	}
}

// benchSets returns distinct sets of n random backends. Benchmarks cycle
// through them: rebuilding one table over and over lets the branch
// predictor learn its fill pattern and reports about half the real cost.
func benchSets(n int) [][]model.BackendKey {
	r := rand.New(rand.NewPCG(uint64(n), 7))
	sets := make([][]model.BackendKey, max(1, 10000/n))
	for i := range sets {
		sets[i] = randomBackends(r, n)
	}
	return sets
}

func BenchmarkBuild(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		sets := benchSets(n)
		m := TableSize(n, 0)
		b.Run(fmt.Sprintf("n=%d/m=%d", n, m), func(b *testing.B) {
			i := 0
			for b.Loop() {
				Build(sets[i%len(sets)], m)
				i++
			}
		})
	}
}

func BenchmarkFill(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		sets := benchSets(n)
		ids := make([]uint32, n)
		m := TableSize(n, 0)
		dst := make([]uint32, m)
		b.Run(fmt.Sprintf("n=%d/m=%d", n, m), func(b *testing.B) {
			var bld Builder
			i := 0
			for b.Loop() {
				bld.Fill(dst, sets[i%len(sets)], ids)
				i++
			}
		})
		if n != 10 {
			continue
		}
		b.Run(fmt.Sprintf("pooled/n=%d/m=%d", n, m), func(b *testing.B) {
			i := 0
			for b.Loop() {
				Fill(dst, sets[i%len(sets)], ids)
				i++
			}
		})
		b.Run(fmt.Sprintf("same-table/n=%d/m=%d", n, m), func(b *testing.B) {
			var bld Builder
			for b.Loop() {
				bld.Fill(dst, sets[0], ids)
			}
		})
	}
}

// BenchmarkColdStart fills the tables of 10,000 services with 10 backends
// each, as a node does when it starts.
func BenchmarkColdStart(b *testing.B) {
	const services, perService = 10000, 10
	keys := make([][]model.BackendKey, services)
	ids := make([][]uint32, services)
	r := rand.New(rand.NewPCG(7, 8))
	for i := range keys {
		keys[i] = randomBackends(r, perService)
		ids[i] = make([]uint32, perService)
	}
	var dst []uint32
	for b.Loop() {
		var bld Builder
		for i := range keys {
			m := TableSize(len(keys[i]), 0)
			dst = slices.Grow(dst[:0], int(m))[:m]
			bld.Fill(dst, keys[i], ids[i])
		}
	}
}

func BenchmarkTableSize(b *testing.B) {
	primeList() // exclude the one-time sieve
	n := 0
	for b.Loop() {
		n = n%2000 + 1
		TableSize(n, 0)
	}
}

func BenchmarkTableSizeLarge(b *testing.B) {
	primeList()
	n := 0
	for b.Loop() {
		n = n%100000 + 2000
		TableSize(n, ^uint32(0))
	}
}
