package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/straitlb/strait/model"
)

// LabelExcludeFromExternalLB is the node label (any value) that keeps a node
// out of external load balancers; the node announces nothing.
const LabelExcludeFromExternalLB = "node.kubernetes.io/exclude-from-external-load-balancers"

// ScopeExternal is model.ServiceName.Scope of the external half of a service
// that the control plane split by traffic policy.
const ScopeExternal = "external"

// NodeStatus is what the announce rules read about this node.
type NodeStatus struct {
	Name   string
	Labels map[string]string
	// Unschedulable is spec.unschedulable: the node is cordoned.
	Unschedulable bool
}

// AdvertisementConfig says how LoadBalancer addresses are announced.
type AdvertisementConfig struct {
	// AggregationLength is the prefix length of announced IPv4 addresses of
	// Cluster-policy services (0: 32). Local-policy services are always
	// announced as host routes.
	AggregationLength int
	// AggregationLengthV6 is the same for IPv6 (0: 128).
	AggregationLengthV6 int
	// Communities and LargeCommunities are attached to every prefix.
	Communities      []uint32
	LargeCommunities []LargeCommunity
	// LocalPref, when set, is sent on iBGP sessions.
	LocalPref *uint32
	// Peers names the peers that get the prefixes (empty: every peer).
	Peers []string
	// NodeSelector selects the nodes that announce (nil: every node).
	NodeSelector labels.Selector
	// Selects limits the advertisement to some LoadBalancer addresses,
	// such as those of its pools (nil: every address).
	Selects func(netip.Addr) bool `json:"-"`
}

// Validate checks the aggregation lengths and peer names.
func (c AdvertisementConfig) Validate() error {
	var errs []error
	if c.AggregationLength < 0 || c.AggregationLength > 32 {
		errs = append(errs, fmt.Errorf("aggregation length %d out of range [1, 32]", c.AggregationLength))
	}
	if c.AggregationLengthV6 < 0 || c.AggregationLengthV6 > 128 {
		errs = append(errs, fmt.Errorf("IPv6 aggregation length %d out of range [1, 128]", c.AggregationLengthV6))
	}
	for _, p := range c.Peers {
		if p == "" {
			errs = append(errs, errors.New("empty peer name"))
		}
	}
	return errors.Join(errs...)
}

// aggregationLength returns the effective length for addr's family;
// invalid lengths fall back to host routes.
func (c AdvertisementConfig) aggregationLength(addr netip.Addr) int {
	if addr.Is4() {
		if c.AggregationLength <= 0 || c.AggregationLength > 32 {
			return 32
		}
		return c.AggregationLength
	}
	if c.AggregationLengthV6 <= 0 || c.AggregationLengthV6 > 128 {
		return 128
	}
	return c.AggregationLengthV6
}

// prefixFor returns the prefix announced for a LoadBalancer address of a
// service (local: of Local traffic policy).
func (c *AdvertisementConfig) prefixFor(a netip.Addr, local bool) netip.Prefix {
	addr := a.Unmap().WithZone("")
	bits := addr.BitLen()
	if !local {
		bits = c.aggregationLength(addr)
	}
	return netip.PrefixFrom(addr, bits).Masked()
}

// TrafficPolicy is a service's externalTrafficPolicy as far as announcing is
// concerned.
type TrafficPolicy uint8

// Traffic policies.
const (
	PolicyCluster TrafficPolicy = iota
	PolicyLocal
)

func (p TrafficPolicy) String() string {
	if p == PolicyLocal {
		return "Local"
	}
	return "Cluster"
}

// ExternalPolicy infers the external traffic policy of a model service (see
// the package documentation for the contract): Local when the service is the
// external half (Scope "external") and every backend is local, Cluster
// otherwise.
func ExternalPolicy(svc model.Service) TrafficPolicy { return externalPolicy(&svc) }

func externalPolicy(svc *model.Service) TrafficPolicy {
	if svc.Name.Scope != ScopeExternal {
		return PolicyCluster
	}
	for _, b := range svc.Backends {
		if !b.Local {
			return PolicyCluster
		}
	}
	return PolicyLocal
}

// ShouldAnnounce reports whether a service's LoadBalancer addresses are
// announced by an eligible node: Local policy needs a local backend,
// Cluster policy any backend.
func ShouldAnnounce(svc model.Service) bool { return shouldAnnounce(&svc) }

func shouldAnnounce(svc *model.Service) bool {
	if externalPolicy(svc) == PolicyLocal {
		return slices.ContainsFunc(svc.Backends, func(b model.Backend) bool { return b.Local })
	}
	return len(svc.Backends) > 0
}

// NodeEligible reports whether the node announces anything at all, and if
// not, why.
func NodeEligible(node NodeStatus, adv AdvertisementConfig) (bool, string) {
	if node.Unschedulable {
		return false, "node is cordoned"
	}
	if _, ok := node.Labels[LabelExcludeFromExternalLB]; ok {
		return false, "node has label " + LabelExcludeFromExternalLB
	}
	if adv.NodeSelector != nil && !adv.NodeSelector.Matches(labels.Set(node.Labels)) {
		return false, "node does not match the advertisement's node selector"
	}
	return true, ""
}

// Announcements returns what the node announces for state: one
// advertisement per prefix, sorted by prefix, with the config's communities,
// local preference and peers. It is empty when the node is not eligible
// (NodeEligible). See the package documentation for the rules.
func Announcements(state model.State, node NodeStatus, adv AdvertisementConfig) []Advertisement {
	if ok, _ := NodeEligible(node, adv); !ok {
		return nil
	}
	return announce(state, adv)
}

// AnnouncementsOf combines several advertisements: each announces the
// addresses it selects, on the nodes it selects; when two cover the same
// prefix, the first in advs wins. The result is sorted by prefix.
func AnnouncementsOf(state model.State, node NodeStatus, advs []AdvertisementConfig) []Advertisement {
	return union(advs, func(adv AdvertisementConfig) []Advertisement { return Announcements(state, node, adv) })
}

// union merges per-advertisement results, first advertisement first.
func union(advs []AdvertisementConfig, each func(AdvertisementConfig) []Advertisement) []Advertisement {
	if len(advs) == 1 {
		return each(advs[0])
	}
	seen := make(map[netip.Prefix]bool)
	var out []Advertisement
	for _, adv := range advs {
		for _, a := range each(adv) {
			if !seen[a.Prefix] {
				seen[a.Prefix] = true
				out = append(out, a)
			}
		}
	}
	SortAdvertisements(out)
	return out
}

// announce applies the per-service rules, ignoring node eligibility.
func announce(state model.State, adv AdvertisementConfig) []Advertisement {
	prefixes := make(map[netip.Prefix]bool)
	for i := range state.Services {
		svc := &state.Services[i]
		if !shouldAnnounce(svc) {
			continue
		}
		local := externalPolicy(svc) == PolicyLocal
		for k := range svc.Frontends {
			f := &svc.Frontends[k]
			if f.Kind != model.LoadBalancer || !f.Addr.IsValid() {
				continue
			}
			if adv.Selects != nil && !adv.Selects(f.Addr) {
				continue
			}
			prefixes[adv.prefixFor(f.Addr, local)] = true
		}
	}
	if len(prefixes) == 0 {
		return nil
	}
	out := make([]Advertisement, 0, len(prefixes))
	for p := range prefixes {
		a := Advertisement{
			Prefix:           p,
			Communities:      adv.Communities,
			LargeCommunities: adv.LargeCommunities,
			LocalPref:        adv.LocalPref,
			Peers:            adv.Peers,
		}
		out = append(out, a.Canonical())
	}
	SortAdvertisements(out)
	return out
}

// RestrictToPeers removes from each advertisement's Peers the names that are
// not among peers. An advertisement whose non-empty Peers list loses every
// name is dropped (it must not become "every peer").
func RestrictToPeers(advs []Advertisement, peers []Peer) []Advertisement {
	known := make(map[string]bool, len(peers))
	for _, p := range peers {
		known[p.Name] = true
	}
	out := make([]Advertisement, 0, len(advs))
	for _, a := range advs {
		if len(a.Peers) == 0 {
			out = append(out, a)
			continue
		}
		a = a.Clone()
		a.Peers = slices.DeleteFunc(a.Peers, func(n string) bool { return !known[n] })
		if len(a.Peers) > 0 {
			out = append(out, a)
		}
	}
	return out
}

// GracefulShutdown returns copies of advs marked for draining (RFC 8326):
// with the GRACEFUL_SHUTDOWN community 65535:0 added and LOCAL_PREF 0.
func GracefulShutdown(advs []Advertisement) []Advertisement {
	out := make([]Advertisement, len(advs))
	for i, a := range advs {
		a = a.Clone()
		if !slices.Contains(a.Communities, CommunityGracefulShutdown) {
			a.Communities = append(a.Communities, CommunityGracefulShutdown)
		}
		zero := uint32(0)
		a.LocalPref = &zero
		out[i] = a.Canonical()
	}
	return out
}
