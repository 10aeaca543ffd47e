package neigh

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"

	"github.com/straitlb/strait/internal/netlab"
)

// lab: namespace "a" (where the Manager runs) with two links,
//
//	a0 192.0.2.1/24    <-> b0 192.0.2.2/24 in "b"    (198.51.100.0/24 via 192.0.2.2)
//	a1 203.0.113.1/24  <-> c0 203.0.113.2/24 in "c"  (default via 203.0.113.2)
//
// and 198.18.0.0/24 via 192.0.2.9, whose neighbour is a PERMANENT entry.
type lab struct {
	a, b, c       *netlab.NS
	a0, a1        int // ifindexes in a
	bMAC, cMAC    net.HardwareAddr
	staticMAC     net.HardwareAddr
	peerB, peerC  netip.Addr
	staticGateway netip.Addr
}

func newLab(t *testing.T) *lab {
	t.Helper()
	l := netlab.NewT(t)
	mk := func(name string) *netlab.NS {
		ns, err := l.AddNS(name)
		if err != nil {
			t.Fatal(err)
		}
		return ns
	}
	x := &lab{a: mk("a"), b: mk("b"), c: mk("c"),
		peerB: netip.MustParseAddr("192.0.2.2"), peerC: netip.MustParseAddr("203.0.113.2"),
		staticGateway: netip.MustParseAddr("192.0.2.9"),
		staticMAC:     net.HardwareAddr{0x02, 0, 0, 0, 0, 0x09}}
	a0, a1, b0, c0 := l.Name("a0"), l.Name("a1"), l.Name("b0"), l.Name("c0")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(l.AddVeth(netlab.VethEnd{NS: x.a, Name: a0, Addr: netip.MustParsePrefix("192.0.2.1/24")},
		netlab.VethEnd{NS: x.b, Name: b0, Addr: netip.MustParsePrefix("192.0.2.2/24")}))
	must(l.AddVeth(netlab.VethEnd{NS: x.a, Name: a1, Addr: netip.MustParsePrefix("203.0.113.1/24")},
		netlab.VethEnd{NS: x.c, Name: c0, Addr: netip.MustParsePrefix("203.0.113.2/24")}))
	must(x.a.AddRoute(netip.MustParsePrefix("198.51.100.0/24"), x.peerB, ""))
	must(x.a.AddRoute(netlab.DefaultRoute(), x.peerC, ""))
	must(x.a.AddRoute(netip.MustParsePrefix("198.18.0.0/24"), x.staticGateway, ""))
	var err error
	x.a0, err = x.a.LinkIndex(a0)
	must(err)
	x.a1, err = x.a.LinkIndex(a1)
	must(err)
	x.bMAC, err = x.b.HardwareAddr(b0)
	must(err)
	x.cMAC, err = x.c.HardwareAddr(c0)
	must(err)
	must(x.a.Netlink().NeighAdd(&netlink.Neigh{LinkIndex: x.a0, IP: x.staticGateway.AsSlice(),
		HardwareAddr: x.staticMAC, State: netlink.NUD_PERMANENT, Family: netlink.FAMILY_V4}))
	return x
}

// in runs fn in namespace ns, failing the test on error.
func in(t *testing.T, ns *netlab.NS, fn func() error) {
	t.Helper()
	if err := ns.Do(fn); err != nil {
		t.Fatal(err)
	}
}

// table returns a's neighbour entries by next hop.
func table(t *testing.T, ns *netlab.NS) map[NextHop]Entry {
	t.Helper()
	var ents []Entry
	in(t, ns, func() (err error) { ents, err = new(netlinkKernel).neighbours(); return err })
	m := make(map[NextHop]Entry)
	for _, e := range ents {
		m[e.NextHop] = e
	}
	return m
}

// waitResolved waits until every entry the manager wants is resolved, and
// those it owns are in state want (REACHABLE for a fresh entry).
func waitResolved(t *testing.T, ns *netlab.NS, m *Manager, want uint16) []Entry {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var ents []Entry
		in(t, ns, func() (err error) { ents, err = m.Entries(); return err })
		ok := len(ents) > 0
		for _, e := range ents {
			ok = ok && e.Resolved() && (!e.ours() || e.State&want != 0)
		}
		if ok {
			return ents
		}
		if time.Now().After(deadline) {
			t.Fatalf("entries not resolved after 5s: %v", ents)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPrivilegedManagedEntriesResolve(t *testing.T) {
	x := newLab(t)
	m := New(zaptest.NewLogger(t))
	ctx := context.Background()
	targets := []netip.Addr{
		netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("198.51.100.8"), // one next hop: 192.0.2.2
		netip.MustParseAddr("198.18.0.5"), // via the static entry: left alone
		netip.MustParseAddr("192.0.2.1"),  // a local address: no next hop
	}
	in(t, x.a, func() error { return m.Sync(ctx, targets) })

	gwB := NextHop{Addr: x.peerB, LinkIndex: x.a0}
	gwC := NextHop{Addr: x.peerC, LinkIndex: x.a1} // the default gateway
	static := NextHop{Addr: x.staticGateway, LinkIndex: x.a0}
	if got, want := m.Owned(), []NextHop{gwB, gwC}; !equalHops(got, want) {
		t.Fatalf("owned %v, want %v", got, want)
	}
	ents := waitResolved(t, x.a, m, unix.NUD_REACHABLE)
	t.Logf("entries: %v", ents)
	tab := table(t, x.a)
	for h, mac := range map[NextHop]net.HardwareAddr{gwB: x.bMAC, gwC: x.cMAC} {
		e := tab[h]
		if !e.Managed || e.Proto != Protocol {
			t.Errorf("%v: managed=%v proto=%d, want a managed entry with protocol %d", h, e.Managed, e.Proto, Protocol)
		}
		if !bytes.Equal(e.MAC, mac) {
			t.Errorf("%v resolved to %v, want the peer's %v", h, e.MAC, mac)
		}
	}
	if e := tab[static]; e.State != unix.NUD_PERMANENT || e.Managed || e.Proto != 0 {
		t.Errorf("static entry changed: %+v", e)
	}
	// `ip neigh` agrees (the entry carries the managed flag and our protocol).
	if out, err := x.a.Run("ip", "-d", "neigh", "show", x.peerB.String()); err == nil {
		t.Logf("ip neigh: %s", strings.TrimSpace(out))
		if !strings.Contains(out, "managed") {
			t.Errorf("ip neigh does not show the entry as managed: %s", out)
		}
	}

	// Idempotent: nothing changes.
	in(t, x.a, func() error { return m.Sync(ctx, targets) })
	if got := m.Owned(); !equalHops(got, []NextHop{gwB, gwC}) {
		t.Fatalf("owned after second sync %v", got)
	}

	// The targets go away: their entry is deleted, the gateway's stays.
	in(t, x.a, func() error { return m.Sync(ctx, nil) })
	tab = table(t, x.a)
	if e, ok := tab[gwB]; ok && e.ours() {
		t.Errorf("entry for %v still managed by us: %+v", gwB, e)
	}
	if e := tab[gwC]; !e.ours() {
		t.Errorf("default gateway's entry lost: %+v", e)
	}
	if e := tab[static]; e.State != unix.NUD_PERMANENT {
		t.Errorf("static entry changed: %+v", e)
	}
}

func TestPrivilegedAdoptsDynamicEntryAndRestart(t *testing.T) {
	x := newLab(t)
	ctx := context.Background()
	gwB := NextHop{Addr: x.peerB, LinkIndex: x.a0}
	// A dynamic entry, as left by traffic through the stack.
	if err := x.a.Netlink().NeighAdd(&netlink.Neigh{LinkIndex: x.a0, IP: x.peerB.AsSlice(),
		HardwareAddr: x.bMAC, State: netlink.NUD_STALE, Family: netlink.FAMILY_V4}); err != nil {
		t.Fatal(err)
	}
	m := New(zaptest.NewLogger(t))
	target := []netip.Addr{netip.MustParseAddr("198.51.100.7")}
	in(t, x.a, func() error { return m.Sync(ctx, target) })
	e := table(t, x.a)[gwB]
	if !e.ours() || !bytes.Equal(e.MAC, x.bMAC) {
		t.Fatalf("dynamic entry not upgraded in place: %+v", e)
	}
	// Upgraded in place, it keeps its (valid) state: no fresh resolution.
	waitResolved(t, x.a, m, nudValid)

	// A restarted agent adopts the entries by their protocol and prunes
	// what it no longer needs.
	m2 := New(zaptest.NewLogger(t))
	in(t, x.a, func() error { return m2.Sync(ctx, nil) })
	tab := table(t, x.a)
	if e, ok := tab[gwB]; ok && e.ours() {
		t.Errorf("restarted manager left the previous run's entry %+v", e)
	}
	if got := m2.Owned(); !equalHops(got, []NextHop{{Addr: x.peerC, LinkIndex: x.a1}}) {
		t.Errorf("owned after restart %v", got)
	}
}

func TestPrivilegedUnresolvableTarget(t *testing.T) {
	x := newLab(t)
	ctx := context.Background()
	// No default route: an address outside every route cannot resolve.
	in(t, x.a, func() error {
		return netlink.RouteDel(&netlink.Route{Dst: nil, Gw: x.peerC.AsSlice(), LinkIndex: x.a1})
	})
	m := New(zaptest.NewLogger(t))
	bad := netip.MustParseAddr("100.64.0.1")
	var err error
	in(t, x.a, func() error {
		err = m.Sync(ctx, []netip.Addr{bad, netip.MustParseAddr("198.51.100.7")})
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "resolve next hop for 100.64.0.1: ") {
		t.Fatalf("error %v, want one naming the unresolvable target", err)
	}
	if !errors.Is(err, unix.ENETUNREACH) {
		t.Errorf("error %v does not wrap ENETUNREACH", err)
	}
	// The resolvable one was still handled.
	if got := m.Owned(); !equalHops(got, []NextHop{{Addr: x.peerB, LinkIndex: x.a0}}) {
		t.Errorf("owned %v", got)
	}
}
