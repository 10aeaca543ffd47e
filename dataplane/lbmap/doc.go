// Package lbmap is the narrow interface between the programmer and the
// datapath's maps: one KV per map, plus Rings for the per-service Maglev
// arrays that are swapped in whole. It has three implementations: Real
// (cilium/ebpf maps, batched), Fake (Go maps with the same capacities) and
// Faulty (wraps either and injects errors), and a canonical sorted text
// Dump that is identical for Real and Fake holding the same state, so one
// golden file checks both.
package lbmap
