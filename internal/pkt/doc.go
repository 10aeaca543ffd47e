// Package pkt builds and checks Ethernet/IPv4/TCP/UDP/ICMP frames for
// golden packet tests and the benchmark's generator. Checksums are always
// computed from scratch here, so a datapath that updates them incrementally
// is checked against an independent computation.
package pkt
