// Package datapath is the node's datapath as one object: it loads (or
// reopens) the pinned eBPF objects, attaches them to the uplink devices,
// programs per-device settings, and applies desired states through the
// programmer while keeping the neighbour entries that XDP forwarding needs.
// The agent, the demo and the end-to-end tests all run a node through it.
// Everything here acts in the network namespace of the calling thread.
package datapath
