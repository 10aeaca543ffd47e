package gobgp

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	bgppkt "github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"google.golang.org/protobuf/proto"

	"github.com/straitlb/strait/bgp"
)

func u32(v uint32) *uint32 { return &v }

func TestAPIPeerDefaults(t *testing.T) {
	got := apiPeer(bgp.Peer{
		Name: "tor1", Address: netip.MustParseAddr("192.0.2.1"), PeerASN: 65000, LocalASN: 64512,
	})
	want := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: "192.0.2.1", PeerAsn: 65000, LocalAsn: 64512, Description: "tor1"},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry: 5, HoldTime: 90, KeepaliveInterval: 30,
		}},
		Transport: &api.Transport{RemotePort: 179},
		AfiSafis: []*api.AfiSafi{{Config: &api.AfiSafiConfig{
			Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, Enabled: true,
		}}},
	}
	if !proto.Equal(got, want) {
		t.Errorf("apiPeer:\n got %v\nwant %v", got, want)
	}
}

func TestAPIPeerEverything(t *testing.T) {
	got := apiPeer(bgp.Peer{
		Name: "tor6", Address: netip.MustParseAddr("2001:db8::1"), Port: 1179,
		PeerASN: 65000, LocalASN: 64512,
		HoldTime: 9 * time.Second, KeepaliveTime: 2 * time.Second, ConnectRetry: time.Second,
		Password: "s3cret", EBGPMultihopTTL: 4, SourceAddress: netip.MustParseAddr("2001:db8::10"),
		GracefulRestart: true,
	})
	want := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: "2001:db8::1", PeerAsn: 65000, LocalAsn: 64512, AuthPassword: "s3cret", Description: "tor6"},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry: 1, HoldTime: 9, KeepaliveInterval: 2,
		}},
		Transport:       &api.Transport{RemotePort: 1179, LocalAddress: "2001:db8::10"},
		EbgpMultihop:    &api.EbgpMultihop{Enabled: true, MultihopTtl: 4},
		GracefulRestart: &api.GracefulRestart{Enabled: true, RestartTime: 120},
		AfiSafis: []*api.AfiSafi{{
			Config:            &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}, Enabled: true},
			MpGracefulRestart: &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}},
		}},
	}
	if !proto.Equal(got, want) {
		t.Errorf("apiPeer:\n got %v\nwant %v", got, want)
	}
}

func TestAPIGlobal(t *testing.T) {
	rid := netip.MustParseAddr("192.0.2.11")
	g := apiGlobal(Config{ASN: 64512}, rid)
	if g.ListenPort != -1 || g.RouterId != "192.0.2.11" || g.Asn != 64512 || len(g.ListenAddresses) != 0 {
		t.Errorf("default global: %v (want no listener: port -1)", g)
	}
	if g := apiGlobal(Config{}, rid); g.Asn != DefaultASN {
		t.Errorf("global ASN %d, want the default %d (GoBGP does not run with AS 0)", g.Asn, DefaultASN)
	}
	g = apiGlobal(Config{ListenPort: 1790, ListenAddresses: []netip.Addr{netip.MustParseAddr("127.0.0.5")}}, rid)
	if g.ListenPort != 1790 || !reflect.DeepEqual(g.ListenAddresses, []string{"127.0.0.5"}) {
		t.Errorf("listening global: %v", g)
	}
}

// decodePath turns an api.Path back into native NLRI and attributes.
func decodePath(t *testing.T, p *api.Path) (string, map[bgppkt.BGPAttrType]bgppkt.PathAttributeInterface) {
	t.Helper()
	nlri, err := apiutil.GetNativeNlri(p)
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := apiutil.GetNativePathAttributes(p)
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[bgppkt.BGPAttrType]bgppkt.PathAttributeInterface)
	for _, a := range attrs {
		m[a.GetType()] = a
	}
	return nlri.String(), m
}

func TestAPIPathIPv4(t *testing.T) {
	a := bgp.Advertisement{
		Prefix:           netip.MustParsePrefix("203.0.113.10/32"),
		Communities:      []uint32{0xFFFF0000, 0xFDE80001},
		LargeCommunities: []bgp.LargeCommunity{{GlobalAdmin: 64512, LocalData1: 1, LocalData2: 2}},
		LocalPref:        u32(150),
		Peers:            []string{"ignored-here"},
	}
	p, err := apiPath(a, false, time.Unix(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	if p.IsWithdraw || p.Family.Afi != api.Family_AFI_IP || p.Family.Safi != api.Family_SAFI_UNICAST {
		t.Errorf("path header: %v", p)
	}
	nlri, attrs := decodePath(t, p)
	if nlri != "203.0.113.10/32" {
		t.Errorf("nlri %s", nlri)
	}
	if o := attrs[bgppkt.BGP_ATTR_TYPE_ORIGIN].(*bgppkt.PathAttributeOrigin); o.Value != bgppkt.BGP_ORIGIN_ATTR_TYPE_IGP {
		t.Errorf("origin %d", o.Value)
	}
	if nh := attrs[bgppkt.BGP_ATTR_TYPE_NEXT_HOP].(*bgppkt.PathAttributeNextHop); nh.Value.String() != "0.0.0.0" {
		t.Errorf("next hop %s, want 0.0.0.0 (GoBGP substitutes the session address)", nh.Value)
	}
	// Canonical order: sorted.
	if c := attrs[bgppkt.BGP_ATTR_TYPE_COMMUNITIES].(*bgppkt.PathAttributeCommunities); !reflect.DeepEqual(c.Value, []uint32{0xFDE80001, 0xFFFF0000}) {
		t.Errorf("communities %x", c.Value)
	}
	lc := attrs[bgppkt.BGP_ATTR_TYPE_LARGE_COMMUNITY].(*bgppkt.PathAttributeLargeCommunities)
	if len(lc.Values) != 1 || lc.Values[0].ASN != 64512 || lc.Values[0].LocalData1 != 1 || lc.Values[0].LocalData2 != 2 {
		t.Errorf("large communities %v", lc)
	}
	if lp := attrs[bgppkt.BGP_ATTR_TYPE_LOCAL_PREF].(*bgppkt.PathAttributeLocalPref); lp.Value != 150 {
		t.Errorf("local pref %d", lp.Value)
	}
	if len(attrs) != 5 {
		t.Errorf("%d attributes, want 5: %v", len(attrs), attrs)
	}
}

func TestAPIPathMinimalAndIPv6(t *testing.T) {
	p, err := apiPath(bgp.Advertisement{Prefix: netip.MustParsePrefix("203.0.113.0/24")}, true, time.Unix(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	nlri, attrs := decodePath(t, p)
	if !p.IsWithdraw || nlri != "203.0.113.0/24" || len(attrs) != 2 {
		t.Errorf("minimal path: withdraw=%v nlri=%s attrs=%v (want origin and next hop only)", p.IsWithdraw, nlri, attrs)
	}

	p, err = apiPath(bgp.Advertisement{Prefix: netip.MustParsePrefix("2001:db8:1::10/128")}, false, time.Unix(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	if p.Family.Afi != api.Family_AFI_IP6 {
		t.Errorf("family %v", p.Family)
	}
	nlri, attrs = decodePath(t, p)
	mp, ok := attrs[bgppkt.BGP_ATTR_TYPE_MP_REACH_NLRI].(*bgppkt.PathAttributeMpReachNLRI)
	if nlri != "2001:db8:1::10/128" || !ok || mp.Nexthop.String() != "::" {
		t.Errorf("IPv6 path: nlri=%s attrs=%v", nlri, attrs)
	}

	if _, err := apiPath(bgp.Advertisement{Prefix: netip.MustParsePrefix("203.0.113.7/24")}, false, time.Time{}); err == nil {
		t.Error("a prefix with host bits converted without error")
	}
}

var importPolicy = &api.Policy{Name: "strait-import", Statements: []*api.Statement{{
	Name:       "strait-accept-local",
	Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
	Actions:    &api.Actions{RouteAction: api.RouteAction_ACCEPT},
}}}

func TestRoutingPolicy(t *testing.T) {
	peers := []bgp.Peer{
		{Name: "b", Address: netip.MustParseAddr("192.0.2.2")},
		{Name: "a", Address: netip.MustParseAddr("192.0.2.1")},
		{Name: "v6", Address: netip.MustParseAddr("2001:db8::1")},
	}
	all := bgp.Advertisement{Prefix: netip.MustParsePrefix("203.0.113.1/32")}
	open := &api.SetPoliciesRequest{Policies: []*api.Policy{importPolicy, {Name: "strait-export"}}}
	if req, key := routingPolicy([]bgp.Advertisement{all}, peers); !proto.Equal(req, open) || key != "" {
		t.Fatalf("no restriction: got policy %v key %q, want %v", req, key, open)
	}

	onlyA := bgp.Advertisement{Prefix: netip.MustParsePrefix("203.0.113.2/32"), Peers: []string{"a"}}
	onlyV6 := bgp.Advertisement{Prefix: netip.MustParsePrefix("2001:db8:1::2/128"), Peers: []string{"v6"}}
	onlyA6 := bgp.Advertisement{Prefix: netip.MustParsePrefix("2001:db8:1::3/128"), Peers: []string{"a"}}
	req, key := routingPolicy([]bgp.Advertisement{onlyA, all, onlyV6, onlyA6}, peers)
	// b must not get 203.0.113.2/32; v6 must not get 2001:db8:1::3/128
	// (a is an IPv4 peer: IPv6 prefixes never reach it anyway).
	want := &api.SetPoliciesRequest{
		DefinedSets: []*api.DefinedSet{
			{DefinedType: api.DefinedType_NEIGHBOR, Name: "strait-peer-192.0.2.2", List: []string{"192.0.2.2/32"}},
			{DefinedType: api.DefinedType_PREFIX, Name: "strait-deny-192.0.2.2", Prefixes: []*api.Prefix{{IpPrefix: "203.0.113.2/32", MaskLengthMin: 32, MaskLengthMax: 32}}},
			{DefinedType: api.DefinedType_NEIGHBOR, Name: "strait-peer-2001:db8::1", List: []string{"2001:db8::1/128"}},
			{DefinedType: api.DefinedType_PREFIX, Name: "strait-deny-2001:db8::1", Prefixes: []*api.Prefix{{IpPrefix: "2001:db8:1::3/128", MaskLengthMin: 128, MaskLengthMax: 128}}},
		},
		Policies: []*api.Policy{importPolicy, {Name: "strait-export", Statements: []*api.Statement{
			{Name: "strait-deny-192.0.2.2", Conditions: &api.Conditions{
				NeighborSet: &api.MatchSet{Type: api.MatchSet_ANY, Name: "strait-peer-192.0.2.2"},
				PrefixSet:   &api.MatchSet{Type: api.MatchSet_ANY, Name: "strait-deny-192.0.2.2"},
			}, Actions: &api.Actions{RouteAction: api.RouteAction_REJECT}},
			{Name: "strait-deny-2001:db8::1", Conditions: &api.Conditions{
				NeighborSet: &api.MatchSet{Type: api.MatchSet_ANY, Name: "strait-peer-2001:db8::1"},
				PrefixSet:   &api.MatchSet{Type: api.MatchSet_ANY, Name: "strait-deny-2001:db8::1"},
			}, Actions: &api.Actions{RouteAction: api.RouteAction_REJECT}},
		}}},
	}
	if !proto.Equal(req, want) {
		t.Errorf("routingPolicy:\n got %v\nwant %v", req, want)
	}
	if key != "192.0.2.2>203.0.113.2/32;2001:db8::1>2001:db8:1::3/128;" {
		t.Errorf("key %q", key)
	}
	// Order of inputs does not matter.
	if _, key2 := routingPolicy([]bgp.Advertisement{onlyA6, onlyV6, all, onlyA}, []bgp.Peer{peers[2], peers[0], peers[1]}); key2 != key {
		t.Errorf("key depends on input order: %q vs %q", key2, key)
	}
}

func TestSessionStateMapping(t *testing.T) {
	for in, want := range map[api.PeerState_SessionState]bgp.SessionState{
		api.PeerState_UNKNOWN: bgp.SessionUnknown, api.PeerState_IDLE: bgp.SessionIdle,
		api.PeerState_CONNECT: bgp.SessionConnect, api.PeerState_ACTIVE: bgp.SessionActive,
		api.PeerState_OPENSENT: bgp.SessionOpenSent, api.PeerState_OPENCONFIRM: bgp.SessionOpenConfirm,
		api.PeerState_ESTABLISHED: bgp.SessionEstablished,
	} {
		if got := sessionState(in); got != want {
			t.Errorf("sessionState(%v) = %v, want %v", in, got, want)
		}
	}
}
