// Package compare runs Strait and kube-proxy side by side: the same
// kube-apiserver, the same Services and EndpointSlices, each proxy alone in
// a fresh node namespace of a pktgen lab (never the root namespace), and
// the same live-frames traffic through it.
//
// For each proxy and Service count it measures the cold sync (process
// start to the first complete programming: Strait's agent reports the time
// its first full Apply returned, kube-proxy's metrics endpoint the end of
// its first sync, kubeproxy_sync_proxy_rules_last_timestamp_seconds) and
// the forwarded packets per second per CPU for established flows (every
// flow's state exists: a conntrack hit in both) and for new flows (every
// packet a new flow: Strait's frontend lookup, Maglev and conntrack
// inserts; kube-proxy's nat-table traversal and conntrack inserts).
//
// With Options.RR, each point also measures request/response (see rr.go
// for the topology): HTTP from a client namespace through Service 0's
// NodePort (externalTrafficPolicy Cluster, so every proxy DNATs and SNATs)
// to real HTTP servers in backend namespaces: requests per second from wrk
// over keep-alive connections, and connect() and connect+first-byte
// latency percentiles from a Go client opening one connection after
// another inside the client namespace. It runs before the packet phases,
// on fresh conntrack and SNAT state.
//
// kube-proxy's iptables mode runs the system's iptables (iptables-nft on
// Debian: the nf_tables backend); KubeProxyIPTablesLegacy runs the same
// mode with the legacy x_tables tools first on its PATH. A proxy whose
// first sync does not end within Options.SyncTimeout is recorded as not
// finished (Point.SyncTimedOut) and the run goes on.
//
// Creating Services gets slower as they accumulate: kube-apiserver's
// ClusterIP allocator counts every allocated address after each
// allocation (ipallocator.Used lists them all), so 10,000 Services take
// minutes; the objects are created once per count and kept for the next.
//
// The apiserver listens on 127.0.0.1 of the root namespace; the node
// namespace gets a TCP forwarder on its own 127.0.0.1 with the same port,
// so one kubeconfig serves both. kube-proxy needs its Node object with an
// InternalIP (created here), and does its conntrack work over netlink (no
// conntrack tool); its sysctl changes are confined to the node namespace
// (--conntrack-max-per-core=0 and zero TCP timeouts leave the global
// conntrack sysctls alone).
package compare
