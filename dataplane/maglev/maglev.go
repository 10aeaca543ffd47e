package maglev

import (
	"fmt"
	"slices"
	"sync"

	"github.com/straitlb/strait/model"
)

// Hash parameters. Changing any of them changes every table on every node;
// a cluster whose nodes run different versions would then disagree on
// backends for the same flow until all nodes are upgraded. Treat them as a
// wire format.
const (
	fnvOffset64 = 0xcbf29ce484222325
	fnvPrime64  = 0x100000001b3

	// Seed1 and Seed2 are XORed into the FNV-1a offset basis for the
	// offset hash and the skip hash respectively.
	Seed1 = 0x9e3779b97f4a7c15
	Seed2 = 0xc2b2ae3d27d4eb4f
)

// Hashes returns the two hashes of a backend key that determine its
// permutation: offset = h1 % size and skip = h2 % (size-1) + 1.
//
// Each hash is FNV-1a 64 whose offset basis is XORed with a seed ([Seed1]
// for h1, [Seed2] for h2), run over the key's bytes, followed by the
// MurmurHash3 fmix64 finalizer (in bare FNV the low bits of the hash
// depend only on the low bits of the input bytes, since multiplication
// carries upwards only). The key's bytes
// are the address in network order, 4 bytes for an IPv4 address and 16
// bytes for anything else (an IPv4-mapped IPv6 address is hashed as 16
// bytes, the zero Addr as 16 zero bytes), then the port as 2 bytes big
// endian. The address zone is not hashed.
//
// The encoding is independent of byte order and word size, so every node
// computes the same hashes.
func Hashes(k model.BackendKey) (h1, h2 uint64) {
	var buf [18]byte
	var b []byte
	if k.Addr.Is4() {
		a := k.Addr.As4()
		b = append(buf[:0], a[:]...)
	} else {
		a := k.Addr.As16()
		b = append(buf[:0], a[:]...)
	}
	b = append(b, byte(k.Port>>8), byte(k.Port))
	return hash(Seed1, b), hash(Seed2, b)
}

func hash(seed uint64, b []byte) uint64 { return fmix64(fnv1a(seed, b)) }

// fnv1a is FNV-1a 64 with seed XORed into the offset basis; with seed 0 it
// is standard FNV-1a 64 (hash/fnv.New64a).
func fnv1a(seed uint64, b []byte) uint64 {
	h := uint64(fnvOffset64) ^ seed
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime64
	}
	return h
}

// fmix64 is the MurmurHash3 64-bit finalizer.
func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// Build returns the Maglev lookup table of the given size for backends:
// entry s is the index, in backends, of the backend that slot s selects.
//
// The result depends only on the set of keys and on size, not on the order
// of backends: permuting the input permutes the indexes but each slot
// designates the same key. Backends take their turns in ascending
// [model.BackendKey.Compare] order. Duplicate keys count once; their slots
// name the duplicate with the lowest index.
//
// size must be 0 or a prime (see [TableSize]); Build panics otherwise. It
// returns nil when size is 0 or backends is empty. If size is smaller than
// the number of distinct backends, the backends that come last in key order
// get no slot.
func Build(backends []model.BackendKey, size uint32) []int {
	b := builderPool.Get().(*Builder)
	defer builderPool.Put(b)
	return b.Build(backends, size)
}

// Fill writes into dst the Maglev table of size len(dst) for backends,
// storing ids[i] for a slot that selects backends[i]: typically ids are
// the node-local backend IDs and dst is the slot array written to the BPF
// map. ids must have the same length as backends. Slots are assigned as by
// [Build]; with duplicate keys, the id of the lowest-indexed duplicate is
// used. If backends is empty, dst is zeroed (ID 0 means "no backend").
//
// len(dst) must be 0 or a prime; Fill panics otherwise. Fill uses pooled
// scratch space and does not allocate in the steady state.
func Fill(dst []uint32, backends []model.BackendKey, ids []uint32) {
	b := builderPool.Get().(*Builder)
	defer builderPool.Put(b)
	b.Fill(dst, backends, ids)
}

var builderPool = sync.Pool{New: func() any { return new(Builder) }}

// A Builder holds scratch space for building tables, so that building many
// tables in a row does not allocate. The zero value is ready to use. A
// Builder must not be used by several goroutines at once.
type Builder struct {
	ents   []entry
	pos    []uint32
	skip   []uint32
	vals   []uint32
	idx    []int
	filled []bool
}

type entry struct {
	key model.BackendKey
	idx int
}

func compareEntries(a, b entry) int {
	if c := a.key.Compare(b.key); c != 0 {
		return c
	}
	return a.idx - b.idx
}

// Build is like the package-level [Build] but uses b's scratch space.
func (b *Builder) Build(backends []model.BackendKey, size uint32) []int {
	if size == 0 || len(backends) == 0 {
		checkSize(size)
		return nil
	}
	n := b.prepare(backends, size)
	b.idx = slices.Grow(b.idx[:0], n)[:n]
	for i := range n {
		b.idx[i] = b.ents[i].idx
	}
	table := make([]int, size)
	populate(table, b.idx, b.pos, b.skip, b.filled)
	return table
}

// Fill is like the package-level [Fill] but uses b's scratch space.
func (b *Builder) Fill(dst []uint32, backends []model.BackendKey, ids []uint32) {
	if len(ids) != len(backends) {
		panic(fmt.Sprintf("maglev: %d ids for %d backends", len(ids), len(backends)))
	}
	if uint64(len(dst)) > uint64(^uint32(0)) {
		panic(fmt.Sprintf("maglev: table size %d out of range", len(dst)))
	}
	size := uint32(len(dst))
	if size == 0 || len(backends) == 0 {
		checkSize(size)
		clear(dst)
		return
	}
	n := b.prepare(backends, size)
	b.vals = slices.Grow(b.vals[:0], n)[:n]
	for i := range n {
		b.vals[i] = ids[b.ents[i].idx]
	}
	populate(dst, b.vals, b.pos, b.skip, b.filled)
}

func checkSize(size uint32) {
	if size != 0 && !IsPrime(size) {
		panic(fmt.Sprintf("maglev: table size %d is not prime", size))
	}
}

// prepare sorts and deduplicates backends into b.ents, computes each
// backend's starting position and skip into b.pos and b.skip, and clears
// b.filled for a table of size slots. It returns the number of distinct
// backends. size must be non-zero and backends non-empty.
func (b *Builder) prepare(backends []model.BackendKey, size uint32) int {
	checkSize(size)
	ents := b.ents[:0]
	for i, k := range backends {
		ents = append(ents, entry{k, i})
	}
	slices.SortFunc(ents, compareEntries)
	// Keep the first (lowest index) of each run of equal keys.
	ents = slices.CompactFunc(ents, func(a, b entry) bool { return a.key == b.key })
	b.ents = ents
	n := len(ents)

	b.pos = slices.Grow(b.pos[:0], n)[:n]
	b.skip = slices.Grow(b.skip[:0], n)[:n]
	for i := range ents {
		h1, h2 := Hashes(ents[i].key)
		b.pos[i] = uint32(h1 % uint64(size))
		if size > 1 {
			b.skip[i] = uint32(h2%uint64(size-1)) + 1
		}
	}

	b.filled = slices.Grow(b.filled[:0], int(size))[:size]
	clear(b.filled)
	return n
}

// populate is the population loop of the Maglev paper (Pseudocode 1):
// backends take turns, in order, each claiming the next slot of its
// permutation (pos, pos+skip, pos+2·skip, ... mod len(dst)) that is not
// already taken, until every slot is. It writes vals[i] into the slots
// backend i claims. Because len(dst) is prime and 1 <= skip < len(dst),
// every permutation visits every slot, so the loop terminates.
//
// The walk costs about 5 probes per slot for 100 slots per backend, and
// its time goes mostly to mispredicted branches: the wrap-around is
// therefore branch-free (c + skip - size, plus size if negative), which
// measured ~25% faster than an if on tables that differ from one build to
// the next. filled must have len(dst) entries, all false.
func populate[T int | uint32](dst, vals []T, pos, skip []uint32, filled []bool) {
	m := int64(len(dst))
	remaining := len(dst)
	n := len(vals)
	if n == 1 {
		// A lone backend claims every slot; skip the walk.
		for s := range dst {
			dst[s] = vals[0]
		}
		return
	}
	pos, skip = pos[:n], skip[:n]
	filled = filled[:len(dst)]
	for {
		for i := range n {
			// sm = skip - m is negative, so c + sm is in (-m, m).
			c, sm := int64(pos[i]), int64(skip[i])-m
			for filled[c] {
				c += sm
				c += m & (c >> 63)
			}
			filled[c] = true
			dst[c] = vals[i]
			c += sm
			c += m & (c >> 63)
			pos[i] = uint32(c)
			if remaining--; remaining == 0 {
				return
			}
		}
	}
}
