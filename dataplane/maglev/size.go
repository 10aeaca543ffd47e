package maglev

import (
	"slices"
	"sync"
)

const (
	// MinSize is the smallest table [TableSize] picks for a non-empty
	// backend set: a prime floor so that services with one or two backends
	// still get a table that a flow hash spreads over evenly.
	MinSize = 251

	// SlotsPerBackend is how many slots [TableSize] reserves per backend.
	// Population gives every backend either floor(size/N) or ceil(size/N)
	// slots, so with at least 100 slots per backend each backend's share is
	// within 1% of fair.
	SlotsPerBackend = 100

	// DefaultMaxSize is the default cap on a table's size (a prime). It is
	// reached at 164 backends; above that a service's balance degrades
	// gracefully (16381 slots over N backends, each within 1 slot of fair).
	DefaultMaxSize = 16381

	// PrimeTableLimit bounds the precomputed prime list. Sizes up to it are
	// answered by binary search; above it by trial division, which the list
	// covers for every uint32 (131071² > 2³²).
	PrimeTableLimit = 131071
)

// TableSize returns the size of the Maglev table for a service with the
// given number of backends: the first rung of a ladder of primes that is
// >= max(SlotsPerBackend * backends, MinSize). The rungs are the smallest
// primes >= MinSize * 2^k (251, 503, 1009, 2011, 4019, 8039, 16087, ...).
// If the rung exceeds maxSize, the result is the largest prime <= maxSize.
// A maxSize of 0 means [DefaultMaxSize].
//
// The ladder is what keeps Maglev's minimal disruption: the size (and with
// it slot = hash % size for every flow) changes only when the backend count
// crosses a rung, not at every change. Going from 10 to 9 backends keeps
// 1009 slots and moves about 11% of flows, where a size tracking 100 * N
// exactly (1009 to 907) would move about 90%. It costs at most twice the
// memory. Every node derives the same size from the same backend count.
//
// TableSize returns 0 (no table) for zero or negative backends, and when no
// prime is <= maxSize (maxSize == 1).
func TableSize(backends int, maxSize uint32) uint32 {
	if backends <= 0 {
		return 0
	}
	if maxSize == 0 {
		maxSize = DefaultMaxSize
	}
	want := uint64(MinSize)
	if backends <= int(^uint32(0)/SlotsPerBackend) {
		want = max(want, uint64(backends)*SlotsPerBackend)
	} else {
		want = uint64(^uint32(0)) + 1 // beyond any cap
	}
	for rung := uint64(MinSize); rung <= uint64(maxSize); rung *= 2 {
		p := uint64(nextPrime(uint32(rung)))
		if p == 0 || p > uint64(maxSize) {
			break
		}
		if p >= want {
			return uint32(p)
		}
	}
	return prevPrime(maxSize)
}

// IsPrime reports whether n is prime. Every non-zero table size must be.
func IsPrime(n uint32) bool {
	if n <= PrimeTableLimit {
		_, ok := slices.BinarySearch(primeList(), n)
		return ok
	}
	return isPrimeTrial(n)
}

// primeList returns the primes <= PrimeTableLimit, ascending, computed once.
var primeList = sync.OnceValue(func() []uint32 {
	composite := make([]bool, PrimeTableLimit+1)
	primes := make([]uint32, 0, 12251) // π(131071) = 12251
	for i := uint32(2); i <= PrimeTableLimit; i++ {
		if composite[i] {
			continue
		}
		primes = append(primes, i)
		for j := uint64(i) * uint64(i); j <= PrimeTableLimit; j += uint64(i) {
			composite[j] = true
		}
	}
	return primes
})

// isPrimeTrial tests n by trial division with the precomputed primes.
func isPrimeTrial(n uint32) bool {
	if n < 2 {
		return false
	}
	for _, p := range primeList() {
		if uint64(p)*uint64(p) > uint64(n) {
			break
		}
		if n%p == 0 {
			return false
		}
	}
	return true
}

// nextPrime returns the smallest prime >= n, or 0 if there is none in
// uint32 range.
func nextPrime(n uint32) uint32 {
	if n <= PrimeTableLimit {
		primes := primeList()
		i, _ := slices.BinarySearch(primes, n)
		if i < len(primes) {
			return primes[i]
		}
		n = PrimeTableLimit + 1
	}
	for c := uint64(n); c <= uint64(^uint32(0)); c++ {
		if isPrimeTrial(uint32(c)) {
			return uint32(c)
		}
	}
	return 0
}

// prevPrime returns the largest prime <= n, or 0 if n < 2.
func prevPrime(n uint32) uint32 {
	if n <= PrimeTableLimit {
		primes := primeList()
		i, found := slices.BinarySearch(primes, n)
		if found {
			return primes[i]
		}
		if i == 0 {
			return 0
		}
		return primes[i-1]
	}
	for c := n; c > PrimeTableLimit; c-- {
		if isPrimeTrial(c) {
			return c
		}
	}
	return PrimeTableLimit // prime
}
