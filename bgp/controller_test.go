package bgp_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/labels"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/straitlb/strait/bgp"
	"github.com/straitlb/strait/bgp/bgptest"
	"github.com/straitlb/strait/model"
)

var torPeers = []bgp.Peer{
	{Name: "tor1", Address: addr("192.0.2.1"), PeerASN: 65000, LocalASN: 64512},
	{Name: "tor2", Address: addr("192.0.2.2"), PeerASN: 65000, LocalASN: 64512},
}

// harness is a Controller over a fake speaker and a fake clock; every
// Update also tells the fake the desired state so it can check coverage.
type harness struct {
	t     *testing.T
	fake  *bgptest.Fake
	clock *clocktesting.FakeClock
	c     *bgp.Controller
	in    bgp.Input
}

func newHarness(t *testing.T, cfg bgp.ControllerConfig) *harness {
	h := &harness{t: t, clock: clocktesting.NewFakeClock(time.Unix(1000, 0))}
	h.fake = bgptest.New(t, bgptest.Options{AggregationLength: cfg.Advertisement.AggregationLength})
	cfg.Clock = h.clock
	h.c = bgp.NewController(h.fake, cfg)
	h.in = bgp.Input{Node: node, Peers: torPeers}
	return h
}

func (h *harness) update(mod func(in *bgp.Input)) {
	h.t.Helper()
	if mod != nil {
		mod(&h.in)
	}
	h.fake.SetState(h.in.State)
	if err := h.c.Update(context.Background(), h.in); err != nil {
		h.t.Fatalf("Update: %v", err)
	}
}

func (h *harness) expect(step string, want ...string) {
	h.t.Helper()
	var w []netip.Prefix
	for _, s := range want {
		w = append(w, pfx(s))
	}
	if got := h.fake.Prefixes(); !slices.Equal(got, w) {
		h.t.Errorf("%s: advertised %v, want %v", step, got, w)
	}
}

func isGracefulShutdown(advs []bgp.Advertisement) bool {
	for _, a := range advs {
		if !slices.Contains(a.Communities, bgp.CommunityGracefulShutdown) || a.LocalPref == nil || *a.LocalPref != 0 {
			return false
		}
	}
	return len(advs) > 0
}

func TestControllerLocalServiceFollowsLocalBackends(t *testing.T) {
	h := newHarness(t, bgp.ControllerConfig{DrainTime: 30 * time.Second})
	h.update(func(in *bgp.Input) {
		in.State = state(localSvc("a", "203.0.113.10", backend("198.18.1.10", true)), clusterSvc("b", "203.0.113.20", backend("198.18.2.10", false)))
	})
	h.expect("initial", "203.0.113.10/32", "203.0.113.20/32")
	if got := h.fake.Peers(); len(got) != 2 {
		t.Errorf("peers %v", got)
	}
	// The last local endpoint goes: withdrawn at once (no drain: the node
	// is still eligible, the service just has nothing here).
	h.update(func(in *bgp.Input) { in.State.Services[0].Backends = nil })
	h.expect("last local backend gone", "203.0.113.20/32")
	if h.c.Draining() {
		t.Error("draining after a service change")
	}
	h.update(func(in *bgp.Input) { in.State.Services[0].Backends = []model.Backend{backend("198.18.1.11", true)} })
	h.expect("local backend back", "203.0.113.10/32", "203.0.113.20/32")
}

func TestControllerDrainsWhenCordoned(t *testing.T) {
	h := newHarness(t, bgp.ControllerConfig{DrainTime: 30 * time.Second})
	h.update(func(in *bgp.Input) {
		in.State = state(clusterSvc("a", "203.0.113.10", backend("198.18.2.10", false)), clusterSvc("b", "203.0.113.20", backend("198.18.2.11", false)))
	})
	h.expect("initial", "203.0.113.10/32", "203.0.113.20/32")
	before := len(h.fake.AdvertisementCalls())

	h.update(func(in *bgp.Input) { in.Node.Unschedulable = true })
	if !h.c.Draining() {
		t.Fatal("not draining after cordon")
	}
	calls := h.fake.AdvertisementCalls()[before:]
	if len(calls) != 1 || !isGracefulShutdown(calls[0].Advertisements) || len(calls[0].Advertisements) != 2 {
		t.Fatalf("after cordon: calls %+v, want one re-advertisement of both prefixes with GRACEFUL_SHUTDOWN and LOCAL_PREF 0", calls)
	}

	// While draining, a service that goes away is withdrawn at once and a
	// new one is not announced; the rest stays marked.
	h.update(func(in *bgp.Input) {
		in.State.Services = []model.Service{in.State.Services[0], clusterSvc("c", "203.0.113.30", backend("198.18.2.12", false))}
	})
	h.expect("service removed during drain", "203.0.113.10/32")
	if !isGracefulShutdown(h.fake.Advertisements()) {
		t.Errorf("during drain: %v", h.fake.Advertisements())
	}

	h.clock.Step(29 * time.Second)
	h.expect("before drain time", "203.0.113.10/32")
	h.clock.Step(time.Second)
	h.expect("after drain time")
	if h.c.Draining() {
		t.Error("still draining after drain time")
	}
	// Ordering: GSHUT for everything, then the removed service withdrawn,
	// then everything withdrawn.
	var seq []int
	for _, c := range h.fake.AdvertisementCalls()[before:] {
		seq = append(seq, len(c.Advertisements))
	}
	if !slices.Equal(seq, []int{2, 1, 0}) {
		t.Errorf("advertisement sizes %v, want [2 1 0]", seq)
	}
	// Cordoned: further updates announce nothing.
	h.update(nil)
	h.expect("cordoned")
}

func TestControllerUncordonCancelsDrain(t *testing.T) {
	h := newHarness(t, bgp.ControllerConfig{DrainTime: 30 * time.Second})
	h.update(func(in *bgp.Input) { in.State = state(clusterSvc("a", "203.0.113.10", backend("198.18.2.10", false))) })
	h.update(func(in *bgp.Input) { in.Node.Labels = map[string]string{bgp.LabelExcludeFromExternalLB: "true"} })
	if !h.c.Draining() || !isGracefulShutdown(h.fake.Advertisements()) {
		t.Fatalf("excluding the node does not drain: %v", h.fake.Advertisements())
	}
	h.update(func(in *bgp.Input) { in.Node.Labels = nil })
	if h.c.Draining() {
		t.Error("still draining after the label went")
	}
	advs := h.fake.Advertisements()
	if len(advs) != 1 || slices.Contains(advs[0].Communities, bgp.CommunityGracefulShutdown) || advs[0].LocalPref != nil {
		t.Errorf("after cancel: %v, want the plain announcement back", advs)
	}
	n := len(h.fake.Calls())
	h.clock.Step(time.Minute)
	if len(h.fake.Calls()) != n {
		t.Error("the cancelled drain timer still acted")
	}
	h.expect("after the cancelled timer", "203.0.113.10/32")
}

func TestControllerNoDrainCases(t *testing.T) {
	// Cordoned at the first Update: nothing announced, nothing drained.
	h := newHarness(t, bgp.ControllerConfig{DrainTime: 30 * time.Second})
	h.update(func(in *bgp.Input) {
		in.State = state(clusterSvc("a", "203.0.113.10", backend("198.18.2.10", false)))
		in.Node.Unschedulable = true
	})
	h.expect("cordoned at start")
	if h.c.Draining() {
		t.Error("draining at start")
	}

	// DrainTime 0: withdraw at once.
	h = newHarness(t, bgp.ControllerConfig{})
	h.update(func(in *bgp.Input) { in.State = state(clusterSvc("a", "203.0.113.10", backend("198.18.2.10", false))) })
	h.update(func(in *bgp.Input) { in.Node.Unschedulable = true })
	h.expect("cordoned with DrainTime 0")
	if h.c.Draining() {
		t.Error("draining with DrainTime 0")
	}
}

func TestControllerPeerSelection(t *testing.T) {
	h := newHarness(t, bgp.ControllerConfig{Advertisement: bgp.AdvertisementConfig{Peers: []string{"tor2"}}})
	h.update(func(in *bgp.Input) {
		in.State = state(clusterSvc("a", "203.0.113.10", backend("198.18.2.10", false)))
		in.Peers = slices.Clone(torPeers)
		in.Peers[1].NodeSelector = labels.SelectorFromSet(labels.Set{"rack": "r2"})
	})
	// tor2 does not select this node: the advertisement, meant for tor2
	// only, must not become an advertisement for every peer.
	if got := h.fake.Peers(); len(got) != 1 || got[0].Name != "tor1" {
		t.Errorf("peers %v", got)
	}
	h.expect("tor2 not selected")
	h.update(func(in *bgp.Input) { in.Node.Labels = map[string]string{"rack": "r2"} })
	h.expect("tor2 selected", "203.0.113.10/32")
	if st, _ := h.fake.Status().Peer("tor1"); len(st.Advertised) != 0 {
		t.Errorf("tor1 gets %v", st.Advertised)
	}
	if st, _ := h.fake.Status().Peer("tor2"); len(st.Advertised) != 1 {
		t.Errorf("tor2 gets %v", st.Advertised)
	}
}

func TestControllerRetriesAfterSpeakerError(t *testing.T) {
	h := newHarness(t, bgp.ControllerConfig{})
	h.in.State = state(clusterSvc("a", "203.0.113.10", backend("198.18.2.10", false)))
	h.fake.SetState(h.in.State)
	h.fake.FailNext(errors.New("boom"))
	if err := h.c.Update(context.Background(), h.in); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Update error %v", err)
	}
	h.update(nil)
	h.expect("after retry", "203.0.113.10/32")
	n := len(h.fake.Calls())
	h.update(nil)
	if len(h.fake.Calls()) != n {
		t.Error("an unchanged Update called the speaker")
	}
}

func TestControllerDrainForShutdown(t *testing.T) {
	h := newHarness(t, bgp.ControllerConfig{})
	h.update(func(in *bgp.Input) { in.State = state(clusterSvc("a", "203.0.113.10", backend("198.18.2.10", false))) })
	done := make(chan error, 1)
	go func() { done <- h.c.Drain(context.Background(), 20*time.Second) }()
	deadline := time.Now().Add(5 * time.Second)
	for !h.clock.HasWaiters() {
		if time.Now().After(deadline) {
			t.Fatal("Drain does not wait on the clock")
		}
		time.Sleep(time.Millisecond)
	}
	if !isGracefulShutdown(h.fake.Advertisements()) {
		t.Fatalf("during drain: %v", h.fake.Advertisements())
	}
	select {
	case err := <-done:
		t.Fatalf("Drain returned before the drain time: %v", err)
	default:
	}
	h.clock.Step(20 * time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	h.expect("after shutdown drain")
	calls := h.fake.AdvertisementCalls()
	if n := len(calls); n < 3 || !isGracefulShutdown(calls[n-2].Advertisements) || len(calls[n-1].Advertisements) != 0 {
		t.Errorf("calls %+v: want GRACEFUL_SHUTDOWN then an empty set", calls)
	}
	if err := h.c.Update(context.Background(), h.in); !errors.Is(err, bgp.ErrShutDown) {
		t.Errorf("Update after Drain: %v", err)
	}
}

func TestDrainRealTime(t *testing.T) {
	fake := bgptest.New(t, bgptest.Options{})
	st := state(clusterSvc("a", "203.0.113.10", backend("198.18.2.10", false)))
	fake.SetState(st)
	current := bgp.Announcements(st, node, bgp.AdvertisementConfig{})
	if err := fake.SetAdvertisements(context.Background(), current); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := bgp.Drain(context.Background(), fake, current, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	calls := fake.AdvertisementCalls()
	gshut, withdraw := calls[1], calls[2]
	if !isGracefulShutdown(gshut.Advertisements) || len(withdraw.Advertisements) != 0 {
		t.Fatalf("calls %+v", calls)
	}
	if gap := withdraw.At.Sub(gshut.At); gap < 100*time.Millisecond {
		t.Errorf("withdrawn %s after GRACEFUL_SHUTDOWN, want >= the 100ms drain time", gap)
	}
	t.Logf("drain took %s", time.Since(start))

	// A cancelled context cuts the wait short but still withdraws.
	if err := fake.SetAdvertisements(context.Background(), current); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start = time.Now()
	err := bgp.Drain(ctx, fake, current, time.Hour)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second || len(fake.Prefixes()) != 0 {
		t.Errorf("cancelled drain: err %v after %s, left %v", err, time.Since(start), fake.Prefixes())
	}
}

func TestMetricsFromStatus(t *testing.T) {
	fake := bgptest.New(t, bgptest.Options{})
	st := state(clusterSvc("a", "203.0.113.10", backend("198.18.2.10", false)), clusterSvc("b", "203.0.113.20", backend("198.18.2.10", false)))
	fake.SetState(st)
	ctx := context.Background()
	if err := fake.SetPeers(ctx, torPeers); err != nil {
		t.Fatal(err)
	}
	advs := bgp.Announcements(st, node, bgp.AdvertisementConfig{})
	advs[1].Peers = []string{"tor2"}
	if err := fake.SetAdvertisements(ctx, advs); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := bgp.RegisterMetrics(reg, fake); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP strait_bgp_advertised_prefixes Number of prefixes currently advertised to the peer (its Adj-RIB-Out).
# TYPE strait_bgp_advertised_prefixes gauge
strait_bgp_advertised_prefixes{address="192.0.2.1",peer="tor1"} 1
strait_bgp_advertised_prefixes{address="192.0.2.2",peer="tor2"} 2
# HELP strait_bgp_session_up 1 when the BGP session with the peer is established, else 0.
# TYPE strait_bgp_session_up gauge
strait_bgp_session_up{address="192.0.2.1",peer="tor1"} 1
strait_bgp_session_up{address="192.0.2.2",peer="tor2"} 1
# HELP strait_bgp_updates_sent_total BGP UPDATE messages sent to the peer since its configuration was last (re)applied.
# TYPE strait_bgp_updates_sent_total counter
strait_bgp_updates_sent_total{address="192.0.2.1",peer="tor1"} 1
strait_bgp_updates_sent_total{address="192.0.2.2",peer="tor2"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"strait_bgp_advertised_prefixes", "strait_bgp_session_up", "strait_bgp_updates_sent_total"); err != nil {
		t.Error(err)
	}
	// One state series per FSM state, exactly one of them 1.
	if n := testutil.CollectAndCount(bgp.NewCollector(fake), "strait_bgp_session_state"); n != 2*len(bgp.SessionStates()) {
		t.Errorf("%d session state series", n)
	}
	if err := bgp.RegisterMetrics(reg, fake); err == nil {
		t.Error("registering twice succeeded")
	}
}
