// Package neigh keeps the kernel's neighbour table ready for the XDP
// datapath.
//
// The XDP program forwards to remote backends (and sends reverse-translated
// replies back to clients) after bpf_fib_lookup. When the next hop has no
// resolved neighbour entry the lookup returns BPF_FIB_LKUP_RET_NO_NEIGH and
// the frame is dropped: XDP cannot resolve neighbours, and since the frame
// never reaches the stack nothing would ever trigger the resolution.
//
// A [Manager] therefore keeps *managed* neighbour entries (NTF_EXT_MANAGED,
// Linux 5.16 or later) for the next hops the datapath needs: the next hop of
// every target address (the remote backends) and every default gateway. The
// kernel resolves a managed entry as soon as it exists and keeps it
// resolved by itself, re-probing it periodically, whether or not traffic
// through the stack uses it.
//
// [Manager.Sync] resolves each target with a route lookup (RTM_GETROUTE, as
// `ip route get`) to its next hop: the gateway, or the target itself when it
// is on-link, on the route's device. When the route is one nexthop of an
// ECMP route, every nexthop of that route is kept, since bpf_fib_lookup may
// pick any of them. Next hops are deduplicated; then for each one:
//
//   - no entry, or a dynamic (unmanaged, non-permanent) entry: the Manager
//     makes it managed (creating it, or upgrading the existing entry in
//     place without losing its state) and marks it with NDA_PROTOCOL
//     [Protocol], so `ip neigh show proto 83` lists Strait's entries;
//   - a PERMANENT or NOARP entry (configured by an administrator) or a
//     managed entry of someone else: left alone, it is already usable;
//   - an entry the Manager owns: kept.
//
// Entries the Manager owns that no next hop needs any more are deleted,
// except in a Sync in which some target could not be resolved (the entry
// might be that target's), so a transient routing error never tears down
// working entries. Ownership survives a restart: on its first Sync a new
// Manager adopts the entries carrying [Protocol].
//
// Route lookups are the expensive part (one rtnetlink round trip each), so
// Sync avoids them where it provably can:
//
//   - Answers are cached per IPv4 address across Syncs. Every Sync dumps
//     the IPv4 routes of all tables, the policy rules and the links'
//     ARP/loopback flags (three dumps) and fingerprints them; the cache is
//     dropped whenever the fingerprint changes, and when routes use
//     nexthop objects (which can change without the routes changing) or
//     the rules cannot be listed, nothing is cached. Failed lookups are
//     never cached (they are retried on the next Sync); addresses that
//     are no longer targets are forgotten. IPv6 targets are looked up
//     every time. Answers that depend on more than the FIB (a gateway
//     learnt from an ICMP redirect) are not tracked: bpf_fib_lookup
//     ignores those too.
//   - On a cache miss, under the kernel's default rules (local, main,
//     default), addresses outside the local table whose longest-prefix
//     match in the main table is the same single-nexthop unicast route
//     share one lookup: the first one's answer, once it matches the route,
//     gives the others the same gateway, or themselves on the same link
//     for a connected route (see planLookups). Anything else (other rules,
//     multipath, several routes for one prefix, TOS routes, encapsulation,
//     a dead or link-down nexthop) gets a lookup per address.
//   - When neither the targets nor the fingerprint changed, the last
//     Sync's next hops are reused as they are.
//
// Everything happens in the network namespace of the calling OS thread:
// call Sync (and Entries) with the thread locked in the node's namespace,
// e.g. inside a netlab NS.Do in tests. Addresses of either family work;
// default gateways are collected for IPv4 only, the datapath's family.
package neigh
