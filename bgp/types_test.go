package bgp_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/straitlb/strait/bgp"
)

func TestParseCommunity(t *testing.T) {
	for in, want := range map[string]uint32{
		"65535:0":           0xFFFF0000,
		"0:0":               0,
		"64512:100":         64512<<16 | 100,
		" 1:2 ":             1<<16 | 2,
		"graceful-shutdown": bgp.CommunityGracefulShutdown,
		"NO-EXPORT":         bgp.CommunityNoExport,
		"no-advertise":      bgp.CommunityNoAdvertise,
		"blackhole":         bgp.CommunityBlackhole,
	} {
		got, err := bgp.ParseCommunity(in)
		if err != nil || got != want {
			t.Errorf("ParseCommunity(%q) = %#x, %v; want %#x", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "65536:0", "0:65536", "-1:0", "1", "1:2:3", "a:b", "4294901760"} {
		if _, err := bgp.ParseCommunity(bad); err == nil {
			t.Errorf("ParseCommunity(%q) accepted", bad)
		}
	}
	if s := bgp.FormatCommunity(bgp.CommunityGracefulShutdown); s != "65535:0" {
		t.Errorf("FormatCommunity = %q", s)
	}
	if s := bgp.FormatCommunities([]uint32{64512<<16 | 7, bgp.CommunityNoExport}); s != "64512:7 65535:65281" {
		t.Errorf("FormatCommunities = %q", s)
	}
	cs, err := bgp.ParseCommunities([]string{"1:1", "no-export"})
	if err != nil || len(cs) != 2 {
		t.Errorf("ParseCommunities = %v, %v", cs, err)
	}
	if _, err := bgp.ParseCommunities([]string{"1:1", "x"}); err == nil {
		t.Error("ParseCommunities accepted a bad entry")
	}
	for c := uint32(0); c < 1<<32-1<<28; c += 1<<28 + 12345 {
		if got, err := bgp.ParseCommunity(bgp.FormatCommunity(c)); err != nil || got != c {
			t.Errorf("round trip of %#x: %#x, %v", c, got, err)
		}
	}
}

func TestParseLargeCommunity(t *testing.T) {
	got, err := bgp.ParseLargeCommunity("4200000000:1:4294967295")
	if err != nil || got != (bgp.LargeCommunity{GlobalAdmin: 4200000000, LocalData1: 1, LocalData2: 4294967295}) {
		t.Errorf("got %v, %v", got, err)
	}
	if got.String() != "4200000000:1:4294967295" {
		t.Errorf("String = %q", got)
	}
	for _, bad := range []string{"1:2", "1:2:3:4", "1:2:4294967296", "a:1:2", ""} {
		if _, err := bgp.ParseLargeCommunity(bad); err == nil {
			t.Errorf("ParseLargeCommunity(%q) accepted", bad)
		}
	}
}

func validPeer() bgp.Peer {
	return bgp.Peer{Name: "tor1", Address: addr("192.0.2.1"), PeerASN: 65000, LocalASN: 64512}
}

func TestPeerDefaultsAndValidate(t *testing.T) {
	p := validPeer()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	d := p.WithDefaults()
	if d.Port != 179 || d.HoldTime != 90*time.Second || d.KeepaliveTime != 30*time.Second || d.ConnectRetry != 5*time.Second {
		t.Errorf("defaults %+v", d)
	}
	if d := (bgp.Peer{HoldTime: 10 * time.Second}).WithDefaults(); d.KeepaliveTime != 3*time.Second {
		t.Errorf("keepalive default for hold 10s: %s", d.KeepaliveTime)
	}
	if p.IBGP() || !(bgp.Peer{PeerASN: 1, LocalASN: 1}).IBGP() {
		t.Error("IBGP")
	}
	p.Password = "secret"
	if s := p.String(); strings.Contains(s, "secret") || !strings.Contains(s, "192.0.2.1:179") {
		t.Errorf("String() = %q", s)
	}

	for name, mod := range map[string]func(*bgp.Peer){
		"no name":           func(p *bgp.Peer) { p.Name = "" },
		"no address":        func(p *bgp.Peer) { p.Address = netip.Addr{} },
		"unspecified":       func(p *bgp.Peer) { p.Address = addr("0.0.0.0") },
		"peer ASN 0":        func(p *bgp.Peer) { p.PeerASN = 0 },
		"local ASN 0":       func(p *bgp.Peer) { p.LocalASN = 0 },
		"hold 2s":           func(p *bgp.Peer) { p.HoldTime = 2 * time.Second },
		"hold fraction":     func(p *bgp.Peer) { p.HoldTime = 3500 * time.Millisecond },
		"keepalive >= hold": func(p *bgp.Peer) { p.HoldTime, p.KeepaliveTime = 9*time.Second, 9*time.Second },
		"connect retry":     func(p *bgp.Peer) { p.ConnectRetry = 500 * time.Millisecond },
		"long password":     func(p *bgp.Peer) { p.Password = strings.Repeat("x", 81) },
		"iBGP multihop":     func(p *bgp.Peer) { p.LocalASN, p.EBGPMultihopTTL = p.PeerASN, 2 },
		"source family":     func(p *bgp.Peer) { p.SourceAddress = addr("2001:db8::1") },
	} {
		p := validPeer()
		mod(&p)
		if err := p.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	ok := validPeer()
	ok.HoldTime, ok.KeepaliveTime, ok.EBGPMultihopTTL, ok.SourceAddress, ok.Password = 3*time.Second, time.Second, 3, addr("192.0.2.11"), strings.Repeat("x", 80)
	if err := ok.Validate(); err != nil {
		t.Error(err)
	}
}

func TestValidatePeersAndSelect(t *testing.T) {
	a, b := validPeer(), validPeer()
	b.Name = "tor2"
	b.Address = addr("192.0.2.2")
	if err := bgp.ValidatePeers([]bgp.Peer{a, b}); err != nil {
		t.Fatal(err)
	}
	dupName := b
	dupName.Name = "tor1"
	dupAddr := b
	dupAddr.Address = a.Address
	for _, bad := range [][]bgp.Peer{{a, dupName}, {a, dupAddr}} {
		if bgp.ValidatePeers(bad) == nil {
			t.Errorf("%v accepted", bad)
		}
	}

	b.NodeSelector = labels.SelectorFromSet(labels.Set{"rack": "r2"})
	got := bgp.SelectPeers([]bgp.Peer{a, b}, bgp.NodeStatus{Labels: map[string]string{"rack": "r1"}})
	if len(got) != 1 || got[0].Name != "tor1" {
		t.Errorf("rack r1 selects %v", got)
	}
	got = bgp.SelectPeers([]bgp.Peer{a, b}, bgp.NodeStatus{Labels: map[string]string{"rack": "r2"}})
	if len(got) != 2 || got[1].NodeSelector != nil {
		t.Errorf("rack r2 selects %v (selectors cleared)", got)
	}
}

func TestAdvertisementValidateAndEqual(t *testing.T) {
	if err := (bgp.Advertisement{Prefix: pfx("203.0.113.1/24")}).Validate(); err == nil {
		t.Error("host bits accepted")
	}
	if err := (bgp.Advertisement{}).Validate(); err == nil {
		t.Error("zero prefix accepted")
	}
	if err := (bgp.Advertisement{Prefix: pfx("::ffff:203.0.113.1/128")}).Validate(); err == nil {
		t.Error("IPv4-mapped prefix accepted")
	}
	x := bgp.Advertisement{Prefix: pfx("203.0.113.1/32"), Communities: []uint32{2, 1}, Peers: []string{"b", "a"}, LocalPref: u32(5)}
	y := bgp.Advertisement{Prefix: pfx("203.0.113.1/32"), Communities: []uint32{1, 2, 2}, Peers: []string{"a", "b"}, LocalPref: u32(5)}
	if !x.Equal(y) {
		t.Error("order-only difference is not equal")
	}
	y.LocalPref = u32(6)
	if x.Equal(y) {
		t.Error("different local pref is equal")
	}
	y.LocalPref = nil
	if x.Equal(y) {
		t.Error("nil vs set local pref is equal")
	}
	if !x.ForPeer("a") || x.ForPeer("c") || !(bgp.Advertisement{}).ForPeer("c") {
		t.Error("ForPeer")
	}

	peers := []bgp.Peer{{Name: "a"}}
	if err := bgp.ValidateAdvertisements([]bgp.Advertisement{{Prefix: pfx("203.0.113.1/32"), Peers: []string{"a"}}}, peers); err != nil {
		t.Error(err)
	}
	for _, bad := range [][]bgp.Advertisement{
		{{Prefix: pfx("203.0.113.1/32"), Peers: []string{"b"}}},
		{{Prefix: pfx("203.0.113.1/32")}, {Prefix: pfx("203.0.113.1/32")}},
		{{Prefix: pfx("203.0.113.1/32"), Peers: []string{""}}},
	} {
		if bgp.ValidateAdvertisements(bad, peers) == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestSessionStateString(t *testing.T) {
	if bgp.SessionEstablished.String() != "established" || bgp.SessionState(99).String() != "state(99)" || len(bgp.SessionStates()) != 7 {
		t.Error("session state names")
	}
}
