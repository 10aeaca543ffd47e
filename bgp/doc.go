// Package bgp decides what a Strait node announces to its top-of-rack
// routers and defines the interface of the BGP speaker that announces it,
// MetalLB-style (BGP mode). It is pure apart from the Controller's timer: it
// imports no BGP implementation. The embedded GoBGP speaker is in package
// bgp/gobgp; a fake that checks invariants for unit tests is in bgp/bgptest.
//
// # Types
//
// A [Peer] is one BGP session the node dials out to (ASNs, port, timers, an
// optional TCP MD5 password the caller reads from a Secret, eBGP multihop,
// source address, graceful restart, and a node selector saying which nodes
// peer with it). An [Advertisement] is one prefix with its standard and
// large communities, an optional LOCAL_PREF and the names of the peers it
// goes to (none means every peer). Both are IPv6-ready: an IPv6 prefix goes
// to peers with an IPv6 address, an IPv4 prefix to peers with an IPv4
// address (one session per family, as MetalLB's native speaker did). The
// dataplane and model are IPv4-only for now.
//
// # Speaker
//
// [Speaker] is declarative: SetPeers and SetAdvertisements take the complete
// desired set and the speaker adds, changes and withdraws the difference.
// Status reports every session's state, the prefixes advertised to it (its
// Adj-RIB-Out) and the UPDATE messages sent; [NewCollector] exports that as
// Prometheus metrics into a registry the caller supplies.
//
// # What is announced: the contract with the model
//
// [Announcements] is a pure function of the node's desired state
// ([model.State]), the node ([NodeStatus]) and an [AdvertisementConfig].
// For each LoadBalancer frontend address (ClusterIP, NodePort and
// externalIPs are never announced):
//
//   - The node announces nothing when it is cordoned (Unschedulable), when
//     it carries the label node.kubernetes.io/exclude-from-external-load-balancers
//     (any value), or when the AdvertisementConfig's NodeSelector does not
//     match it.
//   - externalTrafficPolicy=Local: announced only while this node has at
//     least one local backend, so routers send traffic only to nodes that
//     can serve it without a second hop.
//   - externalTrafficPolicy=Cluster: announced while the service has any
//     backend, on any node.
//
// The model does not carry the traffic policy; it is read from the shape
// the control plane (controlplane/translate) gives the model service that
// holds the LoadBalancer frontend. A service whose Scope is "external" and
// whose backends are all local is treated as externalTrafficPolicy=Local:
// translate splits a port into "internal" and "external" halves when the
// policies select different endpoints, and an external half with Local
// policy holds only this node's endpoints. An "external" half with a
// non-local backend can only come from externalTrafficPolicy=Cluster with
// internalTrafficPolicy=Local, and is treated as Cluster. A service with
// Scope "" or "internal" is treated as Cluster. The cases translate does not
// split (both halves select the same backends) give the same answer under
// either rule, so the ambiguity is harmless: in every case the prefix is
// announced exactly when the model service holding the frontend has a
// backend. A Local service's prefix is always a host route (/32, /128),
// whatever the aggregation length: aggregating it would attract traffic for
// other addresses the node may have no endpoint for. Cluster services use
// the configured aggregation length (default host routes), and addresses
// that aggregate into one prefix are announced once.
//
// # Draining
//
// [GracefulShutdown] marks advertisements with the GRACEFUL_SHUTDOWN
// community (65535:0, RFC 8326) and LOCAL_PREF 0; [Drain] re-advertises the
// current set that way, waits, then withdraws everything. LOCAL_PREF is only
// carried on iBGP sessions: eBGP routers must act on the community (FRR and
// most vendors have a "graceful-shutdown" policy for it).
//
// [Controller] ties it together for one node: Update takes the desired state,
// the node and the configured peers, selects the peers whose NodeSelector
// matches, computes the announcements and hands both to the speaker. When
// the node stops being eligible (it is cordoned or excluded), the Controller
// keeps announcing what it announced, with GRACEFUL_SHUTDOWN, for
// DrainTime, and only then withdraws. Controller.Drain is the graceful
// shutdown of the whole node (on SIGTERM).
//
// Update is called with the whole state after every dataplane sync, so it
// is incremental: it scans the state, but a service whose announcements did
// not change costs only a comparison with what it announced at the previous
// Update, and the speaker is called only when the announcements change.
// The GoBGP speaker likewise compares the desired set with the applied one
// in one pass and does the rest per changed prefix only.
//
// Load-balancer IP allocation, address pools, CRDs and leader election are
// not part of this package.
package bgp
