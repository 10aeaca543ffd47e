package neigh

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/straitlb/strait/internal/netlab"
)

// run runs commands (each a space-separated argv) in ns.
func run(t testing.TB, ns *netlab.NS, cmds ...string) {
	t.Helper()
	for _, c := range cmds {
		if out, err := ns.Run("ip", strings.Fields(c)...); err != nil {
			t.Fatalf("ip %s: %v %s", c, err, out)
		}
	}
}

// TestPrivilegedCacheMatchesRouteGet checks against the kernel that what
// Sync derives from shared lookups and its cache is what one route lookup
// per address answers, through routing, rule and link changes.
func TestPrivilegedCacheMatchesRouteGet(t *testing.T) {
	l := netlab.NewT(t)
	x, err := l.AddNS("a")
	if err != nil {
		t.Fatal(err)
	}
	y, err := l.AddNS("b")
	if err != nil {
		t.Fatal(err)
	}
	a0, a1 := l.Name("a0"), l.Name("a1")
	for _, v := range []struct {
		name, addr string
	}{{a0, "192.0.2.1/24"}, {a1, "203.0.113.1/24"}} {
		if err := l.AddVeth(netlab.VethEnd{NS: x, Name: v.name, Addr: netip.MustParsePrefix(v.addr)},
			netlab.VethEnd{NS: y, Name: v.name + "p"}); err != nil {
			t.Fatal(err)
		}
	}
	run(t, x, "link set lo up",
		"link set "+a1+" arp off", // 203.0.113.0/24: no neighbour resolution
		"route add default via 192.0.2.2",
		"route add 198.51.100.0/24 via 192.0.2.3",
		"route add 198.51.100.128/25 via 192.0.2.4", // carves out of the /24
		"route add 198.51.100.77/32 via 192.0.2.5",
		"route add 10.20.0.0/16 dev "+a0, // on-link
		"route add 100.64.0.0/16 nexthop via 192.0.2.6 nexthop via 192.0.2.7",
		"route add 172.16.0.0/16 via 192.0.2.8 metric 10",
		"route add 172.16.0.0/16 via 192.0.2.9 metric 20",
		"route add blackhole 198.18.0.0/16",
		"addr add 10.20.0.9/32 dev lo", // a local address inside the on-link route
	)
	rng := rand.New(rand.NewPCG(3, 4))
	var targets []netip.Addr
	for _, p := range []string{"198.51.100.0/24", "10.20.0.0/24", "100.64.0.0/24", "172.16.0.0/24",
		"198.18.0.0/24", "203.0.113.0/24", "8.8.8.0/24", "192.0.2.0/24"} {
		base := netip.MustParsePrefix(p).Addr().As4()
		for range 60 {
			base[3] = byte(rng.IntN(256))
			targets = append(targets, netip.AddrFrom4(base))
		}
	}
	for _, s := range []string{"10.20.0.9", "198.51.100.77", "192.0.2.0", "192.0.2.255", "255.255.255.255",
		"224.0.0.5", "239.1.1.1", "0.0.0.0", "127.0.0.1", "127.1.2.3", "169.254.1.1", "240.0.0.1"} {
		targets = append(targets, netip.MustParseAddr(s))
	}

	k := &netlinkKernel{}
	m := newManager(zaptest.NewLogger(t), k)
	failed := 0 // failures of the last check: retried every time
	check := func(step string, maxLookups int) {
		t.Helper()
		maxLookups += failed
		in(t, x, func() error {
			before := m.lookups
			rts, err := k.routes()
			if err != nil {
				return err
			}
			res, err := m.resolve(context.Background(), targets, rts)
			if err != nil {
				return err
			}
			n := m.lookups - before
			failed = 0
			for _, r := range res {
				if r.err != nil {
					failed++
				}
			}
			t.Logf("%s: %d distinct targets, %d route lookups, %d failed", step, len(res), n, failed)
			if n > maxLookups {
				t.Errorf("%s: %d route lookups, want at most %d", step, n, maxLookups)
			}
			for _, r := range res {
				h, ok, err := k.routeGet(r.addr)
				if !ok {
					h = NextHop{}
				}
				if !r.ok {
					r.h = NextHop{}
				}
				if got, want := fmt.Sprint(r.h, r.ok, r.err), fmt.Sprint(h, ok, err); got != want {
					t.Errorf("%s: %s resolved to %s, the kernel says %s", step, r.addr, got, want)
				}
			}
			return nil
		})
	}
	// The first time: one lookup per route under the default rules
	// (198.51.100.0/24, /25, /32, 10.20.0.0/16, default, 192.0.2.0/24,
	// 203.0.113.0/24), one per address for multipath, the doubled
	// 172.16.0.0/16, the blackhole (failures, retried every time) and
	// the local addresses.
	check("cold", 7+4*60+12)
	check("unchanged", 0)
	run(t, x, "route replace 10.20.0.0/16 via 192.0.2.11")
	check("route changed", 7+4*60+12)
	check("unchanged again", 0)
	run(t, x, "rule add to 198.51.100.0/24 lookup 100 pref 100",
		"route add 198.51.100.0/24 via 192.0.2.10 table 100")
	check("non-default rule", len(targets))
	check("unchanged with the rule", 0)
	run(t, x, "rule del pref 100")
	check("rule gone", 7+4*60+12)
	run(t, x, "link set "+a1+" arp on")
	check("link uses ARP again", 7+4*60+12)
	run(t, x, "addr add 198.51.100.20/32 dev lo")
	check("address added", 7+4*60+13)

	// And Sync end to end: the blackhole's addresses fail, the rest works.
	in(t, x, func() error {
		err := m.Sync(context.Background(), targets)
		if err == nil || !strings.Contains(err.Error(), "resolve next hop for 198.18.0.") {
			t.Errorf("error %v, want the blackhole's addresses reported", err)
		}
		return nil
	})
}

// BenchmarkPrivilegedSync measures Sync against the kernel in a namespace:
// 100,000 targets under five gateway routes, cold (a new Manager), after a
// change of one target, unchanged; and, for comparison, cold with one
// lookup per address (a non-default rule present) for 10,000 targets.
func BenchmarkPrivilegedSync(b *testing.B) {
	l := netlab.NewT(b)
	x, err := l.AddNS("a")
	if err != nil {
		b.Fatal(err)
	}
	y, err := l.AddNS("b")
	if err != nil {
		b.Fatal(err)
	}
	if err := l.AddVeth(netlab.VethEnd{NS: x, Name: l.Name("a0"), Addr: netip.MustParsePrefix("192.0.2.1/24")},
		netlab.VethEnd{NS: y, Name: l.Name("b0"), Addr: netip.MustParsePrefix("192.0.2.2/24")}); err != nil {
		b.Fatal(err)
	}
	run(b, x, "route add default via 192.0.2.2")
	var targets []netip.Addr
	for i := range 5 {
		run(b, x, fmt.Sprintf("route add 10.%d.0.0/16 via 192.0.2.%d", i, 10+i))
		targets = append(targets, addrs(fmt.Sprintf("10.%d.0.1", i), 20000)...)
	}
	ctx := context.Background()
	bench := func(name string, targets []netip.Addr, fresh bool, change bool) {
		b.Run(name, func(b *testing.B) {
			m := New(zap.NewNop())
			if err := x.Do(func() error { return m.Sync(ctx, targets) }); err != nil {
				b.Fatal(err)
			}
			lookups, i := 0, 0
			for b.Loop() {
				if fresh {
					m = New(zap.NewNop())
				}
				ts := targets
				if change {
					i++
					ts = targets[i%2:]
				}
				before := m.lookups
				if err := x.Do(func() error { return m.Sync(ctx, ts) }); err != nil {
					b.Fatal(err)
				}
				lookups += m.lookups - before
			}
			b.ReportMetric(float64(lookups)/float64(b.N), "lookups/op")
			b.ReportMetric(float64(len(targets)), "targets")
		})
	}
	bench("cold", targets, true, false)
	bench("one-changed", targets, false, true)
	bench("unchanged", targets, false, false)
	run(b, x, "rule add fwmark 1 lookup 100 pref 100")
	bench("per-address-cold", targets[:10000], true, false)
}
