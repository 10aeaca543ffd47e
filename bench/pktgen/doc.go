// Package pktgen is the harness's packet generator: BPF_PROG_RUN in
// live-frames mode (BPF_F_TEST_XDP_LIVE_FRAMES) injects synthetic frames
// into a device of a namespace lab. The injected program (bench_gen, in
// bench/bpf/bench.c) gives every frame its flow from a per-CPU sequence
// (source address and port, destination service address), fixes the
// checksums and returns XDP_TX: the kernel transmits the frame for real out
// of the injection device, so it arrives at the veth peer — a node's uplink
// — exactly as if a router had sent it.
//
// The lab ([NewNodeLab]) is two namespaces joined by one veth:
//
//	gen ns   192.0.2.1/24 on <p>-g  (bench_sink attached: counts IPv4, drops)
//	   |
//	node ns  192.0.2.11/24 on <p>-u (the node's uplink; Strait's XDP, or an
//	         XDP_PASS program for kube-proxy, which forwards in the stack)
//	         198.18.0.0/15 and default via 192.0.2.1, forwarding on
//
// Whatever the node forwards to a backend (198.18.0.0/15) goes back out of
// its uplink to the gen side, where the sink counts it: forwarded packets
// per second are the sink's count over the run's wall time. Generator,
// node and sink share the injecting CPU (veth delivers in the softirq of
// the sending CPU), so pps per CPU is the figure that travels.
package pktgen
