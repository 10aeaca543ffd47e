// Package loader loads Strait's eBPF objects, pins them under a bpffs
// directory readable by root only, and attaches the programs: XDP on
// uplinks (native where the driver supports it, generic otherwise) and tcx
// on their egress. On restart it reopens the pinned maps, so state and IDs
// survive, and updates the pinned links in place, so forwarding never
// stops. It refuses to replace an XDP program it does not own.
package loader
