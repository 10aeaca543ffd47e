// Package interop holds Strait's privileged BGP interoperability tests
// (only _test.go files besides this one): the embedded GoBGP speaker
// (bgp/gobgp) driven by bgp.Controller, against FRR 8.4 and BIRD 2 running
// in network namespaces built with internal/netlab.
//
// # Lab
//
//	tor ns     bridge <p>-br 192.0.2.1/24, FRR (zebra + bgpd, AS 65000) or
//	           BIRD; maximum-paths 8
//	node1 ns   192.0.2.11/24 on <p>-n1, Strait speaker, AS 64512
//	node2 ns   192.0.2.12/24 on <p>-n2, Strait speaker, AS 64512
//
// # Why the speakers are child processes
//
// GoBGP creates its sockets on whatever goroutine (and so OS thread) it
// likes, and a socket belongs to the network namespace of the thread that
// created it, so a GoBGP server cannot be confined to a namespace from
// inside a process whose other threads live elsewhere. Each node's speaker
// therefore runs in a child process: the test binary re-executed with
// STRAIT_BGP_INTEROP_HELPER=1, started by netlab's NS.Spawn (forked from a
// thread inside the node namespace, so the whole child lives there; unlike
// `ip netns exec`, nothing is remounted). The test drives it over the
// child's stdin/stdout with one JSON request and one JSON response per line
// (start, update, drain, status); the child logs to stderr, which the test
// prints when it fails.
//
// FRR's zebra and bgpd and BIRD run in the foreground in the tor namespace,
// also through NS.Spawn, so the lab kills every process (by process group)
// and removes every namespace on exit, on failure too. FRR needs a run
// directory its daemons (user frr) can write: a world-writable directory
// under /tmp, removed on exit.
package interop
