package e2e

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/straitlb/strait/dataplane/lbmap"
	"github.com/straitlb/strait/internal/netlab"
	"github.com/straitlb/strait/model"
)

// Address plan on top of netlab's: LoadBalancer VIPs in 203.0.113.0/24
// (TEST-NET-3, which the router routes to the nodes), NodePorts on each
// node's IP.
var (
	webVIP   = netip.MustParseAddr("203.0.113.10")
	emptyVIP = netip.MustParseAddr("203.0.113.20")
)

const flows = 60 // connections or datagrams per frontend in the spread checks

func ap(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

// checkPeer checks the address a backend saw against the translation the
// datapath applies, and returns the node the flow entered by. A local
// backend is reached by DNAT only: it sees the client's own address and
// port. A remote one is also SNATed: it sees the entry node's IP and a port
// of the SNAT range. entry is the node the flow was sent to, or nil when
// the router chose it (ECMP towards a VIP) and it must be inferred.
func (c *cluster) checkPeer(t *testing.T, backend string, peer, client netip.AddrPort, entry *node) (*node, error) {
	t.Helper()
	p := c.pod(backend)
	if peer == client {
		if entry != nil && p.Node != entry.Node {
			return nil, fmt.Errorf("remote backend %s (flow entered at %s) saw the client %s: no SNAT", backend, entry.Name, peer)
		}
		for _, n := range c.nodes {
			if n.Node == p.Node {
				return n, nil
			}
		}
	}
	for _, n := range c.nodes {
		if peer.Addr() != n.IP {
			continue
		}
		switch {
		case n.Node == p.Node:
			return nil, fmt.Errorf("local backend %s saw its own node's address %s, want the client %s", backend, peer, client)
		case entry != nil && n != entry:
			return nil, fmt.Errorf("backend %s saw %s, but the flow entered at %s", backend, peer, entry.Name)
		case peer.Port() < snatMin || peer.Port() > snatMax:
			return nil, fmt.Errorf("backend %s saw %s: port outside the SNAT range %d-%d", backend, peer, snatMin, snatMax)
		}
		return n, nil
	}
	return nil, fmt.Errorf("backend %s saw %s: neither the client %s nor a node's SNAT address", backend, peer, client)
}

// TestPrivilegedNodePortAndLoadBalancer sends TCP connections and UDP
// datagrams through NodePorts on both nodes and through a LoadBalancer VIP
// that the router spreads over both nodes (ECMP on the L4 hash). Every
// connection must succeed and echo, every UDP reply must come from the
// frontend the client addressed, bulk transfers (256 KiB each way on every
// tenth connection) must echo intact, the flows must spread over all four
// backends on both nodes, and every backend must see the source address the
// datapath's translation implies (client for local backends, the entry
// node's IP and a SNAT port for remote ones).
func TestPrivilegedNodePortAndLoadBalancer(t *testing.T) {
	c := newCluster(t, netlab.TopologyConfig{VIPMultipath: true})
	if err := c.topo.Router.SetSysctl("net.ipv4.fib_multipath_hash_policy", "1"); err != nil {
		t.Fatal(err)
	}
	pods := c.topo.Pods()
	web := svcSpec{Name: "web", Proto: model.TCP, NodePort: 30080, VIP: ap(webVIP, 80), Backends: pods}
	dns := svcSpec{Name: "dns", Proto: model.UDP, NodePort: 30053, VIP: ap(webVIP, 53), Backends: pods}
	c.apply(web, dns)
	n1, n2 := c.nodes[0], c.nodes[1]

	type frontend struct {
		name  string
		addr  netip.AddrPort
		entry *node // nil: the router picks
	}
	tcpFEs := []frontend{
		{"nodeport-node1", ap(n1.IP, 30080), n1},
		{"nodeport-node2", ap(n2.IP, 30080), n2},
		{"loadbalancer", ap(webVIP, 80), nil},
	}
	udpFEs := []frontend{
		{"nodeport-node1", ap(n1.IP, 30053), n1},
		{"nodeport-node2", ap(n2.IP, 30053), n2},
		{"loadbalancer", ap(webVIP, 53), nil},
	}
	checkEntries := func(t *testing.T, fe frontend, entered map[string]int) {
		t.Helper()
		t.Logf("%s: flows entered at %v", fe.name, entered)
		if fe.entry == nil {
			for _, n := range c.nodes {
				if entered[n.Name] == 0 {
					t.Errorf("%s: no flow entered at %s; ECMP should spread %d flows over both nodes", fe.name, n.Name, flows)
				}
			}
		}
	}

	t.Run("tcp", func(t *testing.T) {
		for _, fe := range tcpFEs {
			t.Run(fe.name, func(t *testing.T) {
				d, entered := distribution{}, map[string]int{}
				for i := range flows {
					cn, err := c.dial(fe.addr, 3*time.Second)
					if err != nil {
						t.Fatalf("connection %d to %s: %v", i, fe.addr, err)
					}
					// The connection's remote is the frontend: it connected to it.
					if err := cn.echo(fmt.Sprintf("hello %d", i)); err != nil {
						t.Fatalf("connection %d to %s (%s): %v", i, fe.addr, cn.reply.Name, err)
					}
					if i%10 == 0 {
						if err := cn.bulk(256 << 10); err != nil {
							t.Errorf("connection %d to %s (%s): bulk echo: %v", i, fe.addr, cn.reply.Name, err)
						}
					}
					cn.Close()
					d[cn.reply.Name]++
					n, err := c.checkPeer(t, cn.reply.Name, cn.reply.Peer, cn.local, fe.entry)
					if err != nil {
						t.Error(err)
						continue
					}
					entered[n.Name]++
				}
				requireSpread(t, "tcp "+fe.name, d, pods, 3)
				checkEntries(t, fe, entered)
			})
		}
	})

	t.Run("udp", func(t *testing.T) {
		for _, fe := range udpFEs {
			t.Run(fe.name, func(t *testing.T) {
				d, entered := distribution{}, map[string]int{}
				resends := 0
				for i := range flows {
					r, err := c.udpAsk(fe.addr, 3*time.Second)
					if err != nil {
						t.Fatalf("datagram %d to %s: %v", i, fe.addr, err)
					}
					resends += r.resends
					if r.from != fe.addr {
						t.Errorf("reply from %s (%s) to a datagram sent to %s: not the frontend", r.from, r.Name, fe.addr)
					}
					d[r.Name]++
					n, err := c.checkPeer(t, r.Name, r.Peer, r.local, fe.entry)
					if err != nil {
						t.Error(err)
						continue
					}
					entered[n.Name]++
				}
				if resends > 0 {
					t.Logf("udp %s: %d datagrams had to be resent", fe.name, resends)
				}
				requireSpread(t, "udp "+fe.name, d, pods, 3)
				checkEntries(t, fe, entered)
			})
		}
	})

	// What each kind of backend sees, stated on its own (checkPeer already
	// applied it to every flow above).
	t.Run("source-address", func(t *testing.T) {
		seen := map[bool]int{}
		for i := range 20 {
			cn, err := c.dial(ap(n1.IP, 30080), 3*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			cn.Close()
			local := c.pod(cn.reply.Name).Node == n1.Node
			seen[local]++
			switch {
			case local && cn.reply.Peer != cn.local:
				// eTP=Cluster, local backend: DNAT only, the client's
				// address and port are preserved.
				t.Errorf("%d: local backend %s saw %s, want the client's %s", i, cn.reply.Name, cn.reply.Peer, cn.local)
			case !local && cn.reply.Peer.Addr() != n1.IP:
				t.Errorf("%d: remote backend %s saw %s, want node1's SNAT address %s", i, cn.reply.Name, cn.reply.Peer, n1.IP)
			}
		}
		t.Logf("flows to local backends: %d, to remote backends: %d", seen[true], seen[false])
		if seen[true] == 0 || seen[false] == 0 {
			t.Errorf("20 flows did not reach both local and remote backends: %v", seen)
		}
	})
}

// TestPrivilegedExternalTrafficPolicyLocal programs a service whose pods
// all run on node1 with externalTrafficPolicy=Local: node1 balances to its
// own pods only and they see the client's own address (no SNAT); node2 has
// no local backend and drops (IfEmpty=Drop): the connection times out
// instead of being refused.
func TestPrivilegedExternalTrafficPolicyLocal(t *testing.T) {
	c := newCluster(t, netlab.TopologyConfig{})
	n1, n2 := c.nodes[0], c.nodes[1]
	tcp := svcSpec{Name: "local", Proto: model.TCP, NodePort: 30081, Backends: n1.Pods, LocalPolicy: true}
	udp := svcSpec{Name: "local-udp", Proto: model.UDP, NodePort: 30054, Backends: n1.Pods, LocalPolicy: true}
	c.apply(tcp, udp)
	if s := n2.state.Services[0]; len(s.Backends) != 0 || s.IfEmpty != model.Drop {
		t.Fatalf("node2's view of the service: %+v", s)
	}

	t.Run("backend sees the client", func(t *testing.T) {
		d := distribution{}
		for i := range 20 {
			cn, err := c.dial(ap(n1.IP, 30081), 3*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if err := cn.echo("local"); err != nil {
				t.Fatal(err)
			}
			cn.Close()
			d[cn.reply.Name]++
			if cn.reply.Peer != cn.local {
				t.Errorf("%d: backend %s saw %s, want the client's own %s", i, cn.reply.Name, cn.reply.Peer, cn.local)
			}
			r, err := c.udpAsk(ap(n1.IP, 30054), 3*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if r.Peer != r.local || r.from != ap(n1.IP, 30054) {
				t.Errorf("udp %d: backend %s saw %s (client %s), reply from %s", i, r.Name, r.Peer, r.local, r.from)
			}
		}
		requireSpread(t, "tcp node1 (Local)", d, n1.Pods, 1)
	})

	t.Run("node without local backend drops", func(t *testing.T) {
		fe := ap(n2.IP, 30081)
		before, err := n2.svcStats(model.FrontendKey{Addr: n2.IP, Port: 30081, Proto: model.TCP})
		if err != nil {
			t.Fatal(err)
		}
		cn, err := c.dial(fe, 300*time.Millisecond)
		if err == nil {
			cn.Close()
			t.Fatalf("connection to %s succeeded (backend %s); want it dropped", fe, cn.reply.Name)
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("connection to %s: %v; want a timeout (silent drop), not a refusal", fe, err)
		}
		after, err := n2.svcStats(model.FrontendKey{Addr: n2.IP, Port: 30081, Proto: model.TCP})
		if err != nil {
			t.Fatal(err)
		}
		if after[lbmap.StatDrop] <= before[lbmap.StatDrop] || after[lbmap.StatReject] != before[lbmap.StatReject] {
			t.Errorf("node2 service counters %v -> %v: want drops counted, no rejects", before, after)
		}
		if r, err := c.udpAsk(ap(n2.IP, 30054), 500*time.Millisecond); err == nil {
			t.Errorf("udp to node2 answered by %s; want it dropped", r.Name)
		}
	})
}

// TestPrivilegedNoBackendsRejects: a frontend whose service has no
// endpoints at all is rejected by the datapath itself: a TCP connect fails
// with ECONNREFUSED (the XDP-built RST) right away, a connected UDP socket
// reads ECONNREFUSED (the XDP-built ICMP port unreachable). Both on a
// NodePort and on a LoadBalancer VIP.
func TestPrivilegedNoBackendsRejects(t *testing.T) {
	c := newCluster(t, netlab.TopologyConfig{})
	n1 := c.nodes[0]
	tcp := svcSpec{Name: "empty", Proto: model.TCP, NodePort: 30082, VIP: ap(emptyVIP, 80)}
	udp := svcSpec{Name: "empty-udp", Proto: model.UDP, NodePort: 30055, VIP: ap(emptyVIP, 53)}
	c.apply(tcp, udp)

	for _, fe := range []netip.AddrPort{ap(n1.IP, 30082), ap(emptyVIP, 80)} {
		t.Run("tcp "+fe.String(), func(t *testing.T) {
			start := time.Now()
			cn, err := c.dial(fe, 3*time.Second)
			elapsed := time.Since(start)
			if err == nil {
				cn.Close()
				t.Fatalf("connected to %s (%s)", fe, cn.reply.Name)
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("connect to %s: %v; want ECONNREFUSED", fe, err)
			}
			// A RST answers the first SYN: no retransmission (1 s) involved.
			if elapsed >= time.Second {
				t.Errorf("refusal took %s; the first SYN was not answered", elapsed)
			}
		})
	}
	for _, fe := range []netip.AddrPort{ap(n1.IP, 30055), ap(emptyVIP, 53)} {
		t.Run("udp "+fe.String(), func(t *testing.T) {
			reply, _, err := netlab.UDPRequest(c.topo.Client, fe, 2*time.Second)
			if err == nil {
				t.Fatalf("udp to %s answered: %q", fe, reply)
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("udp to %s: %v; want ECONNREFUSED from an ICMP port unreachable", fe, err)
			}
		})
	}
	st, err := n1.svcStats(model.FrontendKey{Addr: n1.IP, Port: 30082, Proto: model.TCP})
	if err != nil {
		t.Fatal(err)
	}
	if st[lbmap.StatReject] == 0 {
		t.Errorf("node1 counted no rejects for the empty service: %v", st)
	}
}

// openConns opens n connections to fe and checks each echoes.
func (c *cluster) openConns(t *testing.T, fe netip.AddrPort, n int) []*conn {
	t.Helper()
	var conns []*conn
	t.Cleanup(func() {
		for _, cn := range conns {
			cn.Close()
		}
	})
	for i := range n {
		cn, err := c.dial(fe, 3*time.Second)
		if err != nil {
			t.Fatalf("connection %d to %s: %v", i, fe, err)
		}
		conns = append(conns, cn)
		if err := cn.echo("open"); err != nil {
			t.Fatalf("connection %d to %s: %v", i, fe, err)
		}
	}
	return conns
}

// echoAll exchanges data on every connection.
func echoAll(t *testing.T, when string, conns []*conn) {
	t.Helper()
	for i, cn := range conns {
		if err := cn.echo(fmt.Sprintf("%s %d", when, i)); err != nil {
			t.Errorf("%s: connection %d (%s -> %s): %v", when, i, cn.local, cn.reply.Name, err)
		}
	}
}

// spread dials n new connections and returns which backends they reached.
func (c *cluster) spread(t *testing.T, fe netip.AddrPort, n int) distribution {
	t.Helper()
	d := distribution{}
	for i := range n {
		cn, err := c.dial(fe, 3*time.Second)
		if err != nil {
			t.Fatalf("new connection %d to %s: %v", i, fe, err)
		}
		if err := cn.echo("new"); err != nil {
			t.Fatalf("new connection %d to %s: %v", i, fe, err)
		}
		cn.Close()
		d[cn.reply.Name]++
	}
	return d
}

// TestPrivilegedEstablishedSurviveBackendChanges keeps TCP connections
// open through node1's NodePort while backends they do not use are added
// and removed (new Maglev rings on both nodes): every open connection keeps
// its backend and exchanges data, and new connections follow the new sets.
func TestPrivilegedEstablishedSurviveBackendChanges(t *testing.T) {
	c := newCluster(t, netlab.TopologyConfig{})
	n1 := c.nodes[0]
	fe := ap(n1.IP, 30080)
	initial := []*netlab.Pod{c.pod("node1-pod0"), c.pod("node2-pod0")}
	added := []*netlab.Pod{c.pod("node1-pod1"), c.pod("node2-pod1")}
	web := svcSpec{Name: "web", Proto: model.TCP, NodePort: 30080, Backends: initial}
	c.apply(web)

	conns := c.openConns(t, fe, 8)
	used := map[string]bool{}
	for _, cn := range conns {
		used[cn.reply.Name] = true
		if !slices.ContainsFunc(initial, func(p *netlab.Pod) bool { return p.Name == cn.reply.Name }) {
			t.Fatalf("connection reached %s, not an initial backend", cn.reply.Name)
		}
	}
	t.Logf("open connections use %v", used)

	// Add two backends.
	web.Backends = append(slices.Clone(initial), added...)
	for i, res := range c.apply(web) {
		if res.Writes == 0 {
			t.Errorf("%s: adding backends wrote nothing", c.nodes[i].Name)
		}
	}
	echoAll(t, "after adding backends", conns)
	d := c.spread(t, fe, 20)
	t.Logf("new connections after adding: %s", d)
	if d[added[0].Name]+d[added[1].Name] == 0 {
		t.Errorf("no new connection reached an added backend: %s", d)
	}

	// Remove every backend no open connection uses (the added ones, and an
	// initial one if unused).
	var keep []*netlab.Pod
	for _, p := range web.Backends {
		if used[p.Name] {
			keep = append(keep, p)
		}
	}
	web.Backends = keep
	c.apply(web)
	echoAll(t, "after removing other backends", conns)
	d = c.spread(t, fe, 20)
	t.Logf("new connections after removing: %s", d)
	for name := range d {
		if !used[name] {
			t.Errorf("new connection reached removed backend %s", name)
		}
	}
	echoAll(t, "at the end", conns)
}

// TestPrivilegedRestart restarts node1's agent with connections open: the
// datapath handles are closed (forwarding goes on from the pins), a new
// datapath and programmer load over the same pin directory, update the
// pinned XDP and tcx links in place and restore the ids from the maps, so
// applying the same state writes nothing; the open connections keep
// exchanging data and new ones work.
func TestPrivilegedRestart(t *testing.T) {
	c := newCluster(t, netlab.TopologyConfig{})
	n1 := c.nodes[0]
	fe := ap(n1.IP, 30080)
	pods := c.topo.Pods()
	web := svcSpec{Name: "web", Proto: model.TCP, NodePort: 30080, Backends: pods}
	dns := svcSpec{Name: "dns", Proto: model.UDP, NodePort: 30053, Backends: pods}
	c.apply(web, dns)
	conns := c.openConns(t, fe, 8)
	used := distribution{}
	for _, cn := range conns {
		used[cn.reply.Name]++
	}
	t.Logf("open connections use %s", used)

	// The agent stops: its handles close, the pinned links and maps stay.
	if err := n1.dp.Close(); err != nil {
		t.Fatal(err)
	}
	n1.dp = nil
	echoAll(t, "while no agent runs", conns)

	xdp, tc := c.start(n1)
	if !xdp.Updated || !tc.Updated {
		t.Errorf("restart attached anew instead of updating the pinned links in place: xdp %+v, tc %+v", xdp, tc)
	}
	res, err := n1.prog.Apply(n1.state)
	if err != nil || len(res.Failed) > 0 {
		t.Fatalf("apply after restart: %v %v", err, res.Failed)
	}
	if res.Writes != 0 {
		t.Errorf("apply of the same state after restart wrote %d entries; ids were not restored", res.Writes)
	}
	c.syncNeigh(n1)
	if got := n1.neigh.Owned(); len(got) == 0 {
		t.Errorf("restarted neighbour manager owns no entry; want the previous run's adopted")
	}

	echoAll(t, "after restart", conns)
	requireSpread(t, "new connections after restart", c.spread(t, fe, 40), pods, 1)
	for i := range 10 {
		r, err := c.udpAsk(ap(n1.IP, 30053), 3*time.Second)
		if err != nil {
			t.Fatalf("udp %d after restart: %v", i, err)
		}
		if r.from != ap(n1.IP, 30053) {
			t.Errorf("udp reply from %s", r.from)
		}
	}
	c.checkChecksums()
}
