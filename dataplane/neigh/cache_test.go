package neigh

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"
)

// addrs returns n addresses counting up from first.
func addrs(first string, n int) []netip.Addr {
	out := make([]netip.Addr, n)
	ip := a(first)
	for i := range out {
		out[i] = ip
		ip = ip.Next()
	}
	return out
}

// syncCount runs Sync and returns the number of routeGet calls it made.
func syncCount(t *testing.T, m *Manager, f *fakeKernel, targets []netip.Addr) int {
	t.Helper()
	before := f.gets
	if err := m.Sync(context.Background(), targets); err != nil {
		t.Fatal(err)
	}
	return f.gets - before
}

func TestSyncSharesLookupUnderGatewayRoute(t *testing.T) {
	f := cluster()
	f.rts = append(f.rts, gwRoute("10.1.0.0/16", node2))
	m := newManager(zaptest.NewLogger(t), f)
	targets := addrs("10.1.0.1", 5000)
	if n := syncCount(t, m, f, targets); n != 1 {
		t.Errorf("cold sync: %d route lookups, want 1", n)
	}
	if got, want := m.Owned(), []NextHop{gw, node2}; !equalHops(got, want) {
		t.Fatalf("owned %v, want %v", got, want)
	}
	// Nothing changed: no lookup at all.
	if n := syncCount(t, m, f, targets); n != 0 {
		t.Errorf("warm sync: %d route lookups, want 0", n)
	}
	// The route changes: re-resolved (once), and the next hop follows.
	f.without("10.1.0.0/16")
	f.rts = append(f.rts, gwRoute("10.1.0.0/16", node3))
	if n := syncCount(t, m, f, targets); n != 1 {
		t.Errorf("sync after a route change: %d route lookups, want 1", n)
	}
	if got, want := m.Owned(), []NextHop{gw, node3}; !equalHops(got, want) {
		t.Fatalf("owned after the route change %v, want %v", got, want)
	}
	// A more specific route appears: only what it covers moves.
	f.rts = append(f.rts, gwRoute("10.1.0.0/24", node2))
	if n := syncCount(t, m, f, targets); n != 2 {
		t.Errorf("sync after a route was added: %d route lookups, want 2", n)
	}
	if got, want := m.Owned(), []NextHop{gw, node2, node3}; !equalHops(got, want) {
		t.Fatalf("owned after the route was added %v, want %v", got, want)
	}
}

func TestSyncSharesLookupUnderOnLinkRoute(t *testing.T) {
	f := cluster()
	m := newManager(zaptest.NewLogger(t), f)
	// 192.0.2.0/24 on link 2; 192.0.2.11 is local (its own lookup).
	targets := addrs("192.0.2.1", 100)
	if n := syncCount(t, m, f, targets); n != 2 {
		t.Errorf("cold sync: %d route lookups, want 2", n)
	}
	var want []NextHop
	for _, ip := range targets {
		if ip != a("192.0.2.11") {
			want = append(want, NextHop{Addr: ip, LinkIndex: 2})
		}
	}
	if got := m.Owned(); !equalHops(got, want) {
		t.Fatalf("owned %v, want %v", got, want)
	}
	// The link stops using ARP: nothing needed any more.
	f.rts[3].Paths[0].Resolves = false
	if n := syncCount(t, m, f, targets); n != 2 {
		t.Errorf("sync after the link changed: %d route lookups, want 2", n)
	}
	if got := m.Owned(); !equalHops(got, []NextHop{gw}) {
		t.Fatalf("owned %v, want only the gateway", got)
	}
}

func TestSyncNonDefaultRulePerAddress(t *testing.T) {
	f := cluster()
	f.rts = append(f.rts, gwRoute("10.1.0.0/16", node2))
	f.rls = append(slices.Clone(kernelDefaultRules), rule{Priority: 100, Table: 100})
	m := newManager(zaptest.NewLogger(t), f)
	targets := addrs("10.1.0.1", 50)
	if n := syncCount(t, m, f, targets); n != 50 {
		t.Errorf("cold sync: %d route lookups, want 50", n)
	}
	// Still cached.
	if n := syncCount(t, m, f, targets); n != 0 {
		t.Errorf("warm sync: %d route lookups, want 0", n)
	}
	// The rule goes: re-resolved, now with one lookup.
	f.rls = nil
	if n := syncCount(t, m, f, targets); n != 1 {
		t.Errorf("sync after the rule went: %d route lookups, want 1", n)
	}
	// A rule's change alone invalidates the cache.
	f.rls = append(slices.Clone(kernelDefaultRules), rule{Priority: 100, Table: 100})
	if n := syncCount(t, m, f, targets); n != 50 {
		t.Errorf("sync after a rule was added: %d route lookups, want 50", n)
	}
	f.rls[3].Digest = 1 // e.g. its selector changed
	if n := syncCount(t, m, f, targets); n != 50 {
		t.Errorf("sync after a rule changed: %d route lookups, want 50", n)
	}
}

func TestSyncMultipathPerAddress(t *testing.T) {
	f := cluster()
	f.rts = append(f.rts, gwRoute("10.1.0.0/16", node2, node3))
	m := newManager(zaptest.NewLogger(t), f)
	targets := addrs("10.1.0.1", 20)
	if n := syncCount(t, m, f, targets); n != 20 {
		t.Errorf("cold sync: %d route lookups, want 20", n)
	}
	if got, want := m.Owned(), []NextHop{gw, node2, node3}; !equalHops(got, want) {
		t.Fatalf("owned %v, want %v", got, want)
	}
	if n := syncCount(t, m, f, targets); n != 0 {
		t.Errorf("warm sync: %d route lookups, want 0", n)
	}
}

func TestSyncFailuresAreNotCached(t *testing.T) {
	f := cluster()
	f.rts = append(f.rts, gwRoute("10.1.0.0/16", node2))
	// The group's first member fails: the others are looked up one by one.
	f.fail[a("10.1.0.1")] = unix.EHOSTUNREACH
	m := newManager(zaptest.NewLogger(t), f)
	targets := addrs("10.1.0.1", 10)
	for round, want := range []int{10, 1, 1} {
		before := f.gets
		err := m.Sync(context.Background(), targets)
		if err == nil || err.Error() != "resolve next hop for 10.1.0.1: no route to host" {
			t.Fatalf("round %d: error %v", round, err)
		}
		if n := f.gets - before; n != want {
			t.Errorf("round %d: %d route lookups, want %d", round, n, want)
		}
	}
	if got, want := m.Owned(), []NextHop{gw, node2}; !equalHops(got, want) {
		t.Fatalf("owned %v, want %v", got, want)
	}
	delete(f.fail, a("10.1.0.1"))
	if n := syncCount(t, m, f, targets); n != 1 {
		t.Errorf("recovered: %d route lookups, want 1", n)
	}
	if n := syncCount(t, m, f, targets); n != 0 {
		t.Errorf("warm: %d route lookups, want 0", n)
	}
}

func TestSyncInconsistentAnswerFallsBack(t *testing.T) {
	f := cluster()
	f.rts = append(f.rts, gwRoute("10.1.0.0/16", node2))
	// The kernel answers something the route does not explain (say, a
	// rule the dump does not show): no answer is shared.
	f.next[a("10.1.0.1")] = node3
	m := newManager(zaptest.NewLogger(t), f)
	if n := syncCount(t, m, f, addrs("10.1.0.1", 10)); n != 10 {
		t.Errorf("%d route lookups, want 10", n)
	}
	if got, want := m.Owned(), []NextHop{gw, node2, node3}; !equalHops(got, want) {
		t.Fatalf("owned %v, want %v", got, want)
	}
}

func TestSyncNoCacheWithoutRules(t *testing.T) {
	f := cluster()
	f.rts = append(f.rts, gwRoute("10.1.0.0/16", node2))
	f.rulesErr = unix.EOPNOTSUPP
	m := newManager(zaptest.NewLogger(t), f)
	targets := addrs("10.1.0.1", 10)
	for round := range 2 {
		if n := syncCount(t, m, f, targets); n != 10 {
			t.Errorf("round %d: %d route lookups, want 10", round, n)
		}
	}
}

func TestSyncNoCacheWithNexthopObjects(t *testing.T) {
	f := cluster()
	nh := gwRoute("10.2.0.0/16", node3)
	nh.NHID = 1 // its nexthop can change while the route stays the same
	f.rts = append(f.rts, gwRoute("10.1.0.0/16", node2), nh)
	m := newManager(zaptest.NewLogger(t), f)
	targets := addrs("10.1.0.1", 10)
	for round := range 2 {
		if n := syncCount(t, m, f, targets); n != 10 {
			t.Errorf("round %d: %d route lookups, want 10", round, n)
		}
	}
}

func TestSyncIPv6NotCached(t *testing.T) {
	f := cluster()
	h6 := NextHop{Addr: a("2001:db8::1"), LinkIndex: 2}
	f.next[a("2001:db8:1::1")] = h6
	f.next[a("2001:db8:1::2")] = h6
	m := newManager(zaptest.NewLogger(t), f)
	targets := []netip.Addr{a("2001:db8:1::1"), a("2001:db8:1::2"), a("198.18.2.10")}
	if n := syncCount(t, m, f, targets); n != 3 {
		t.Errorf("cold: %d route lookups, want 3", n)
	}
	if n := syncCount(t, m, f, targets); n != 2 {
		t.Errorf("warm: %d route lookups, want 2 (IPv6 only)", n)
	}
	if got, want := m.Owned(), []NextHop{gw, node2, h6}; !equalHops(got, want) {
		t.Fatalf("owned %v, want %v", got, want)
	}
}

func TestSyncCacheForgetsOldTargets(t *testing.T) {
	f := cluster()
	m := newManager(zaptest.NewLogger(t), f)
	all := []netip.Addr{a("198.18.2.10"), a("198.18.3.10"), a("192.0.2.50")}
	syncCount(t, m, f, all)
	if len(m.cache) != 3 {
		t.Fatalf("cache %v", m.cache)
	}
	syncCount(t, m, f, all[:1])
	if len(m.cache) != 1 {
		t.Fatalf("cache after targets went %v", m.cache)
	}
	if n := syncCount(t, m, f, all); n != 2 {
		t.Errorf("%d route lookups, want 2", n)
	}
}

// TestSyncMatchesPerAddressLookups checks on random routing tables that
// what Sync derives is what a lookup per address answers.
func TestSyncMatchesPerAddressLookups(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	rndAddr := func() netip.Addr {
		return netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(4)), byte(rng.IntN(256))})
	}
	hop := func() NextHop {
		return NextHop{Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + rng.IntN(20))}), LinkIndex: 2 + rng.IntN(3)}
	}
	for iter := range 200 {
		f := newFake()
		f.rts = []route{gwRoute("0.0.0.0/0", gw)}
		for range 1 + rng.IntN(12) {
			p, _ := rndAddr().Prefix(8 + rng.IntN(25))
			var r route
			switch rng.IntN(6) {
			case 0:
				r = linkRoute(p.String(), 2+rng.IntN(3), rng.IntN(4) != 0)
			case 1:
				r = gwRoute(p.String(), hop(), hop())
			case 2:
				r = localRoute(rndAddr().String(), 1)
			case 3:
				r = gwRoute(p.String(), hop())
				r.Paths[0].Resolves = false
			default:
				r = gwRoute(p.String(), hop())
			}
			f.rts = append(f.rts, r)
		}
		targets := make([]netip.Addr, 300)
		for i := range targets {
			targets[i] = rndAddr()
		}
		m := newManager(zap.NewNop(), f)
		res, err := m.resolve(context.Background(), targets, f.rts)
		if err != nil {
			t.Fatal(err)
		}
		lookups := f.gets
		for _, r := range res {
			h, ok, err := f.routeGet(r.addr)
			if !ok {
				h = NextHop{} // Sync ignores it
			}
			if !r.ok {
				r.h = NextHop{}
			}
			if fmt.Sprint(h, ok, err) != fmt.Sprint(r.h, r.ok, r.err) {
				t.Fatalf("iteration %d: %s resolved to %v %v %v, a lookup says %v %v %v\nroutes %+v",
					iter, r.addr, r.h, r.ok, r.err, h, ok, err, f.rts)
			}
		}
		if iter == 0 {
			t.Logf("%d distinct targets, %d lookups", len(res), lookups)
		}
	}
}

func TestSyncCanceledWhileCached(t *testing.T) {
	f := cluster()
	m := newManager(zaptest.NewLogger(t), f)
	doSync(t, m, "198.18.2.10")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.Sync(ctx, []netip.Addr{a("198.18.2.10")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v", err)
	}
}

// BenchmarkSyncFake measures Sync's own cost for 100,000 targets under a
// handful of routes (the kernel is the in-memory fake).
func BenchmarkSyncFake(b *testing.B) {
	f := cluster()
	var targets []netip.Addr
	for i := range 5 {
		h := NextHop{Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + i)}), LinkIndex: 2}
		f.rts = append(f.rts, gwRoute(fmt.Sprintf("10.%d.0.0/16", i), h))
		targets = append(targets, addrs(fmt.Sprintf("10.%d.0.1", i), 20000)...)
	}
	// cold: nothing cached; cached: one target differs from the last Sync;
	// unchanged: the same targets again.
	for _, mode := range []string{"cold", "cached", "unchanged"} {
		b.Run(mode, func(b *testing.B) {
			m := newManager(zap.NewNop(), f)
			if err := m.Sync(context.Background(), targets); err != nil {
				b.Fatal(err)
			}
			gets := f.gets
			i := 0
			for b.Loop() {
				ts := targets
				switch mode {
				case "cold":
					m.cache = nil
				case "cached":
					i++
					ts = targets[i%2:]
				}
				if err := m.Sync(context.Background(), ts); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(f.gets-gets)/float64(b.N), "lookups/op")
		})
	}
}

func TestSyncErrorsInTargetOrder(t *testing.T) {
	f := cluster()
	f.rts = append(f.rts, gwRoute("10.1.0.0/16", node2))
	f.without("0.0.0.0/0")
	m := newManager(zaptest.NewLogger(t), f)
	err := m.Sync(context.Background(), []netip.Addr{a("8.8.8.8"), a("10.1.0.1"), {}, a("1.1.1.1")})
	want := []string{"resolve next hop for 8.8.8.8: network is unreachable", "resolve next hop for invalid IP: invalid address",
		"resolve next hop for 1.1.1.1: network is unreachable"}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Fatalf("error %v", err)
	}
}
