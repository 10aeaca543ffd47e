// Go 1.24+ listens with MPTCP by default, and an MPTCP socket refuses
// TCP_MD5SIG: GoBGP could not put the MD5 key on the plain peer's listener.
//go:debug multipathtcp=0

package gobgp

// Speaker tests against a plain GoBGP server in the same process, both on
// random 127/8 addresses: the Strait speaker dials out, the plain server
// listens on a free port of its own loopback address with passive
// neighbors.
//
// The tests do not run in parallel: GoBGP's StartBgp writes package-level
// variables (route selection options) that every server's goroutines read,
// a data race between servers of one process (production runs one). So
// each test starts all its servers before any of them has a session.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	bgppkt "github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/straitlb/strait/bgp"
)

// randomLoopback returns a random address in 127.0.0.0/8 (all local on
// Linux), avoiding .0 and .255 in the last byte.
func randomLoopback() netip.Addr {
	return netip.AddrFrom4([4]byte{127, byte(1 + rand.IntN(254)), byte(rand.IntN(256)), byte(1 + rand.IntN(254))})
}

func freePort(t *testing.T, addr netip.Addr) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

func testLogger(t *testing.T) *zap.Logger {
	if os.Getenv("STRAIT_BGP_DEBUG") != "" {
		l, _ := zap.NewDevelopment()
		return l.Named(t.Name())
	}
	return zap.NewNop()
}

// plainPeer is a plain GoBGP server standing in for a router.
type plainPeer struct {
	srv  *server.BgpServer
	addr netip.Addr
	port uint16
	asn  uint32
	node netip.Addr // the Strait node it accepts
}

func startPlainPeer(t *testing.T, asn uint32) *plainPeer {
	t.Helper()
	addr := randomLoopback()
	port := freePort(t, addr)
	srv := server.NewBgpServer(server.LoggerOption(newLogger(testLogger(t))))
	go srv.Serve()
	err := srv.StartBgp(context.Background(), &api.StartBgpRequest{Global: &api.Global{
		Asn: asn, RouterId: addr.String(), ListenPort: int32(port), ListenAddresses: []string{addr.String()},
	}})
	if err != nil {
		t.Fatalf("start plain GoBGP peer: %v", err)
	}
	t.Cleanup(srv.Stop)
	return &plainPeer{srv: srv, addr: addr, port: port, asn: asn}
}

// accept configures a passive neighbor (the Strait node).
func (pp *plainPeer) accept(t *testing.T, node netip.Addr, asn uint32, password string) {
	t.Helper()
	pp.node = node
	err := pp.srv.AddPeer(context.Background(), &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: node.String(), PeerAsn: asn, AuthPassword: password},
		Transport: &api.Transport{PassiveMode: true},
	}})
	if err != nil {
		t.Fatalf("plain peer: add neighbor: %v", err)
	}
}

// peerFor returns the bgp.Peer the Strait speaker uses to reach pp.
func (pp *plainPeer) peerFor(name string, src netip.Addr, localASN uint32) bgp.Peer {
	return bgp.Peer{
		Name: name, Address: pp.addr, Port: pp.port, PeerASN: pp.asn, LocalASN: localASN,
		SourceAddress: src, ConnectRetry: time.Second, HoldTime: 9 * time.Second,
	}
}

// originate makes the plain peer announce prefix itself.
func (pp *plainPeer) originate(t *testing.T, prefix netip.Prefix) {
	t.Helper()
	path, err := apiutil.NewPath(bgppkt.NewIPAddrPrefix(uint8(prefix.Bits()), prefix.Addr().String()), false,
		[]bgppkt.PathAttributeInterface{bgppkt.NewPathAttributeOrigin(0), bgppkt.NewPathAttributeNextHop(pp.addr.String())}, time.Now())
	if err == nil {
		_, err = pp.srv.AddPath(context.Background(), &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: path})
	}
	if err != nil {
		t.Fatalf("plain peer: originate %s: %v", prefix, err)
	}
}

// route is what the plain peer received from the node for one prefix.
type route struct {
	NextHop     netip.Addr
	ASPath      string
	Communities []uint32
	Large       []bgp.LargeCommunity
	LocalPref   *uint32
}

func (pp *plainPeer) routes(t *testing.T) map[netip.Prefix]route {
	t.Helper()
	out := make(map[netip.Prefix]route)
	err := pp.srv.ListPath(context.Background(), &api.ListPathRequest{
		TableType: api.TableType_GLOBAL, Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST},
	}, func(d *api.Destination) {
		for _, p := range d.Paths {
			if !p.Best || p.NeighborIp != pp.node.String() {
				continue
			}
			attrs, err := apiutil.GetNativePathAttributes(p)
			if err != nil {
				t.Errorf("decode attributes of %s: %v", d.Prefix, err)
				return
			}
			var r route
			for _, a := range attrs {
				switch a := a.(type) {
				case *bgppkt.PathAttributeNextHop:
					r.NextHop, _ = netip.AddrFromSlice(a.Value.To4())
				case *bgppkt.PathAttributeAsPath:
					var asns []string
					for _, seg := range a.Value {
						for _, as := range seg.GetAS() {
							asns = append(asns, strconv.FormatUint(uint64(as), 10))
						}
					}
					r.ASPath = strings.Join(asns, " ")
				case *bgppkt.PathAttributeCommunities:
					r.Communities = slices.Clone(a.Value)
				case *bgppkt.PathAttributeLargeCommunities:
					for _, v := range a.Values {
						r.Large = append(r.Large, bgp.LargeCommunity{GlobalAdmin: v.ASN, LocalData1: v.LocalData1, LocalData2: v.LocalData2})
					}
				case *bgppkt.PathAttributeLocalPref:
					v := a.Value
					r.LocalPref = &v
				}
			}
			out[netip.MustParsePrefix(d.Prefix)] = r
		}
	})
	if err != nil {
		t.Fatalf("plain peer: list paths: %v", err)
	}
	return out
}

func (pp *plainPeer) prefixes(t *testing.T) []netip.Prefix {
	var out []netip.Prefix
	for p := range pp.routes(t) {
		out = append(out, p)
	}
	slices.SortFunc(out, bgp.ComparePrefix)
	return out
}

func (pp *plainPeer) established(t *testing.T, node netip.Addr) bool {
	up := false
	err := pp.srv.ListPeer(context.Background(), &api.ListPeerRequest{Address: node.String()}, func(p *api.Peer) {
		up = p.State.SessionState == api.PeerState_ESTABLISHED
	})
	if err != nil {
		t.Errorf("plain peer: list peer: %v", err)
	}
	return up
}

// waitFor polls cond every millisecond until it holds and returns how long
// that took, or fails the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

func newSpeaker(t *testing.T, node netip.Addr) *Speaker {
	t.Helper()
	s, err := New(context.Background(), Config{NodeIP: node, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close speaker: %v", err)
		}
	})
	return s
}

func sessionUp(s bgp.Speaker, name string) func() bool {
	return func() bool {
		p, ok := s.Status().Peer(name)
		return ok && p.State == bgp.SessionEstablished
	}
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestSpeakerEBGPAnnounceChangeWithdraw(t *testing.T) {
	ctx := context.Background()
	tor := startPlainPeer(t, 65000)
	node := randomLoopback()
	tor.accept(t, node, 64512, "")
	s := newSpeaker(t, node)
	if s.RouterID() != node {
		t.Errorf("router ID %s, want the node IP %s", s.RouterID(), node)
	}

	start := time.Now()
	if err := s.SetPeers(ctx, []bgp.Peer{tor.peerFor("tor", node, 64512)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "session up", sessionUp(s, "tor"))
	t.Logf("measured: session established %s after SetPeers", time.Since(start).Round(time.Millisecond))

	comm, _ := bgp.ParseCommunity("64512:100")
	host := bgp.Advertisement{
		Prefix: pfx("203.0.113.10/32"), Communities: []uint32{comm},
		LargeCommunities: []bgp.LargeCommunity{{GlobalAdmin: 64512, LocalData1: 7, LocalData2: 9}}, LocalPref: u32(300),
	}
	agg := bgp.Advertisement{Prefix: pfx("198.51.100.0/24")}
	start = time.Now()
	if err := s.SetAdvertisements(ctx, []bgp.Advertisement{host, agg}); err != nil {
		t.Fatal(err)
	}
	d := waitFor(t, 5*time.Second, "both prefixes at the peer", func() bool { return len(tor.routes(t)) == 2 })
	t.Logf("measured: prefixes visible at the peer %s after SetAdvertisements", d.Round(100*time.Microsecond))
	_ = start

	got := tor.routes(t)
	r := got[host.Prefix]
	if r.NextHop != node {
		t.Errorf("next hop %s, want the node's session address %s", r.NextHop, node)
	}
	if r.ASPath != "64512" {
		t.Errorf("AS path %q, want 64512", r.ASPath)
	}
	if !slices.Equal(r.Communities, []uint32{comm}) || !slices.Equal(r.Large, host.LargeCommunities) {
		t.Errorf("communities %v large %v, want %v %v", r.Communities, r.Large, host.Communities, host.LargeCommunities)
	}
	if r.LocalPref != nil {
		t.Errorf("LOCAL_PREF %d sent on an eBGP session", *r.LocalPref)
	}
	if r := got[agg.Prefix]; r.NextHop != node || len(r.Communities) != 0 {
		t.Errorf("aggregate route %+v", r)
	}

	st, _ := s.Status().Peer("tor")
	if !slices.Equal(st.Advertised, []netip.Prefix{agg.Prefix, host.Prefix}) || st.UpdatesSent == 0 || st.Address != tor.addr || st.Since.IsZero() {
		t.Errorf("status %+v", st)
	}

	// Metrics from the injected registry.
	reg := prometheus.NewPedanticRegistry()
	if err := bgp.RegisterMetrics(reg, s); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`
# HELP strait_bgp_advertised_prefixes Number of prefixes currently advertised to the peer (its Adj-RIB-Out).
# TYPE strait_bgp_advertised_prefixes gauge
strait_bgp_advertised_prefixes{address="%[1]s",peer="tor"} 2
# HELP strait_bgp_session_up 1 when the BGP session with the peer is established, else 0.
# TYPE strait_bgp_session_up gauge
strait_bgp_session_up{address="%[1]s",peer="tor"} 1
`, tor.addr)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "strait_bgp_session_up", "strait_bgp_advertised_prefixes"); err != nil {
		t.Error(err)
	}
	if n := testutil.ToFloat64(filterCollector{bgp.NewCollector(s), "strait_bgp_updates_sent_total"}); n < 1 {
		t.Errorf("updates sent metric %v", n)
	}

	// Withdraw the aggregate, change the host route's community.
	comm2, _ := bgp.ParseCommunity("64512:200")
	host2 := host
	host2.Communities = []uint32{comm2}
	start = time.Now()
	if err := s.SetAdvertisements(ctx, []bgp.Advertisement{host2}); err != nil {
		t.Fatal(err)
	}
	d = waitFor(t, 5*time.Second, "withdrawal and new community", func() bool {
		got := tor.routes(t)
		_, stillAgg := got[agg.Prefix]
		return !stillAgg && slices.Equal(got[host.Prefix].Communities, []uint32{comm2})
	})
	t.Logf("measured: withdrawal and attribute change visible %s after SetAdvertisements", d.Round(100*time.Microsecond))

	// Idempotent: the same set again sends nothing. GoBGP counts a sent
	// UPDATE after writing it, so let the counter settle first.
	var before bgp.PeerStatus
	waitFor(t, 5*time.Second, "UPDATE counter to settle", func() bool {
		a, _ := s.Status().Peer("tor")
		time.Sleep(50 * time.Millisecond)
		before, _ = s.Status().Peer("tor")
		return a.UpdatesSent == before.UpdatesSent
	})
	if err := s.SetAdvertisements(ctx, []bgp.Advertisement{host2}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if after, _ := s.Status().Peer("tor"); after.UpdatesSent != before.UpdatesSent {
		t.Errorf("re-applying the same set sent %d updates", after.UpdatesSent-before.UpdatesSent)
	}

	// A changed peer is re-established, and gets the routes again. The
	// plain peer's neighbor is re-created first: after a session, GoBGP
	// stays idle for 5s before it accepts again (the Strait side's new
	// neighbor has no such delay).
	if err := tor.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: node.String()}); err != nil {
		t.Fatal(err)
	}
	tor.accept(t, node, 64512, "")
	changed := tor.peerFor("tor", node, 64512)
	changed.HoldTime = 6 * time.Second
	if err := s.SetPeers(ctx, []bgp.Peer{changed}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "session re-established with the new hold time", func() bool {
		var hold uint64
		tor.srv.ListPeer(ctx, &api.ListPeerRequest{Address: node.String()}, func(p *api.Peer) {
			if p.State.SessionState == api.PeerState_ESTABLISHED && p.Timers != nil && p.Timers.State != nil {
				hold = p.Timers.State.NegotiatedHoldTime
			}
		})
		_, ok := tor.routes(t)[host.Prefix]
		return hold == 6 && ok
	})

	// Removing the peer closes the session; its routes go.
	if err := s.SetPeers(ctx, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "session down and routes gone at the peer", func() bool {
		return !tor.established(t, node) && len(tor.routes(t)) == 0
	})
	if st := s.Status(); len(st.Peers) != 0 {
		t.Errorf("status after removing every peer: %+v", st)
	}
}

// filterCollector exposes only the metrics of one family name.
type filterCollector struct {
	c    prometheus.Collector
	name string
}

func (f filterCollector) Describe(ch chan<- *prometheus.Desc) { f.c.Describe(ch) }
func (f filterCollector) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric)
	go func() { f.c.Collect(all); close(all) }()
	for m := range all {
		if strings.Contains(m.Desc().String(), `"`+f.name+`"`) {
			ch <- m
		}
	}
}

func TestSpeakerIBGPLocalPrefAndGracefulShutdown(t *testing.T) {
	ctx := context.Background()
	tor := startPlainPeer(t, 64512)
	node := randomLoopback()
	tor.accept(t, node, 64512, "")
	s := newSpeaker(t, node)
	if err := s.SetPeers(ctx, []bgp.Peer{tor.peerFor("tor", node, 64512)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "iBGP session up", sessionUp(s, "tor"))

	a := bgp.Advertisement{Prefix: pfx("203.0.113.20/32"), LocalPref: u32(250)}
	if err := s.SetAdvertisements(ctx, []bgp.Advertisement{a}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "LOCAL_PREF 250", func() bool {
		r, ok := tor.routes(t)[a.Prefix]
		return ok && r.LocalPref != nil && *r.LocalPref == 250
	})

	if err := s.SetAdvertisements(ctx, bgp.GracefulShutdown([]bgp.Advertisement{a})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "GRACEFUL_SHUTDOWN with LOCAL_PREF 0", func() bool {
		r, ok := tor.routes(t)[a.Prefix]
		return ok && r.LocalPref != nil && *r.LocalPref == 0 && slices.Equal(r.Communities, []uint32{bgp.CommunityGracefulShutdown})
	})
	if r := tor.routes(t)[a.Prefix]; r.NextHop != node || r.ASPath != "" {
		t.Errorf("iBGP route %+v: want next hop %s and an empty AS path", r, node)
	}
}

func TestSpeakerMD5(t *testing.T) {
	ctx := context.Background()
	t.Run("match", func(t *testing.T) {
		tor := startPlainPeer(t, 65000)
		node := randomLoopback()
		tor.accept(t, node, 64512, "strait-md5-secret")
		s := newSpeaker(t, node)
		p := tor.peerFor("tor", node, 64512)
		p.Password = "strait-md5-secret"
		start := time.Now()
		if err := s.SetPeers(ctx, []bgp.Peer{p}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "MD5 session up", sessionUp(s, "tor"))
		t.Logf("measured: MD5 session established %s after SetPeers", time.Since(start).Round(time.Millisecond))
		if err := s.SetAdvertisements(ctx, []bgp.Advertisement{{Prefix: pfx("203.0.113.30/32")}}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "prefix over MD5 session", func() bool { return len(tor.routes(t)) == 1 })
	})
	t.Run("mismatch", func(t *testing.T) {
		tor := startPlainPeer(t, 65000)
		node := randomLoopback()
		tor.accept(t, node, 64512, "the-right-one")
		s := newSpeaker(t, node)
		p := tor.peerFor("tor", node, 64512)
		p.Password = "a-wrong-one"
		if err := s.SetPeers(ctx, []bgp.Peer{p}); err != nil {
			t.Fatal(err)
		}
		// The first attempt is 1-2s after SetPeers, then one every 1-2s:
		// 3.5s covers at least one attempt, usually two.
		deadline := time.Now().Add(3500 * time.Millisecond)
		for time.Now().Before(deadline) {
			if sessionUp(s, "tor")() {
				t.Fatal("session came up with mismatched MD5 passwords")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

func TestSpeakerPerPeerSelection(t *testing.T) {
	ctx := context.Background()
	// Every GoBGP server starts before any session exists (see the
	// comment at the top).
	tor1, tor2, tor3 := startPlainPeer(t, 65001), startPlainPeer(t, 65002), startPlainPeer(t, 65003)
	node := randomLoopback()
	tor1.accept(t, node, 64512, "")
	tor2.accept(t, node, 64512, "")
	tor3.accept(t, node, 64512, "")
	// The node must learn nothing: what tor1 sends must never reach tor2
	// (expect checks the exact sets).
	tor1.originate(t, pfx("198.51.100.0/24"))
	s := newSpeaker(t, node)
	if err := s.SetPeers(ctx, []bgp.Peer{tor1.peerFor("tor1", node, 64512), tor2.peerFor("tor2", node, 64512)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "both sessions up", func() bool { return sessionUp(s, "tor1")() && sessionUp(s, "tor2")() })

	x := bgp.Advertisement{Prefix: pfx("203.0.113.1/32"), Peers: []string{"tor1"}}
	y := bgp.Advertisement{Prefix: pfx("203.0.113.2/32")}
	expect := func(step string, want1, want2 []netip.Prefix) {
		t.Helper()
		waitFor(t, 5*time.Second, step, func() bool {
			return slices.Equal(tor1.prefixes(t), want1) && slices.Equal(tor2.prefixes(t), want2)
		})
		st := s.Status()
		p1, _ := st.Peer("tor1")
		p2, _ := st.Peer("tor2")
		if !slices.Equal(p1.Advertised, want1) || !slices.Equal(p2.Advertised, want2) {
			t.Errorf("%s: status advertised tor1=%v tor2=%v, want %v %v", step, p1.Advertised, p2.Advertised, want1, want2)
		}
	}
	if err := s.SetAdvertisements(ctx, []bgp.Advertisement{x, y}); err != nil {
		t.Fatal(err)
	}
	expect("x to tor1 only", []netip.Prefix{x.Prefix, y.Prefix}, []netip.Prefix{y.Prefix})

	x.Peers = []string{"tor2"}
	if err := s.SetAdvertisements(ctx, []bgp.Advertisement{x, y}); err != nil {
		t.Fatal(err)
	}
	expect("x moved to tor2", []netip.Prefix{y.Prefix}, []netip.Prefix{x.Prefix, y.Prefix})

	x.Peers = nil
	if err := s.SetAdvertisements(ctx, []bgp.Advertisement{x, y}); err != nil {
		t.Fatal(err)
	}
	expect("x to every peer", []netip.Prefix{x.Prefix, y.Prefix}, []netip.Prefix{x.Prefix, y.Prefix})

	x.Peers = []string{"tor1"}
	y.Peers = []string{"tor2"}
	if err := s.SetAdvertisements(ctx, []bgp.Advertisement{x, y}); err != nil {
		t.Fatal(err)
	}
	expect("x to tor1, y to tor2", []netip.Prefix{x.Prefix}, []netip.Prefix{y.Prefix})

	// An unknown peer name is refused and changes nothing.
	bad := bgp.Advertisement{Prefix: pfx("203.0.113.3/32"), Peers: []string{"nope"}}
	if err := s.SetAdvertisements(ctx, []bgp.Advertisement{x, y, bad}); err == nil {
		t.Error("advertisement for an unknown peer accepted")
	}
	// Removing tor2 and adding tor3 with no restriction in its favour:
	// tor3 must not get x (tor1 only) nor y (tor2 only, gone).
	if err := s.SetPeers(ctx, []bgp.Peer{tor1.peerFor("tor1", node, 64512), tor3.peerFor("tor3", node, 64512)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "tor3 up", sessionUp(s, "tor3"))
	if err := s.SetAdvertisements(ctx, []bgp.Advertisement{x, {Prefix: pfx("203.0.113.4/32")}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "tor3 gets only the unrestricted prefix", func() bool {
		return slices.Equal(tor3.prefixes(t), []netip.Prefix{pfx("203.0.113.4/32")}) &&
			slices.Equal(tor1.prefixes(t), []netip.Prefix{x.Prefix, pfx("203.0.113.4/32")})
	})
}

// listeningPorts returns the TCP ports this process listens on.
func listeningPorts(t *testing.T) map[int]bool {
	t.Helper()
	inodes := make(map[string]bool)
	fds, _ := filepath.Glob("/proc/self/fd/*")
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	ports := make(map[int]bool)
	for _, f := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] {
				continue
			}
			_, port, _ := strings.Cut(fields[1], ":")
			p, _ := strconv.ParseInt(port, 16, 32)
			ports[int(p)] = true
		}
	}
	return ports
}

// Not parallel: it compares this process's listening sockets before and
// after, which parallel tests would disturb.
func TestSpeakerListensOnlyWhenConfigured(t *testing.T) {
	before := listeningPorts(t)
	node := randomLoopback()
	s := newSpeaker(t, node)
	if err := s.SetPeers(context.Background(), []bgp.Peer{{Name: "x", Address: randomLoopback(), PeerASN: 1, LocalASN: 2}}); err != nil {
		t.Fatal(err)
	}
	for p := range listeningPorts(t) {
		if !before[p] {
			t.Errorf("speaker with the default config listens on TCP port %d", p)
		}
	}

	port := freePort(t, node)
	l, err := New(context.Background(), Config{NodeIP: node, ListenPort: int32(port), ListenAddresses: []netip.Addr{node}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if !listeningPorts(t)[int(port)] {
		t.Errorf("speaker with ListenPort %d does not listen", port)
	}
}

func TestNewValidation(t *testing.T) {
	if _, err := New(context.Background(), Config{NodeIP: netip.MustParseAddr("2001:db8::1")}); err == nil {
		t.Error("IPv6 node IP accepted as router ID")
	}
	if _, err := New(context.Background(), Config{}); err == nil {
		t.Error("no router ID accepted")
	}
	s, err := New(context.Background(), Config{NodeIP: netip.MustParseAddr("2001:db8::1"), RouterID: netip.MustParseAddr("192.0.2.7")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.RouterID() != netip.MustParseAddr("192.0.2.7") {
		t.Errorf("router ID %s", s.RouterID())
	}
	if err := s.SetPeers(context.Background(), []bgp.Peer{{Name: "x", Address: netip.MustParseAddr("192.0.2.1")}}); err == nil {
		t.Error("peer without ASNs accepted")
	}
	if err := s.SetAdvertisements(context.Background(), []bgp.Advertisement{{Prefix: pfx("203.0.113.5/24")}}); err == nil {
		t.Error("prefix with host bits accepted")
	}
	if err := s.SetAdvertisements(context.Background(), []bgp.Advertisement{{Prefix: pfx("203.0.113.5/32")}, {Prefix: pfx("203.0.113.5/32")}}); err == nil {
		t.Error("duplicate prefix accepted")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAdvertisements(context.Background(), nil); err != ErrClosed {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
}

func TestZapLogger(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	l := newLogger(zap.New(core))
	if l.GetLevel() != gobgplog.InfoLevel {
		t.Errorf("level %v, want info (from the zap core)", l.GetLevel())
	}
	l.Debug("hidden", nil)
	l.Info("shown", gobgplog.Fields{"Topic": "Peer", "Key": "192.0.2.1", gobgplog.FieldFacility: gobgplog.FacilityConfig})
	l.Fatal("not fatal", gobgplog.Fields{"Error": "x"}) // must return
	entries := logs.AllUntimed()
	if len(entries) != 2 || entries[0].Message != "shown" || entries[1].Level != zapcore.ErrorLevel {
		t.Fatalf("entries %v", entries)
	}
	if f := entries[0].ContextMap(); f["Key"] != "192.0.2.1" || f["Topic"] != "Peer" || f["facility"] != "config" {
		t.Errorf("fields %v", f)
	}
	if f := entries[1].ContextMap(); f["gobgpFatal"] != true {
		t.Errorf("fatal fields %v", f)
	}

	dcore, dlogs := observer.New(zapcore.DebugLevel)
	d := newLogger(zap.New(dcore))
	if d.GetLevel() != gobgplog.DebugLevel {
		t.Errorf("level %v, want debug", d.GetLevel())
	}
	d.SetLevel(gobgplog.WarnLevel)
	d.Info("filtered by SetLevel", nil)
	d.Warn("shown", nil)
	if dlogs.Len() != 1 {
		t.Errorf("SetLevel(warn) did not filter: %v", dlogs.AllUntimed())
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Panic did not panic")
			}
		}()
		l.Panic("bug", nil)
	}()
}
