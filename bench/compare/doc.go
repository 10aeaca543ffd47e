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
// The apiserver listens on 127.0.0.1 of the root namespace; the node
// namespace gets a TCP forwarder on its own 127.0.0.1 with the same port,
// so one kubeconfig serves both. kube-proxy needs its Node object with an
// InternalIP (created here), and does its conntrack work over netlink (no
// conntrack tool); its sysctl changes are confined to the node namespace
// (--conntrack-max-per-core=0 and zero TCP timeouts leave the global
// conntrack sysctls alone).
package compare
