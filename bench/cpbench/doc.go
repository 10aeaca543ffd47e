// Package cpbench measures the control plane against a real kube-apiserver:
// N Services with E endpoints each are created, then an agent process (the
// Kubernetes source, the proxier and the programmer over real eBPF maps, in
// a process of its own so its memory is its own) reports the cold sync
// (informers synced -> maps programmed), the latency of single endpoint
// changes (update accepted by the apiserver -> maps programmed) and its
// peak RSS.
package cpbench
