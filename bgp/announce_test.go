package bgp_test

import (
	"net/netip"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/straitlb/strait/bgp"
	"github.com/straitlb/strait/model"
)

func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }
func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func u32(v uint32) *uint32      { return &v }
func prefixes(advs []bgp.Advertisement) []netip.Prefix {
	out := make([]netip.Prefix, len(advs))
	for i, a := range advs {
		out[i] = a.Prefix
	}
	return out
}

func lb(ip string) model.Frontend {
	return model.Frontend{Addr: addr(ip), Port: 80, Proto: model.TCP, Kind: model.LoadBalancer}
}

func backend(ip string, local bool) model.Backend {
	return model.Backend{Addr: addr(ip), Port: 8080, Local: local}
}

// clusterSvc is an externalTrafficPolicy=Cluster service (one model service,
// Scope "").
func clusterSvc(name, vip string, backends ...model.Backend) model.Service {
	return model.Service{
		Name:      model.ServiceName{Namespace: "ns", Name: name, Port: "http"},
		Frontends: []model.Frontend{{Addr: addr("10.96.0.1"), Port: 80, Proto: model.TCP, Kind: model.ClusterIP}, lb(vip)},
		Backends:  backends,
	}
}

// localSvc is the external half of an externalTrafficPolicy=Local service:
// Scope "external", only this node's endpoints.
func localSvc(name, vip string, backends ...model.Backend) model.Service {
	return model.Service{
		Name:      model.ServiceName{Namespace: "ns", Name: name, Port: "http", Scope: "external"},
		Frontends: []model.Frontend{{Addr: addr("192.0.2.11"), Port: 30080, Proto: model.TCP, Kind: model.NodePort}, lb(vip)},
		Backends:  backends,
	}
}

func state(svcs ...model.Service) model.State { return model.State{Services: svcs} }

var node = bgp.NodeStatus{Name: "node1", Labels: map[string]string{"kubernetes.io/hostname": "node1"}}

func TestAnnounceClusterPolicyWithBackendsAnywhere(t *testing.T) {
	got := bgp.Announcements(state(clusterSvc("a", "203.0.113.10", backend("198.18.2.10", false))), node, bgp.AdvertisementConfig{})
	if want := []netip.Prefix{pfx("203.0.113.10/32")}; !slices.Equal(prefixes(got), want) {
		t.Errorf("got %v, want %v: a Cluster service with a backend on another node is announced", got, want)
	}
}

func TestAnnounceClusterPolicyWithoutBackends(t *testing.T) {
	if got := bgp.Announcements(state(clusterSvc("a", "203.0.113.10")), node, bgp.AdvertisementConfig{}); len(got) != 0 {
		t.Errorf("got %v: a service without backends must not be announced", got)
	}
}

func TestAnnounceLocalPolicyWithLocalBackend(t *testing.T) {
	got := bgp.Announcements(state(localSvc("a", "203.0.113.10", backend("198.18.1.10", true))), node, bgp.AdvertisementConfig{})
	if want := []netip.Prefix{pfx("203.0.113.10/32")}; !slices.Equal(prefixes(got), want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestAnnounceLocalPolicyWithoutLocalBackend(t *testing.T) {
	// translate leaves the external half empty when every endpoint is on
	// another node.
	if got := bgp.Announcements(state(localSvc("a", "203.0.113.10")), node, bgp.AdvertisementConfig{}); len(got) != 0 {
		t.Errorf("got %v: a Local service without a local backend must not be announced", got)
	}
}

func TestAnnounceExternalHalfWithRemoteBackendsIsCluster(t *testing.T) {
	// externalTrafficPolicy=Cluster with internalTrafficPolicy=Local: the
	// external half has every endpoint, most of them remote.
	svc := localSvc("a", "203.0.113.10", backend("198.18.2.10", false))
	if p := bgp.ExternalPolicy(svc); p != bgp.PolicyCluster {
		t.Errorf("policy %v, want Cluster", p)
	}
	if got := bgp.Announcements(state(svc), node, bgp.AdvertisementConfig{}); len(got) != 1 {
		t.Errorf("got %v: want it announced", got)
	}
}

func TestAnnounceNeverWhenCordoned(t *testing.T) {
	n := node
	n.Unschedulable = true
	st := state(clusterSvc("a", "203.0.113.10", backend("198.18.2.10", false)), localSvc("b", "203.0.113.11", backend("198.18.1.10", true)))
	if got := bgp.Announcements(st, n, bgp.AdvertisementConfig{}); len(got) != 0 {
		t.Errorf("cordoned node announces %v", got)
	}
}

func TestAnnounceNeverWhenExcludedByLabel(t *testing.T) {
	n := node
	n.Labels = map[string]string{bgp.LabelExcludeFromExternalLB: ""} // any value
	st := state(clusterSvc("a", "203.0.113.10", backend("198.18.2.10", false)))
	if got := bgp.Announcements(st, n, bgp.AdvertisementConfig{}); len(got) != 0 {
		t.Errorf("excluded node announces %v", got)
	}
	if ok, why := bgp.NodeEligible(n, bgp.AdvertisementConfig{}); ok || why == "" {
		t.Errorf("NodeEligible = %v, %q", ok, why)
	}
}

func TestAnnounceNodeSelector(t *testing.T) {
	st := state(clusterSvc("a", "203.0.113.10", backend("198.18.2.10", false)))
	sel := labels.SelectorFromSet(labels.Set{"bgp": "yes"})
	if got := bgp.Announcements(st, node, bgp.AdvertisementConfig{NodeSelector: sel}); len(got) != 0 {
		t.Errorf("node outside the selector announces %v", got)
	}
	n := node
	n.Labels = map[string]string{"bgp": "yes"}
	if got := bgp.Announcements(st, n, bgp.AdvertisementConfig{NodeSelector: sel}); len(got) != 1 {
		t.Errorf("selected node announces %v", got)
	}
}

func TestAnnounceOnlyLoadBalancerFrontends(t *testing.T) {
	svc := clusterSvc("a", "203.0.113.10", backend("198.18.2.10", false))
	svc.Frontends = append(svc.Frontends,
		model.Frontend{Addr: addr("198.51.100.7"), Port: 80, Proto: model.TCP, Kind: model.ExternalIP},
		model.Frontend{Addr: addr("192.0.2.11"), Port: 30080, Proto: model.TCP, Kind: model.NodePort})
	got := bgp.Announcements(state(svc), node, bgp.AdvertisementConfig{})
	if want := []netip.Prefix{pfx("203.0.113.10/32")}; !slices.Equal(prefixes(got), want) {
		t.Errorf("got %v, want %v (ClusterIP, NodePort and externalIPs are not announced)", got, want)
	}
}

func TestAnnounceAggregation(t *testing.T) {
	st := state(
		clusterSvc("a", "203.0.113.10", backend("198.18.2.10", false)),
		clusterSvc("b", "203.0.113.20", backend("198.18.2.11", false)),
		clusterSvc("c", "198.51.100.9", backend("198.18.2.12", false)),
		localSvc("d", "203.0.113.30", backend("198.18.1.10", true)),
	)
	got := bgp.Announcements(st, node, bgp.AdvertisementConfig{AggregationLength: 24})
	want := []netip.Prefix{pfx("198.51.100.0/24"), pfx("203.0.113.0/24"), pfx("203.0.113.30/32")}
	if !slices.Equal(prefixes(got), want) {
		t.Errorf("got %v, want %v (Cluster services aggregate once, Local ones stay host routes)", prefixes(got), want)
	}
}

func TestAnnounceAttributesAndDedup(t *testing.T) {
	gshut, _ := bgp.ParseCommunity("65535:0")
	c1, _ := bgp.ParseCommunity("64512:100")
	cfg := bgp.AdvertisementConfig{
		Communities:      []uint32{gshut, c1, c1},
		LargeCommunities: []bgp.LargeCommunity{{GlobalAdmin: 2, LocalData1: 1, LocalData2: 1}, {GlobalAdmin: 1, LocalData1: 1, LocalData2: 1}},
		LocalPref:        u32(150),
		Peers:            []string{"tor2", "tor1"},
	}
	// One address on two ports and in two services.
	svc := clusterSvc("a", "203.0.113.10", backend("198.18.2.10", false))
	svc.Frontends = append(svc.Frontends, model.Frontend{Addr: addr("203.0.113.10"), Port: 443, Proto: model.TCP, Kind: model.LoadBalancer})
	got := bgp.Announcements(state(svc, localSvc("b", "203.0.113.10", backend("198.18.1.10", true))), node, cfg)
	want := []bgp.Advertisement{{
		Prefix:           pfx("203.0.113.10/32"),
		Communities:      []uint32{c1, gshut},
		LargeCommunities: []bgp.LargeCommunity{{GlobalAdmin: 1, LocalData1: 1, LocalData2: 1}, {GlobalAdmin: 2, LocalData1: 1, LocalData2: 1}},
		LocalPref:        u32(150),
		Peers:            []string{"tor1", "tor2"},
	}}
	if len(got) != 1 || !got[0].Equal(want[0]) || !slices.Equal(got[0].Communities, want[0].Communities) || !slices.Equal(got[0].Peers, want[0].Peers) {
		t.Errorf("got %v, want %v (one prefix, canonical attributes)", got, want)
	}
	// The config is not aliased.
	got[0].Peers[0] = "changed"
	if cfg.Peers[0] != "tor2" {
		t.Error("Announcements aliases the config's peer list")
	}
}

func TestAnnounceIPv6AndSorting(t *testing.T) {
	st := state(
		clusterSvc("z", "203.0.113.10", backend("198.18.2.10", false)),
		clusterSvc("y", "2001:db8:1::10", backend("198.18.2.10", false)),
		clusterSvc("x", "198.51.100.10", backend("198.18.2.10", false)),
	)
	got := bgp.Announcements(st, node, bgp.AdvertisementConfig{AggregationLengthV6: 64})
	want := []netip.Prefix{pfx("198.51.100.10/32"), pfx("203.0.113.10/32"), pfx("2001:db8:1::/64")}
	if !slices.Equal(prefixes(got), want) {
		t.Errorf("got %v, want %v", prefixes(got), want)
	}
}

func TestExternalPolicyAndShouldAnnounce(t *testing.T) {
	for _, tc := range []struct {
		name   string
		svc    model.Service
		policy bgp.TrafficPolicy
		ann    bool
	}{
		{"scope empty, remote backend", clusterSvc("a", "203.0.113.1", backend("198.18.2.1", false)), bgp.PolicyCluster, true},
		{"scope empty, no backend", clusterSvc("a", "203.0.113.1"), bgp.PolicyCluster, false},
		{"scope external, local backends", localSvc("a", "203.0.113.1", backend("198.18.1.1", true)), bgp.PolicyLocal, true},
		{"scope external, no backend", localSvc("a", "203.0.113.1"), bgp.PolicyLocal, false},
		{"scope external, mixed backends", localSvc("a", "203.0.113.1", backend("198.18.1.1", true), backend("198.18.2.1", false)), bgp.PolicyCluster, true},
	} {
		if p := bgp.ExternalPolicy(tc.svc); p != tc.policy {
			t.Errorf("%s: policy %v, want %v", tc.name, p, tc.policy)
		}
		if a := bgp.ShouldAnnounce(tc.svc); a != tc.ann {
			t.Errorf("%s: ShouldAnnounce %v, want %v", tc.name, a, tc.ann)
		}
	}
}

func TestAdvertisementConfigValidate(t *testing.T) {
	for _, bad := range []bgp.AdvertisementConfig{{AggregationLength: 33}, {AggregationLength: -1}, {AggregationLengthV6: 129}, {Peers: []string{""}}} {
		if bad.Validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if err := (bgp.AdvertisementConfig{AggregationLength: 24, AggregationLengthV6: 64, Peers: []string{"a"}}).Validate(); err != nil {
		t.Error(err)
	}
	// Invalid lengths fall back to host routes.
	st := state(clusterSvc("a", "203.0.113.10", backend("198.18.2.10", false)))
	if got := bgp.Announcements(st, node, bgp.AdvertisementConfig{AggregationLength: 40}); got[0].Prefix != pfx("203.0.113.10/32") {
		t.Errorf("got %v", got)
	}
}

func TestRestrictToPeers(t *testing.T) {
	advs := []bgp.Advertisement{
		{Prefix: pfx("203.0.113.1/32")},
		{Prefix: pfx("203.0.113.2/32"), Peers: []string{"a", "gone"}},
		{Prefix: pfx("203.0.113.3/32"), Peers: []string{"gone"}},
	}
	got := bgp.RestrictToPeers(advs, []bgp.Peer{{Name: "a"}, {Name: "b"}})
	if len(got) != 2 || len(got[0].Peers) != 0 || !slices.Equal(got[1].Peers, []string{"a"}) {
		t.Errorf("got %v: unknown names dropped; an advertisement left with no peer is dropped, not sent to all", got)
	}
	if len(advs[1].Peers) != 2 {
		t.Error("input modified")
	}
}

func TestGracefulShutdown(t *testing.T) {
	c1, _ := bgp.ParseCommunity("64512:1")
	in := []bgp.Advertisement{{Prefix: pfx("203.0.113.1/32"), Communities: []uint32{c1}, LocalPref: u32(200)}}
	got := bgp.GracefulShutdown(in)
	if !slices.Equal(got[0].Communities, []uint32{c1, bgp.CommunityGracefulShutdown}) || got[0].LocalPref == nil || *got[0].LocalPref != 0 {
		t.Errorf("got %v", got)
	}
	if *in[0].LocalPref != 200 || len(in[0].Communities) != 1 {
		t.Error("input modified")
	}
	if again := bgp.GracefulShutdown(got); !again[0].Equal(got[0]) || len(again[0].Communities) != 2 {
		t.Errorf("not idempotent: %v", again)
	}
}
