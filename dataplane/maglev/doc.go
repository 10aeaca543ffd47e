// Package maglev computes Maglev consistent-hashing lookup tables
// (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
// Balancer", NSDI'16) for the eBPF datapath.
//
// The package owns three things and nothing else:
//
//   - the choice of table size ([TableSize]): a prime of at least 100 slots
//     per backend, so that every backend gets its fair share of slots within
//     1%, bounded by a cap that is the size of the BPF map slot array;
//   - the backend hashes: two deterministic 64-bit hashes of a
//     [model.BackendKey] (see [Hashes] for the exact byte encoding), which are
//     the same on every node, every run and every CPU architecture;
//   - table population ([Build], [Fill], [Builder]): the permutation
//     round-robin of the paper.
//
// A table depends only on the set of backend keys and the table size: not on
// the order in which backends are given, nor on node-local backend IDs. Two
// nodes that agree on a service's backends therefore pick the same backend
// for the same flow hash, so a flow that moves between nodes (ECMP rehash,
// node failure) keeps its backend without shared connection state. (Nodes
// must also agree on the size cap passed to [TableSize].)
//
// The BPF program only indexes a table: slot = flow_hash % size. It never
// computes hashes of backends nor populates anything.
//
// Everything here is pure computation with no I/O; functions are safe for
// concurrent use, a [Builder] is not.
package maglev
