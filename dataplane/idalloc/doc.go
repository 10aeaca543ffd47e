// Package idalloc hands out the small integer IDs that index the
// dataplane's BPF arrays (backend IDs, service IDs, ...).
//
// It owns the mapping between keys (anything comparable, such as a
// model.BackendKey) and IDs in [1, max], where max is the last index of the
// BPF array the IDs address and ID 0 is reserved to mean "none": a zeroed
// map value never designates a live object. It owns nothing else: it does
// not touch BPF maps. The caller writes and deletes map entries for the
// IDs it acquires and releases, and on restart feeds the IDs it finds in
// pinned maps back with [Allocator.Restore] so that live entries keep their
// IDs across agent restarts.
//
// Released IDs are reused, lowest first, so the live IDs stay dense at the
// bottom of the array. Reuse is immediate: a caller whose BPF state (such
// as connection tracking entries) may still name a released ID must purge
// that state before the ID is acquired again. Every operation is O(log n)
// or better, amortized.
//
// An [Allocator] is not safe for concurrent use; the caller (normally the
// single goroutine that programs the dataplane) serializes access.
package idalloc
