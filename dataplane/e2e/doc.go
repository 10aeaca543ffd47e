// Package e2e holds Strait's privileged end-to-end datapath tests. It has
// no code of its own outside its tests.
//
// Each test builds the netlab topology (client — router — node1, node2 —
// pods; see internal/netlab), loads one complete, separate Strait datapath
// per node namespace (its own maps pinned on a private bpffs, XDP in native
// mode and tcx egress on the node's uplink), programs it through
// dataplane/program with the services as that node sees them (pods on the
// node are local backends), keeps managed neighbour entries for the
// datapath's next hops with dataplane/neigh, and then drives real TCP and
// UDP traffic from the client namespace to the pods' servers.
//
// Tx checksum offload is off on every veth, so every receiver verifies
// every checksum; each test ends by asserting that no namespace counted a
// checksum error and that no node's datapath counted a failure (FIB miss,
// missing neighbour, conntrack insert failure, SNAT exhaustion).
//
// The tests need root (they fail instead of skipping when CI is set).
package e2e
