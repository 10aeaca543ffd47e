package gobgp

// SetAdvertisements applies only the difference with what it applied
// before: these tests drive it through random sequences of declarative sets
// and check that it ends where a speaker given only the final set starts.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"google.golang.org/protobuf/proto"

	"github.com/straitlb/strait/bgp"
)

// randomSets generates random declarative sets over a fixed universe of
// prefixes.
type randomSets struct {
	r        *rand.Rand
	universe []netip.Prefix
	peers    []string // names advertisements may be restricted to
	want     map[netip.Prefix]bgp.Advertisement
}

func newRandomSets(seed uint64, v4, v6 int, peers []string) *randomSets {
	g := &randomSets{r: rand.New(rand.NewPCG(seed, 1)), peers: peers, want: make(map[netip.Prefix]bgp.Advertisement)}
	for i := range v4 {
		bits := 32
		if i%5 == 0 {
			bits = 24
		}
		g.universe = append(g.universe, netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i), 1}), bits).Masked())
	}
	for i := range v6 {
		a := netip.MustParseAddr("2001:db8::1").As16()
		a[5] = byte(i)
		g.universe = append(g.universe, netip.PrefixFrom(netip.AddrFrom16(a), 128))
	}
	return g
}

// pick returns n of vals in random order, sometimes with a duplicate: the
// speaker must not care.
func pick[T any](r *rand.Rand, vals []T, n int) []T {
	var out []T
	for _, i := range r.Perm(len(vals))[:n] {
		out = append(out, vals[i])
	}
	if n > 0 && r.IntN(5) == 0 {
		out = append(out, out[0])
	}
	return out
}

var (
	testCommunities = []uint32{64512<<16 | 1, 64512<<16 | 2, 64512<<16 | 3, bgp.CommunityNoExport}
	testLarge       = []bgp.LargeCommunity{{GlobalAdmin: 64512, LocalData1: 1, LocalData2: 1}, {GlobalAdmin: 64512, LocalData1: 2, LocalData2: 0}}
)

// attributes sets random attributes on a.
func (g *randomSets) attributes(a *bgp.Advertisement, what int) {
	r := g.r
	switch what {
	case 0:
		a.Communities = pick(r, testCommunities, r.IntN(3))
	case 1:
		a.LargeCommunities = pick(r, testLarge, r.IntN(2))
	case 2:
		a.LocalPref = nil
		if r.IntN(2) == 0 {
			v := uint32(100 + 100*r.IntN(2))
			a.LocalPref = &v
		}
	case 3:
		a.Peers = nil
		if len(g.peers) > 0 && r.IntN(2) == 0 {
			a.Peers = pick(r, g.peers, 1+r.IntN(len(g.peers)))
		}
	}
}

// step changes a few prefixes: adds, removes, attribute changes.
func (g *randomSets) step() {
	for range 1 + g.r.IntN(4) {
		p := g.universe[g.r.IntN(len(g.universe))]
		a, ok := g.want[p]
		switch {
		case !ok:
			a = bgp.Advertisement{Prefix: p}
			for what := range 4 {
				if g.r.IntN(2) == 0 {
					g.attributes(&a, what)
				}
			}
			g.want[p] = a
		case g.r.IntN(3) == 0:
			delete(g.want, p)
		default:
			a = a.Clone()
			g.attributes(&a, g.r.IntN(4))
			g.want[p] = a
		}
	}
}

// set returns the desired set, usually sorted (as bgp.Controller passes
// it), sometimes not.
func (g *randomSets) set() []bgp.Advertisement {
	out := make([]bgp.Advertisement, 0, len(g.want))
	for _, a := range g.want {
		out = append(out, a.Clone())
	}
	if g.r.IntN(5) == 0 {
		g.r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	} else {
		bgp.SortAdvertisements(out)
	}
	return out
}

// checkApplied checks the speaker's own record of what it applied.
func checkApplied(t *testing.T, s *Speaker, want []bgp.Advertisement, step string) {
	t.Helper()
	want = slices.Clone(want)
	bgp.SortAdvertisements(want)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.advs) != len(want) {
		t.Fatalf("%s: %d prefixes applied, want %d", step, len(s.advs), len(want))
	}
	for i := range want {
		if got := s.advs[i].adv(); !got.Equal(want[i]) || !slices.Equal(got.Communities, want[i].Canonical().Communities) {
			t.Fatalf("%s: applied[%d] = %v, want %v", step, i, got, want[i])
		}
	}
}

// rib describes every path in the speaker's global RIB, attributes
// included.
func rib(t *testing.T, s *Speaker) map[string]string {
	t.Helper()
	out := make(map[string]string)
	for _, f := range []*api.Family{family(netip.IPv4Unspecified()), family(netip.IPv6Unspecified())} {
		err := s.srv.ListPath(context.Background(), &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: f}, func(d *api.Destination) {
			var paths []string
			for _, p := range d.Paths {
				attrs, err := apiutil.GetNativePathAttributes(p)
				if err != nil {
					t.Errorf("decode %s: %v", d.Prefix, err)
				}
				var as []string
				for _, a := range attrs {
					as = append(as, a.String())
				}
				paths = append(paths, fmt.Sprintf("best=%v withdraw=%v %s", p.Best, p.IsWithdraw, strings.Join(as, " ")))
			}
			out[d.Prefix] = strings.Join(paths, " | ")
		})
		if err != nil {
			t.Fatalf("list paths: %v", err)
		}
	}
	return out
}

// policy describes the speaker's routing policy in GoBGP.
func policy(t *testing.T, s *Speaker) []proto.Message {
	t.Helper()
	ctx := context.Background()
	var out []proto.Message
	err := s.srv.ListPolicy(ctx, &api.ListPolicyRequest{}, func(p *api.Policy) { out = append(out, p) })
	for _, typ := range []api.DefinedType{api.DefinedType_NEIGHBOR, api.DefinedType_PREFIX} {
		if err == nil {
			err = s.srv.ListDefinedSet(ctx, &api.ListDefinedSetRequest{DefinedType: typ}, func(d *api.DefinedSet) { out = append(out, d) })
		}
	}
	if err != nil {
		t.Fatalf("list policy: %v", err)
	}
	return out
}

func samePolicy(a, b []proto.Message) bool {
	return slices.EqualFunc(a, b, proto.Equal)
}

// TestSetAdvertisementsRandomSequence: after random declarative sets (adds,
// removes, attribute and peer changes, unsorted and invalid sets), the
// speaker's GoBGP server holds exactly the paths and the routing policy of
// a speaker given only the final set.
func TestSetAdvertisementsRandomSequence(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { testSetAdvertisementsRandomSequence(t, seed) })
	}
}

func testSetAdvertisementsRandomSequence(t *testing.T, seed uint64) {
	ctx := context.Background()
	peers := []bgp.Peer{
		{Name: "a", Address: randomLoopback(), Port: 1, PeerASN: 65001, LocalASN: 64512, ConnectRetry: time.Hour},
		{Name: "b", Address: randomLoopback(), Port: 1, PeerASN: 65002, LocalASN: 64512, ConnectRetry: time.Hour},
		{Name: "v6", Address: netip.MustParseAddr("::1"), Port: 1, PeerASN: 65003, LocalASN: 64512, ConnectRetry: time.Hour},
	}
	const steps, every = 300, 60
	// Every GoBGP server starts first (see the comment at the top of
	// speaker_test.go).
	s := newSpeaker(t, randomLoopback())
	var fresh []*Speaker
	for range steps/every + 1 {
		fresh = append(fresh, newSpeaker(t, randomLoopback()))
	}
	for _, sp := range append([]*Speaker{s}, fresh...) {
		if err := sp.SetPeers(ctx, peers); err != nil {
			t.Fatal(err)
		}
	}
	g := newRandomSets(seed, 60, 20, []string{"a", "b", "v6"})
	check := func(step string) {
		t.Helper()
		f := fresh[0]
		fresh = fresh[1:]
		final := g.set()
		if err := f.SetAdvertisements(ctx, final); err != nil {
			t.Fatalf("%s: from scratch: %v", step, err)
		}
		checkApplied(t, f, final, step+" (from scratch)")
		got, want := rib(t, s), rib(t, f)
		if len(want) != len(g.want) {
			t.Fatalf("%s: the speaker from scratch has %d paths, want %d", step, len(want), len(g.want))
		}
		for p, w := range want {
			if got[p] != w {
				t.Errorf("%s: %s is\n  %q\nwant\n  %q", step, p, got[p], w)
			}
		}
		for p, g := range got {
			if _, ok := want[p]; !ok {
				t.Errorf("%s: %s should not be there: %q", step, p, g)
			}
		}
		if gp, wp := policy(t, s), policy(t, f); !samePolicy(gp, wp) {
			t.Errorf("%s: routing policy\n  %v\nwant\n  %v", step, gp, wp)
		}
		if _, key := routingPolicy(final, peers); s.policyKey != key || f.policyKey != key {
			t.Errorf("%s: policy key %q (from scratch %q), want %q", step, s.policyKey, f.policyKey, key)
		}
	}
	for i := 1; i <= steps; i++ {
		step := fmt.Sprintf("step %d", i)
		g.step()
		set := g.set()
		if g.r.IntN(10) == 0 && len(set) > 0 {
			// An invalid set is refused and changes nothing.
			bad := slices.Clone(set)
			switch i := g.r.IntN(len(bad)); g.r.IntN(3) {
			case 0:
				bad = append(bad, bad[i])
			case 1:
				bad[i].Peers = []string{"nope"}
			default:
				bad[i].Prefix = pfx("198.18.255.1/24") // host bits
			}
			s.mu.Lock()
			before := slices.Clone(s.advs)
			s.mu.Unlock()
			if err := s.SetAdvertisements(ctx, bad); err == nil {
				t.Fatalf("%s: invalid set accepted", step)
			}
			s.mu.Lock()
			unchanged := slices.Equal(before, s.advs)
			s.mu.Unlock()
			if !unchanged {
				t.Fatalf("%s: an invalid set changed the applied advertisements", step)
			}
		}
		if err := s.SetAdvertisements(ctx, set); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		checkApplied(t, s, set, step)
		if i%every == 0 {
			check(step)
		}
	}
	// And back to nothing.
	g.want = map[netip.Prefix]bgp.Advertisement{}
	if err := s.SetAdvertisements(ctx, nil); err != nil {
		t.Fatal(err)
	}
	check("empty")
}

// TestSetAdvertisementsRandomSequenceAtPeers: two routers receive exactly
// what the final set of a random sequence sends each of them (prefixes
// moving between the peers included).
func TestSetAdvertisementsRandomSequenceAtPeers(t *testing.T) {
	ctx := context.Background()
	tor1, tor2 := startPlainPeer(t, 65001), startPlainPeer(t, 65002)
	node := randomLoopback()
	tor1.accept(t, node, 64512, "")
	tor2.accept(t, node, 64512, "")
	s := newSpeaker(t, node)
	peers := []bgp.Peer{tor1.peerFor("tor1", node, 64512), tor2.peerFor("tor2", node, 64512)}
	if err := s.SetPeers(ctx, peers); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "sessions up", func() bool { return sessionUp(s, "tor1")() && sessionUp(s, "tor2")() })

	g := newRandomSets(7, 40, 0, []string{"tor1", "tor2"})
	expect := func(step string) {
		t.Helper()
		for i, tor := range []*plainPeer{tor1, tor2} {
			want := make(map[netip.Prefix]route)
			for _, a := range g.want {
				if !sendsTo(a, peers[i]) {
					continue
				}
				a = a.Canonical()
				want[a.Prefix] = route{NextHop: node, ASPath: "64512", Communities: a.Communities, Large: a.LargeCommunities}
			}
			var got map[netip.Prefix]route
			ok := func() bool {
				got = tor.routes(t)
				return fmt.Sprint(got) == fmt.Sprint(want)
			}
			start := time.Now()
			for !ok() && time.Since(start) < 5*time.Second {
				time.Sleep(5 * time.Millisecond)
			}
			if !ok() {
				t.Fatalf("%s: tor%d has\n  %v\nwant\n  %v", step, i+1, got, want)
			}
		}
	}
	for i := 1; i <= 120; i++ {
		g.step()
		if err := s.SetAdvertisements(ctx, g.set()); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if i%30 == 0 {
			expect(fmt.Sprintf("step %d", i))
		}
	}
}
