// Package netlab builds throw-away network-namespace labs for Strait's
// privileged end-to-end tests and for `make demo`.
//
// # What it owns
//
// A [Lab] owns every network namespace, link, XDP attachment, in-process
// server and child process it creates, and nothing else. All names it
// creates start with a per-run prefix (a short base such as "st" followed by
// four random hex digits and a dash, e.g. "st3f9a-"), so several runs, test
// binaries or sessions can share one machine without colliding. [Lab.Close]
// (or [Lab.Shutdown], which reports errors) removes everything the lab
// created and is idempotent; tests use [NewT], which registers the cleanup.
// The package keeps no global mutable state.
//
// Namespaces are named netns (bind mounts under /var/run/netns), so
// `ip netns exec <ns.Name()> ...` works for debugging a live lab. Everything
// is created directly inside its namespace: no lab link ever exists in the
// caller's namespace, even transiently.
//
// # Primitives
//
//   - [Lab.AddNS] creates a namespace (loopback up); [NS.Do] runs Go code
//     inside it on a locked OS thread. Sockets created inside keep that
//     namespace, so listeners and dialers can be created in-process.
//   - [NS.Run], [NS.Start] and [NS.Spawn] run commands inside a namespace
//     (forked from a thread that has joined it; unlike `ip netns exec`,
//     /sys is not remounted).
//   - [Lab.AddVeth], [NS.AddBridge], [NS.SetMaster], [NS.AddAddr],
//     [NS.AddPeerAddr], [NS.AddRoute], [NS.AddMultipathRoute],
//     [NS.EnableForwarding], [NS.SetSysctl], [NS.DisableTxChecksum],
//     [NS.LinkIndex], [NS.HardwareAddr], [NS.AttachXDP], [NS.AttachXDPPass]
//     and [NS.SNMP] / [NS.ChecksumErrors] (nstat-style counters read from
//     /proc/thread-self/net/snmp inside the namespace).
//   - [NS.ServeTCP] / [NS.ServeUDP] start in-process servers that answer with
//     "name|client-ip:port"; [DialTCP] and [UDPRequest] are the clients and
//     [ParseReply] decodes the answer.
//
// # The Strait datapath topology
//
// [BuildTopology] wires the standard end-to-end lab. It uses only
// documentation ranges (RFC 5737 TEST-NET-1/2/3 and the RFC 2544 benchmark
// range 198.18.0.0/15):
//
//	client ns   198.51.100.10/24 (TEST-NET-2), default via 198.51.100.1
//	   |  veth <p>-cl  <->  <p>-rcl
//	router ns   198.51.100.1/24 on <p>-rcl
//	            bridge <p>-br 192.0.2.1/24 (TEST-NET-1), fixed random MAC,
//	            ports <p>-r1, <p>-r2, ... (one per node, XDP_PASS attached)
//	            ip_forward=1, send_redirects=0
//	            203.0.113.0/24 (TEST-NET-3, LoadBalancer VIPs) via 192.0.2.11,
//	              or ECMP over every node with TopologyConfig.VIPMultipath
//	            198.18.i.0/24 via 192.0.2.(10+i) for each node i
//	   |  veth <p>-r<i>  <->  <p>-n<i>
//	node<i> ns  192.0.2.(10+i)/24 on uplink <p>-n<i> (the node's "eth0"),
//	            ip_forward=1, default via 192.0.2.1,
//	            198.18.k.0/24 via 192.0.2.(10+k) for every other node k
//	   |  point-to-point veth <p>-v<i>-<j>  <->  <p>-p<i>-<j>
//	node<i>-pod<j> ns
//	            198.18.i.(10+j)/32 peer 198.18.i.1 on <p>-p<i>-<j>,
//	            default via 198.18.i.1
//
// Pods use point-to-point veths with /32 routes (Calico/Cilium style, no
// per-node bridge): the node side of every pod veth carries 198.18.i.1/32 with
// the pod address as peer, so the node has a /32 route per pod through that
// pod's veth. A bpf_fib_lookup on the node therefore resolves a pod address
// to the pod's own veth, which XDP_REDIRECT can target.
//
// Node i uses the pod CIDR 198.18.i.0/24 (i counts from 1). Nodes are limited
// to 9 and pods per node to 99 so every interface name fits in 15 bytes.
// rp_filter is 0 in every topology namespace (the kernel default for new
// namespaces, set explicitly) so asymmetric paths are not dropped.
//
// Checksum offload hides checksum bugs on veth, so tx checksum offload is
// turned off on both ends of every topology veth (the in-process equivalent
// of `ethtool -K dev tx off`): receivers verify every checksum, and
// [NS.ChecksumErrors] is a meaningful assertion. With offload on, a packet
// bounced by XDP_TX also loses its CHECKSUM_PARTIAL state and arrives holding
// only the pseudo-header sum, so the receiver drops it as a checksum error:
// XDP tests need offload off anyway.
//
// Native XDP_TX on a veth is delivered only when the peer veth has an XDP
// program, so a trivial XDP_PASS program is attached (native mode) to the
// router-side peer of every node uplink.
package netlab
