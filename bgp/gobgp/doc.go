// Package gobgp is Strait's bgp.Speaker: an embedded GoBGP v3 server
// (github.com/osrg/gobgp/v3/pkg/server). speaker.go is the only file of
// Strait that imports GoBGP; everything else talks to the bgp.Speaker
// interface.
//
// # Behaviour
//
//   - No listener: the server does not listen on TCP 179 unless
//     Config.ListenPort is set (GoBGP ListenPort -1). The node dials out to
//     every peer, every Peer.ConnectRetry (default 5s; GoBGP waits 1-2s
//     before the first attempt and retry to 2*retry between attempts).
//   - After a session drops, GoBGP stays idle for a fixed 5s before it
//     dials again (so a flap costs about 6-7s); a removed and re-added peer
//     starts without that delay.
//   - Router ID: Config.RouterID, default Config.NodeIP (it must be IPv4).
//   - TCP MD5 (Peer.Password) works on the dialed sessions. Go 1.24+ makes
//     listeners MPTCP by default and MPTCP sockets refuse TCP_MD5SIG, so
//     with Config.ListenPort set, a password-protected peer can only reach
//     a listening speaker if the binary sets //go:debug multipathtcp=0 (New
//     logs a warning).
//   - Received routes are rejected (global import policy: only locally
//     originated paths are accepted), so the node never becomes a transit
//     between its routers; GoBGP still keeps what each peer sent in its
//     Adj-RIB-In.
//   - Paths are originated with ORIGIN IGP and next hop 0.0.0.0 (or ::),
//     which GoBGP replaces with the session's local address: each router
//     sees the node's own address as next hop, as with MetalLB.
//   - LOCAL_PREF is sent on iBGP sessions only (GoBGP strips it on eBGP).
//   - An IPv4 prefix goes to IPv4 peers and an IPv6 prefix to IPv6 peers
//     (each session negotiates its own address family's unicast only).
//   - Per-peer selection (Advertisement.Peers) is a global export policy:
//     for each peer that must not get some prefixes, a statement matching
//     the peer (neighbor set) and those prefixes (prefix set) rejects them.
//     GoBGP re-evaluates export policy only when a path changes and does
//     not withdraw a path that a new policy rejects, so when a prefix
//     stops going to a peer that had it, the speaker withdraws the prefix
//     and announces it again under the new policy (the other peers see a
//     withdraw and re-announce).
//   - SetPeers matches peers by address; a changed peer is deleted and added
//     again (its session restarts).
//   - SetAdvertisements compares the desired set with the applied one in a
//     single pass when it is sorted by prefix (bgp.Controller sorts it;
//     otherwise it sorts a copy), a few nanoseconds per unchanged prefix;
//     the rest of the work (GoBGP calls, the routing policy, which only
//     advertisements restricted to some peers change) is per changed
//     prefix (advs.go).
//   - The zap adapter implements GoBGP's log.Logger. GoBGP's Fatal is
//     logged at error level and never exits the process; GoBGP's Panic
//     (internal logic bugs) panics as GoBGP expects.
//   - GoBGP's Serve goroutine cannot be stopped: Close stops every session
//     and listener, but one idle goroutine per speaker remains.
//
// # Config conversion
//
// The conversion from bgp.Peer and bgp.Advertisement to GoBGP API messages
// (apiPeer, apiPath, exportPolicy) is pure and unit-tested.
package gobgp
