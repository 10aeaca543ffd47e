package neigh

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"
)

// fakeKernel is an in-memory routing and neighbour table. Its routeGet
// looks the routes up (local table, then main: the default rules), unless
// fail, local or next says otherwise for the address.
type fakeKernel struct {
	next     map[netip.Addr]NextHop // routeGet answers overriding the routes
	local    map[netip.Addr]bool
	fail     map[netip.Addr]error
	rts      []route
	rls      []rule // nil: the default rules
	rulesErr error
	neigh    map[NextHop]Entry
	noManage bool // behave like a kernel before 5.16
	calls    []string
	gets     int // routeGet calls
}

func newFake() *fakeKernel {
	return &fakeKernel{next: map[netip.Addr]NextHop{}, local: map[netip.Addr]bool{},
		fail: map[netip.Addr]error{}, neigh: map[NextHop]Entry{}}
}

func (f *fakeKernel) routeGet(dst netip.Addr) (NextHop, bool, error) {
	f.calls = append(f.calls, "get "+dst.String())
	f.gets++
	if err := f.fail[dst]; err != nil {
		return NextHop{}, false, err
	}
	if f.local[dst] {
		return NextHop{}, false, nil
	}
	if h, ok := f.next[dst]; ok {
		return h, true, nil
	}
	if f.longest(dst, unix.RT_TABLE_LOCAL) != nil {
		return NextHop{}, false, nil
	}
	r := f.longest(dst, unix.RT_TABLE_MAIN)
	if r == nil || r.Type != unix.RTN_UNICAST || len(r.Paths) == 0 {
		return NextHop{}, false, unix.ENETUNREACH
	}
	p := r.Paths[int(dst.As4()[3])%len(r.Paths)] // "hash" onto a path
	h := NextHop{Addr: dst, LinkIndex: p.LinkIndex}
	if p.Gateway.IsValid() {
		h.Addr = p.Gateway
	}
	return h, p.Resolves, nil
}

// longest is a naive longest-prefix match (lowest metric on a tie).
func (f *fakeKernel) longest(dst netip.Addr, table uint32) *route {
	var best *route
	for i := range f.rts {
		r := &f.rts[i]
		if r.Table != table || !r.Dst.Contains(dst) {
			continue
		}
		if best == nil || r.Dst.Bits() > best.Dst.Bits() ||
			(r.Dst.Bits() == best.Dst.Bits() && r.Priority < best.Priority) {
			best = r
		}
	}
	return best
}

func (f *fakeKernel) routes() ([]route, error) { return f.rts, nil }

var kernelDefaultRules = []rule{{Priority: 0, Table: unix.RT_TABLE_LOCAL, Plain: true},
	{Priority: 32766, Table: unix.RT_TABLE_MAIN, Plain: true}, {Priority: 32767, Table: unix.RT_TABLE_DEFAULT, Plain: true}}

func (f *fakeKernel) rules() ([]rule, error) {
	if f.rulesErr != nil {
		return nil, f.rulesErr
	}
	if f.rls == nil {
		return kernelDefaultRules, nil
	}
	return f.rls, nil
}

// without removes the routes to dst.
func (f *fakeKernel) without(dst string) {
	f.rts = slices.DeleteFunc(slices.Clone(f.rts), func(r route) bool { return r.Dst == netip.MustParsePrefix(dst) })
}

func (f *fakeKernel) neighbours() ([]Entry, error) {
	var out []Entry
	for _, e := range f.neigh {
		out = append(out, e)
	}
	return out, nil
}

func (f *fakeKernel) setManaged(h NextHop, create bool) error {
	f.calls = append(f.calls, fmt.Sprintf("set %v create=%v", h, create))
	e, ok := f.neigh[h]
	if create && ok {
		return unix.EEXIST
	}
	if !create && !ok {
		return unix.ENOENT
	}
	if !ok {
		e = Entry{NextHop: h, Exists: true, State: unix.NUD_INCOMPLETE}
	}
	e.Managed = !f.noManage
	e.Proto = Protocol
	f.neigh[h] = e
	return nil
}

func (f *fakeKernel) remove(h NextHop) error {
	f.calls = append(f.calls, fmt.Sprintf("del %v", h))
	if _, ok := f.neigh[h]; !ok {
		return unix.ENOENT
	}
	delete(f.neigh, h)
	return nil
}

func a(s string) netip.Addr { return netip.MustParseAddr(s) }

func equalHops(a, b []NextHop) bool { return slices.Equal(a, b) }

var (
	gw     = NextHop{Addr: a("192.0.2.1"), LinkIndex: 2}
	node2  = NextHop{Addr: a("192.0.2.12"), LinkIndex: 2}
	node3  = NextHop{Addr: a("192.0.2.13"), LinkIndex: 2}
	direct = NextHop{Addr: a("192.0.2.50"), LinkIndex: 2}
)

// gwRoute is a main-table unicast route via gateways on links that use
// neighbour resolution (several: a multipath route).
func gwRoute(dst string, hops ...NextHop) route {
	r := route{Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST, Dst: netip.MustParsePrefix(dst)}
	for _, h := range hops {
		r.Paths = append(r.Paths, path{Gateway: h.Addr, LinkIndex: h.LinkIndex, Resolves: true})
	}
	return r
}

// linkRoute is a main-table connected route.
func linkRoute(dst string, link int, resolves bool) route {
	return route{Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST, Scope: unix.RT_SCOPE_LINK,
		Dst: netip.MustParsePrefix(dst), Paths: []path{{LinkIndex: link, Resolves: resolves}}}
}

// localRoute is the local table's route of a local address.
func localRoute(addr string, link int) route {
	return route{Table: unix.RT_TABLE_LOCAL, Type: unix.RTN_LOCAL, Scope: unix.RT_SCOPE_HOST,
		Dst: netip.PrefixFrom(a(addr), 32), Paths: []path{{LinkIndex: link, Resolves: true}}}
}

// cluster: default via 192.0.2.1; pods of node2 via 192.0.2.12, of node3
// via 192.0.2.13; 192.0.2.0/24 on-link, 192.0.2.11 local.
func cluster() *fakeKernel {
	f := newFake()
	f.rts = []route{gwRoute("0.0.0.0/0", gw), gwRoute("198.18.2.0/24", node2), gwRoute("198.18.3.0/24", node3),
		linkRoute("192.0.2.0/24", 2, true), localRoute("192.0.2.11", 2), localRoute("127.0.0.1", 1)}
	return f
}

func doSync(t *testing.T, m *Manager, targets ...string) error {
	t.Helper()
	var ips []netip.Addr
	for _, s := range targets {
		ips = append(ips, a(s))
	}
	return m.Sync(context.Background(), ips)
}

func TestSyncCreatesDedupsAndPrunes(t *testing.T) {
	f := cluster()
	m := newManager(zaptest.NewLogger(t), f)
	if err := doSync(t, m, "198.18.2.10", "198.18.2.11", "198.18.2.10", "192.0.2.50", "192.0.2.11"); err != nil {
		t.Fatal(err)
	}
	if got, want := m.Owned(), []NextHop{gw, node2, direct}; !equalHops(got, want) {
		t.Fatalf("owned %v, want %v", got, want)
	}
	for _, h := range []NextHop{gw, node2, direct} {
		if e := f.neigh[h]; !e.Managed || e.Proto != Protocol {
			t.Errorf("%v: %+v", h, e)
		}
	}
	// 198.18.2.10 was resolved once although listed twice.
	n := 0
	for _, c := range f.calls {
		if c == "get 198.18.2.10" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("198.18.2.10 resolved %d times", n)
	}

	// Nothing to do the second time.
	f.calls = nil
	if err := doSync(t, m, "198.18.2.10", "198.18.2.11", "192.0.2.50"); err != nil {
		t.Fatal(err)
	}
	for _, c := range f.calls {
		if !strings.HasPrefix(c, "get ") {
			t.Errorf("unexpected kernel write on an unchanged sync: %s", c)
		}
	}

	// node2's pods go, node3's come: node2 and the on-link entry are
	// deleted, node3 added, the default gateway kept.
	if err := doSync(t, m, "198.18.3.10"); err != nil {
		t.Fatal(err)
	}
	if got, want := m.Owned(), []NextHop{gw, node3}; !equalHops(got, want) {
		t.Fatalf("owned %v, want %v", got, want)
	}
	if _, ok := f.neigh[node2]; ok {
		t.Error("node2's entry not deleted")
	}
	ents, err := m.Entries()
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 2 || ents[0].NextHop != gw || ents[1].NextHop != node3 || !ents[1].Exists {
		t.Errorf("entries %+v", ents)
	}
}

func TestSyncLeavesOthersEntriesAlone(t *testing.T) {
	f := cluster()
	mac := []byte{2, 0, 0, 0, 0, 1}
	f.neigh[gw] = Entry{NextHop: gw, Exists: true, State: unix.NUD_PERMANENT, MAC: mac}
	f.neigh[node2] = Entry{NextHop: node2, Exists: true, State: unix.NUD_REACHABLE, Managed: true} // another agent's
	m := newManager(zaptest.NewLogger(t), f)
	if err := doSync(t, m, "198.18.2.10"); err != nil {
		t.Fatal(err)
	}
	if len(m.Owned()) != 0 {
		t.Fatalf("owned %v, want nothing", m.Owned())
	}
	for _, c := range f.calls {
		if !strings.HasPrefix(c, "get ") {
			t.Errorf("touched an entry it does not own: %s", c)
		}
	}
	// Not needed any more: still not ours to delete.
	if err := doSync(t, m); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.neigh[node2]; !ok {
		t.Error("deleted another agent's managed entry")
	}
}

func TestSyncUpgradesDynamicEntry(t *testing.T) {
	f := cluster()
	f.neigh[node2] = Entry{NextHop: node2, Exists: true, State: unix.NUD_STALE, MAC: []byte{2, 0, 0, 0, 0, 0x12}}
	m := newManager(zaptest.NewLogger(t), f)
	if err := doSync(t, m, "198.18.2.10"); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(f.calls, fmt.Sprintf("set %v create=false", node2)) {
		t.Fatalf("dynamic entry not updated in place: %v", f.calls)
	}
	if e := f.neigh[node2]; !e.ours() || e.State != unix.NUD_STALE || len(e.MAC) != 6 {
		t.Errorf("upgraded entry %+v", e)
	}
}

func TestSyncRaceWithConcurrentChange(t *testing.T) {
	f := cluster()
	m := newManager(zaptest.NewLogger(t), f)
	// The entry appears between the dump and the create: the create fails
	// with EEXIST and the Manager updates it in place instead.
	k := &racingKernel{fakeKernel: f, appear: node2}
	m.k = k
	if err := doSync(t, m, "198.18.2.10"); err != nil {
		t.Fatal(err)
	}
	if e := f.neigh[node2]; !e.ours() {
		t.Errorf("entry %+v", e)
	}
}

type racingKernel struct {
	*fakeKernel
	appear NextHop
	done   bool
}

func (r *racingKernel) setManaged(h NextHop, create bool) error {
	if h == r.appear && !r.done {
		r.done = true
		r.neigh[h] = Entry{NextHop: h, Exists: true, State: unix.NUD_REACHABLE}
	}
	return r.fakeKernel.setManaged(h, create)
}

func TestSyncResolutionErrorKeepsEntries(t *testing.T) {
	f := cluster()
	m := newManager(zaptest.NewLogger(t), f)
	if err := doSync(t, m, "198.18.2.10", "198.18.3.10"); err != nil {
		t.Fatal(err)
	}
	// The route goes (the cache sees the routes change), and the lookup
	// fails.
	f.without("198.18.2.0/24")
	f.fail[a("198.18.2.10")] = unix.ENETUNREACH
	err := doSync(t, m, "198.18.2.10")
	if err == nil || err.Error() != "resolve next hop for 198.18.2.10: network is unreachable" {
		t.Fatalf("error %v", err)
	}
	if !errors.Is(err, unix.ENETUNREACH) {
		t.Errorf("%v does not wrap the cause", err)
	}
	// No deletion in a round where a target failed: node3's entry stays
	// even though nothing asked for it.
	if _, ok := f.neigh[node3]; !ok {
		t.Error("entry deleted while a target was unresolved")
	}
	delete(f.fail, a("198.18.2.10"))
	f.rts = append(f.rts, gwRoute("198.18.2.0/24", node2))
	if err := doSync(t, m, "198.18.2.10"); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.neigh[node3]; ok {
		t.Error("unneeded entry not deleted once resolution recovered")
	}
}

func TestSyncAdoptsPreviousRun(t *testing.T) {
	f := cluster()
	f.neigh[node3] = Entry{NextHop: node3, Exists: true, State: unix.NUD_REACHABLE, Managed: true, Proto: Protocol}
	f.neigh[node2] = Entry{NextHop: node2, Exists: true, State: unix.NUD_REACHABLE, Managed: true, Proto: Protocol}
	m := newManager(zaptest.NewLogger(t), f)
	if err := doSync(t, m, "198.18.2.10"); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.neigh[node3]; ok {
		t.Error("previous run's unneeded entry kept")
	}
	if got, want := m.Owned(), []NextHop{gw, node2}; !equalHops(got, want) {
		t.Errorf("owned %v, want %v", got, want)
	}
}

func TestSyncECMPKeepsEveryNexthop(t *testing.T) {
	f := cluster()
	// Another route is ECMP over node2 and node3.
	f.rts = append(f.rts, gwRoute("198.18.9.0/24", node2, node3))
	m := newManager(zaptest.NewLogger(t), f)
	if err := doSync(t, m, "198.18.2.10"); err != nil {
		t.Fatal(err)
	}
	if got, want := m.Owned(), []NextHop{gw, node2, node3}; !equalHops(got, want) {
		t.Errorf("owned %v, want %v", got, want)
	}
}

func TestSyncOldKernel(t *testing.T) {
	f := cluster()
	f.noManage = true
	m := newManager(zaptest.NewLogger(t), f)
	if err := doSync(t, m, "198.18.2.10"); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("error %v, want ErrUnsupported", err)
	}
}

func TestSyncInvalidTarget(t *testing.T) {
	m := newManager(zaptest.NewLogger(t), cluster())
	err := m.Sync(context.Background(), []netip.Addr{{}, a("198.18.2.10")})
	if err == nil || !strings.HasPrefix(err.Error(), "resolve next hop for invalid IP: ") {
		t.Fatalf("error %v", err)
	}
	if got := m.Owned(); !equalHops(got, []NextHop{gw, node2}) {
		t.Errorf("owned %v", got)
	}
}

func TestSyncCanceled(t *testing.T) {
	m := newManager(zaptest.NewLogger(t), cluster())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.Sync(ctx, []netip.Addr{a("198.18.2.10")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v", err)
	}
}

func TestNeighRequestAndParse(t *testing.T) {
	if n := (&netlink.Ndmsg{}).Len(); n != ndmsgLen {
		t.Fatalf("netlink.Ndmsg is %d bytes, struct ndmsg is %d", n, ndmsgLen)
	}
	h := NextHop{Addr: a("192.0.2.12"), LinkIndex: 7}
	req := newNeighRequest(h, true)
	if req.Flags&unix.NLM_F_CREATE == 0 || req.Flags&unix.NLM_F_EXCL == 0 {
		t.Errorf("create flags %#x", req.Flags)
	}
	if r := newNeighRequest(h, false); r.Flags&unix.NLM_F_CREATE != 0 {
		t.Errorf("update flags %#x", r.Flags)
	}
	b := req.Serialize()[unix.SizeofNlMsghdr:]
	// Parsing the request as if the kernel had echoed it (plus a MAC)
	// yields the entry back.
	b = append(b, nl.NewRtAttr(unix.NDA_LLADDR, []byte{2, 0, 0, 0, 0, 0x12}).Serialize()...)
	e, ok, err := parseNeigh(b)
	if err != nil || !ok {
		t.Fatalf("parse: %v %v", ok, err)
	}
	if e.NextHop != h || !e.Managed || e.Proto != Protocol || e.MAC.String() != "02:00:00:00:00:12" || e.State != 0 {
		t.Errorf("parsed %+v", e)
	}
	// Proxy entries and bridge FDB entries are not neighbours.
	b[10] = unix.NTF_PROXY
	if _, ok, _ := parseNeigh(b); ok {
		t.Error("proxy entry parsed as a neighbour")
	}
	b[10], b[0] = 0, unix.AF_BRIDGE
	if _, ok, _ := parseNeigh(b); ok {
		t.Error("fdb entry parsed as a neighbour")
	}
	if _, _, err := parseNeigh(b[:5]); err == nil {
		t.Error("short message accepted")
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[uint16]string{0: "NONE", unix.NUD_REACHABLE: "REACHABLE",
		unix.NUD_STALE | unix.NUD_PROBE: "STALE|PROBE", 0x100: "0x100"} {
		if got := StateString(s); got != want {
			t.Errorf("StateString(%#x) = %q, want %q", s, got, want)
		}
	}
}
