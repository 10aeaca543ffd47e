// Package bgptest provides a fake bgp.Speaker for unit tests. The fake
// applies SetPeers and SetAdvertisements the way a real speaker would and
// fails the test (t.Errorf, safe from any goroutine) whenever a call breaks
// an invariant:
//
//   - a call after Close;
//   - an invalid peer, or two peers with one name or address;
//   - an invalid advertisement (bad prefix, host bits set), a prefix listed
//     twice, or an advertisement naming a peer the fake does not have;
//   - a prefix whose length is neither the host length nor the configured
//     aggregation length (with the default aggregation length 32, every
//     IPv4 prefix must be a /32; 128 for IPv6);
//   - a prefix that covers no LoadBalancer address of the desired state
//     given to SetState (before any SetState, every prefix is uncovered).
//
// The offending call also returns an error and changes nothing. Every call
// is recorded (Calls) with a sequence number, so tests can check ordering,
// e.g. that a drain advertised GRACEFUL_SHUTDOWN before it withdrew.
package bgptest
