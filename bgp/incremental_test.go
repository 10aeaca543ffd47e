package bgp

// The Controller computes its announcements incrementally (announcer):
// this test drives it through random states, configurations, peers, node
// changes and drains, and checks every result against the computation from
// scratch it replaces.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/straitlb/strait/model"
)

// referenceDesired is desiredLocked as it was before the announcer:
// everything from scratch.
func referenceDesired(c *Controller, peers []Peer) []Advertisement {
	var advs []Advertisement
	if c.draining {
		all := union(c.advsLocked(), func(adv AdvertisementConfig) []Advertisement { return announce(c.in.State, adv) })
		for _, a := range all {
			if c.drainSet[a.Prefix] {
				advs = append(advs, a)
			}
		}
		advs = GracefulShutdown(advs)
	} else {
		advs = AnnouncementsOf(c.in.State, c.in.Node, c.advsLocked())
	}
	return RestrictToPeers(advs, peers)
}

// recordingSpeaker keeps the last advertisements and can fail.
type recordingSpeaker struct {
	peers   []Peer
	advs    []Advertisement
	sets    int
	failing bool
}

var errTest = errors.New("test failure")

func (s *recordingSpeaker) SetPeers(_ context.Context, peers []Peer) error {
	if s.failing {
		return errTest
	}
	s.peers = slices.Clone(peers)
	return nil
}

func (s *recordingSpeaker) SetAdvertisements(_ context.Context, advs []Advertisement) error {
	if s.failing {
		return errTest
	}
	if err := ValidateAdvertisements(advs, s.peers); err != nil {
		return err
	}
	s.sets++
	s.advs = make([]Advertisement, len(advs))
	for i, a := range advs {
		s.advs[i] = a.Clone()
	}
	return nil
}

func (s *recordingSpeaker) Status() Status { return Status{} }
func (s *recordingSpeaker) Close() error   { return nil }

// randomWorld mutates a controller's input at random.
type randomWorld struct {
	r      *rand.Rand
	in     Input
	vips   []netip.Addr
	sorted bool // services sorted by name, as the agent's are
}

func (w *randomWorld) service(i int) model.Service {
	r := w.r
	svc := model.Service{Name: model.ServiceName{Namespace: "ns", Name: fmt.Sprintf("s%d", i), Port: "p"}}
	if r.IntN(3) == 0 {
		svc.Name.Scope = ScopeExternal
	}
	svc.Frontends = append(svc.Frontends, model.Frontend{Addr: netip.MustParseAddr("10.96.0.1"), Port: 80, Proto: model.TCP, Kind: model.ClusterIP})
	for range r.IntN(3) {
		svc.Frontends = append(svc.Frontends, model.Frontend{Addr: w.vips[r.IntN(len(w.vips))], Port: 80, Proto: model.TCP, Kind: model.LoadBalancer})
	}
	for range r.IntN(3) {
		svc.Backends = append(svc.Backends, model.Backend{Addr: netip.AddrFrom4([4]byte{100, 64, 0, byte(r.IntN(200))}), Port: 8080, Local: r.IntN(2) == 0})
	}
	return svc
}

func inPrefixes(ps ...string) func(netip.Addr) bool {
	return func(a netip.Addr) bool {
		return slices.ContainsFunc(ps, func(p string) bool { return netip.MustParsePrefix(p).Contains(a) })
	}
}

// configs returns one of a few advertisement configurations.
func (w *randomWorld) configs() []AdvertisementConfig {
	lp := uint32(200)
	sel, _ := labels.Parse("zone=a")
	switch w.r.IntN(6) {
	case 0:
		return nil // ControllerConfig's
	case 5:
		// The node's labels move every prefix from one to the other.
		return []AdvertisementConfig{{NodeSelector: sel, Communities: []uint32{1}}, {Communities: []uint32{2}}}
	case 1:
		return []AdvertisementConfig{{AggregationLength: 24, Communities: []uint32{3, 1, 3}, Peers: []string{"tor2", "tor1"}}}
	case 2:
		return []AdvertisementConfig{
			{Selects: inPrefixes("203.0.113.0/25"), AggregationLength: 26, LocalPref: &lp, Peers: []string{"tor3"}},
			{Selects: inPrefixes("203.0.113.0/24", "2001:db8::/64"), AggregationLengthV6: 120, Communities: []uint32{7}},
			{LargeCommunities: []LargeCommunity{{1, 2, 3}}, NodeSelector: sel},
		}
	case 3:
		return []AdvertisementConfig{
			{NodeSelector: sel, Communities: []uint32{1}},
			{Selects: inPrefixes("198.51.100.0/24"), Peers: []string{"tor1"}},
		}
	}
	return []AdvertisementConfig{{AggregationLength: 28}, {Peers: []string{"tor2"}, AggregationLength: 30}}
}

func (w *randomWorld) step() {
	r := w.r
	svcs := &w.in.State.Services
	switch k := r.IntN(20); {
	case k < 6 && len(*svcs) > 0:
		i := r.IntN(len(*svcs))
		(*svcs)[i] = w.service(i)
	case k < 9 && len(*svcs) > 0:
		// One service loses a frontend or its backends.
		i := r.IntN(len(*svcs))
		svc := (*svcs)[i]
		if len(svc.Frontends) > 0 && r.IntN(2) == 0 {
			j := r.IntN(len(svc.Frontends))
			svc.Frontends = slices.Delete(slices.Clone(svc.Frontends), j, j+1)
		} else {
			svc.Backends = nil
		}
		(*svcs)[i] = svc
	case k < 12 && len(*svcs) > 0:
		// Or gains one.
		i := r.IntN(len(*svcs))
		svc := (*svcs)[i]
		svc.Frontends = append(slices.Clip(svc.Frontends), model.Frontend{Addr: w.vips[r.IntN(len(w.vips))], Port: 80, Proto: model.TCP, Kind: model.LoadBalancer})
		(*svcs)[i] = svc
	case k < 15:
		*svcs = append(*svcs, w.service(len(*svcs)))
	case k < 17 && len(*svcs) > 0:
		i := r.IntN(len(*svcs))
		*svcs = slices.Delete(*svcs, i, i+1)
	case k == 17:
		w.in.Advertisements = w.configs()
	case k == 18:
		all := []Peer{
			{Name: "tor1", Address: netip.MustParseAddr("192.0.2.1"), PeerASN: 65000, LocalASN: 64512},
			{Name: "tor2", Address: netip.MustParseAddr("192.0.2.2"), PeerASN: 65000, LocalASN: 64512},
			{Name: "tor3", Address: netip.MustParseAddr("2001:db8:ff::1"), PeerASN: 65000, LocalASN: 64512},
		}
		w.in.Peers = pickSome(r, all)
	default:
		switch r.IntN(3) {
		case 0:
			w.in.Node.Unschedulable = !w.in.Node.Unschedulable
		case 1:
			if w.in.Node.Labels["zone"] == "a" {
				w.in.Node.Labels = map[string]string{"zone": "b"}
			} else {
				w.in.Node.Labels = map[string]string{"zone": "a"}
			}
		}
	}
	// The state is copied: the controller must not rely on the caller
	// keeping its slices.
	w.in.State.Services = slices.Clone(w.in.State.Services)
	if w.sorted {
		w.in.State.Canonicalize()
	}
}

func pickSome[T any](r *rand.Rand, all []T) []T {
	var out []T
	for _, v := range all {
		if r.IntN(3) > 0 {
			out = append(out, v)
		}
	}
	return out
}

func TestControllerMatchesReference(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { testControllerMatchesReference(t, seed) })
	}
}

func testControllerMatchesReference(t *testing.T, seed uint64) {
	ctx := context.Background()
	w := &randomWorld{r: rand.New(rand.NewPCG(seed, 2)), sorted: seed%2 == 0}
	for i := range 120 {
		w.vips = append(w.vips, netip.AddrFrom4([4]byte{203, 0, 113, byte(i * 2)}), netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}))
	}
	w.vips = append(w.vips, netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::102"), netip.MustParseAddr("::ffff:198.51.100.77"))
	w.in = Input{Node: NodeStatus{Name: "n", Labels: map[string]string{"zone": "a"}}}
	for i := range 30 {
		w.in.State.Services = append(w.in.State.Services, w.service(i))
	}
	w.in.Peers = []Peer{{Name: "tor1", Address: netip.MustParseAddr("192.0.2.1"), PeerASN: 65000, LocalASN: 64512}}

	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	sp := &recordingSpeaker{}
	c := NewController(sp, ControllerConfig{
		Advertisement: AdvertisementConfig{Communities: []uint32{9}},
		DrainTime:     time.Minute,
		Clock:         clk,
	})
	for i := range 400 {
		step := fmt.Sprintf("step %d", i)
		w.step()
		sp.failing = w.r.IntN(15) == 0
		err := c.Update(ctx, w.in)
		if err != nil && !sp.failing {
			t.Fatalf("%s: Update: %v", step, err)
		}
		sp.failing = false
		if w.r.IntN(10) == 0 {
			clk.Step(time.Duration(w.r.IntN(90)) * time.Second) // may end a drain
		}
		if err != nil {
			continue // the next Update retries
		}

		c.mu.Lock()
		want := referenceDesired(c, SelectPeers(w.in.Peers, w.in.Node))
		got, ok := c.advertised, c.advertiseOK
		c.mu.Unlock()
		if !ok {
			t.Fatalf("%s: advertisements not applied", step)
		}
		if !slices.EqualFunc(got, want, func(a, b Advertisement) bool {
			return reflect.DeepEqual(a, b) || (a.Equal(b) && reflect.DeepEqual(a, a.Canonical()))
		}) {
			t.Fatalf("%s (draining %v):\n got %v\nwant %v", step, c.Draining(), got, want)
		}
		if !slices.EqualFunc(sp.advs, want, Advertisement.Equal) {
			t.Fatalf("%s: the speaker has\n %v\nwant %v", step, sp.advs, want)
		}
		// The speaker is called only when something changed.
		before := sp.sets
		if err := c.Update(ctx, w.in); err != nil {
			t.Fatalf("%s: Update again: %v", step, err)
		}
		if sp.sets != before {
			t.Fatalf("%s: an Update with the same input called the speaker", step)
		}
	}
}
