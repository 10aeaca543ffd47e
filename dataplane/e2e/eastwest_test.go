package e2e

import (
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/straitlb/strait/dataplane/flowhash"
	"github.com/straitlb/strait/dataplane/maglev"
	"github.com/straitlb/strait/dataplane/program"
	"github.com/straitlb/strait/internal/netlab"
	"github.com/straitlb/strait/model"
)

func TestMain(m *testing.M) {
	netlab.RunClientIfRequested()
	os.Exit(m.Run())
}

// East-west address plan: ClusterIPs in 198.19.0.0/16 (RFC 2544), which
// no namespace routes: pods send them to their node (default route), host
// processes towards the uplink (default route).
var (
	cipWeb    = netip.MustParseAddr("198.19.1.10") // tcp :80 and udp :53, every pod
	cipSticky = netip.MustParseAddr("198.19.1.11") // affinity 2 s
	cipLocal  = netip.MustParseAddr("198.19.1.12") // iTP=Local
	cipLocal0 = netip.MustParseAddr("198.19.1.13") // iTP=Local, endpoints on node2 only
	cipEmpty  = netip.MustParseAddr("198.19.1.20") // no endpoints
	cipSelf   = netip.MustParseAddr("198.19.1.30") // node1-pod0 only (hairpin)
	cipMove   = netip.MustParseAddr("198.19.1.40") // udp, two backends, one removed
	cipLatL   = netip.MustParseAddr("198.19.1.50") // node1-pod1 only (latency, local)
	cipLatR   = netip.MustParseAddr("198.19.1.51") // node2-pod0 only (latency, remote)
)

// ewSvc is an internal service: a ClusterIP frontend.
type ewSvc struct {
	name     string
	addr     netip.Addr
	proto    model.Protocol
	backends []*netlab.Pod
	local    bool // internalTrafficPolicy=Local
	affinity time.Duration
}

func ewState(n *netlab.Node, specs []ewSvc) model.State {
	var st model.State
	for _, s := range specs {
		port, target := uint16(80), uint16(podTCPPort)
		if s.proto == model.UDP {
			port, target = 53, podUDPPort
		}
		svc := model.Service{
			Name:            model.ServiceName{Namespace: "ew", Name: s.name, Port: s.proto.String()},
			Frontends:       []model.Frontend{{Addr: s.addr, Port: port, Proto: s.proto, Kind: model.ClusterIP}},
			AffinityTimeout: s.affinity,
		}
		for _, p := range s.backends {
			if s.local && p.Node != n {
				continue
			}
			svc.Backends = append(svc.Backends, model.Backend{Addr: p.IP, Port: target, Local: p.Node == n})
		}
		if s.local {
			svc.Name.Scope = "internal"
			if len(s.backends) > 0 {
				svc.IfEmpty = model.Drop
			}
		}
		st.Services = append(st.Services, svc)
	}
	st.Canonicalize()
	return st
}

type ewCluster struct {
	*cluster
	socketLB bool
	specs    []ewSvc
	// clients: node1's pods and node1 itself
	pod0, pod1, host *netlab.Client
}

func (e *ewCluster) apply(t *testing.T) []program.Result {
	t.Helper()
	var out []program.Result
	for _, n := range e.nodes {
		res, err := n.prog.Apply(ewState(n.Node, e.specs))
		if err != nil || len(res.Failed) > 0 {
			t.Fatalf("%s: apply: %v %v", n.Name, err, res.Failed)
		}
		out = append(out, res)
	}
	return out
}

func newEWCluster(t *testing.T, socketLB bool) *ewCluster {
	c := newCluster(t, netlab.TopologyConfig{})
	e := &ewCluster{cluster: c, socketLB: socketLB}
	root, err := netlab.CgroupRoot()
	if err != nil {
		t.Fatal(err)
	}
	lab := c.topo.Lab
	var node1Cg, pods1Cg *netlab.Cgroup
	for _, n := range c.nodes {
		// The per-packet program on every pod's host device.
		for _, p := range n.Pods {
			if err := n.NS.Do(func() error { _, err := n.dp.AttachTCPod(p.HostVeth); return err }); err != nil {
				t.Fatal(err)
			}
		}
		// One cgroup per node stands for the node's root cgroup: its
		// processes (host and pods, in a child cgroup) are the node's.
		cg, err := lab.AddCgroup(root, n.Name)
		if err != nil {
			t.Fatal(err)
		}
		pcg, err := cg.Sub(lab, "pods")
		if err != nil {
			t.Fatal(err)
		}
		if socketLB {
			if _, err := n.dp.AttachCgroup(cg.Path); err != nil {
				t.Fatal(err)
			}
		}
		if n == c.nodes[0] {
			node1Cg, pods1Cg = cg, pcg
		}
	}
	n1 := c.nodes[0]
	pods := c.topo.Pods()
	e.specs = []ewSvc{
		{name: "web", addr: cipWeb, proto: model.TCP, backends: pods},
		{name: "web", addr: cipWeb, proto: model.UDP, backends: pods},
		{name: "sticky", addr: cipSticky, proto: model.TCP, backends: pods, affinity: 2 * time.Second},
		{name: "local", addr: cipLocal, proto: model.TCP, backends: pods, local: true},
		{name: "local0", addr: cipLocal0, proto: model.TCP, backends: c.nodes[1].Pods, local: true},
		{name: "empty", addr: cipEmpty, proto: model.TCP},
		{name: "empty", addr: cipEmpty, proto: model.UDP},
		{name: "self", addr: cipSelf, proto: model.TCP, backends: n1.Pods[:1]},
		{name: "move", addr: cipMove, proto: model.UDP, backends: []*netlab.Pod{n1.Pods[1], c.nodes[1].Pods[0]}},
		{name: "lat-local", addr: cipLatL, proto: model.TCP, backends: n1.Pods[1:2]},
		{name: "lat-remote", addr: cipLatR, proto: model.TCP, backends: c.nodes[1].Pods[:1]},
	}
	e.apply(t)
	start := func(ns *netlab.NS, cg *netlab.Cgroup) *netlab.Client {
		cl, err := ns.StartClient(cg)
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	e.pod0 = start(n1.Pods[0].NS, pods1Cg)
	e.pod1 = start(n1.Pods[1].NS, pods1Cg)
	e.host = start(n1.NS, node1Cg)
	return e
}

func must(t *testing.T, cl *netlab.Client, req netlab.ClientRequest) netlab.ClientResult {
	t.Helper()
	if req.TimeoutMs == 0 {
		req.TimeoutMs = 3000
	}
	r, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func reply(t *testing.T, r netlab.ClientResult) netlab.Reply {
	t.Helper()
	if r.Err != "" {
		t.Fatalf("request failed: %s (%s)", r.Err, r.Errno)
	}
	rep, err := netlab.ParseReply(r.Reply)
	if err != nil {
		t.Fatalf("reply %q: %v", r.Reply, err)
	}
	return rep
}

// pick is the Go model of the datapath's choice among keys.
func pick(keys []model.BackendKey, hash uint32) model.BackendKey {
	slices.SortFunc(keys, func(a, b model.BackendKey) int { return a.Compare(b) })
	size := maglev.TableSize(len(keys), maglev.DefaultMaxSize)
	return keys[maglev.Build(keys, size)[hash%size]]
}

func TestPrivilegedEastWestSocketLB(t *testing.T) { runEastWest(t, true) }

func TestPrivilegedEastWestPerPacket(t *testing.T) { runEastWest(t, false) }

// runEastWest: pods and host processes of node1 reach ClusterIPs, with
// socket-level balancing on (the cgroup hooks translate; the per-packet
// path only rejects) or off (the tc programs do everything).
func runEastWest(t *testing.T, socketLB bool) {
	e := newEWCluster(t, socketLB)
	n1 := e.nodes[0]
	pods := e.topo.Pods()
	pod0 := n1.Pods[0]

	t.Run("tcp spread, client address preserved", func(t *testing.T) {
		for _, who := range []struct {
			name string
			cl   *netlab.Client
		}{{"pod", e.pod0}, {"host", e.host}} {
			d := distribution{}
			for range 40 {
				r := must(t, who.cl, netlab.ClientRequest{Op: "tcp", Addr: ap(cipWeb, 80)})
				rep := reply(t, r)
				d[rep.Name]++
				if r.Peer != ap(cipWeb, 80) {
					t.Errorf("%s: getpeername() = %s, want %s", who.name, r.Peer, ap(cipWeb, 80))
				}
				hairpin := !socketLB && rep.Name == pod0.Name && rep.Peer == netip.AddrPortFrom(program.DefaultHairpinAddr, r.Local.Port())
				if who.name == "pod" && rep.Peer != r.Local && !hairpin {
					t.Errorf("pod: backend %s saw %s, the client is %s (no SNAT expected)", rep.Name, rep.Peer, r.Local)
				}
			}
			t.Logf("%s: %s", who.name, d)
			requireSpread(t, who.name+" tcp", d, pods, 2)
		}
	})
	t.Run("udp answers come from the service", func(t *testing.T) {
		for _, who := range []struct {
			name string
			cl   *netlab.Client
		}{{"pod", e.pod0}, {"host", e.host}} {
			d := distribution{}
			for range 40 { // 40 over 4 backends: fewer than 2 on one is a ~1e-4 event
				r := must(t, who.cl, netlab.ClientRequest{Op: "udpto", Addr: ap(cipWeb, 53)})
				rep := reply(t, r)
				d[rep.Name]++
				if r.From != ap(cipWeb, 53) {
					t.Errorf("%s: reply from %s, want %s", who.name, r.From, ap(cipWeb, 53))
				}
				c := must(t, who.cl, netlab.ClientRequest{Op: "udp", Addr: ap(cipWeb, 53)})
				reply(t, c)
				if c.Peer != ap(cipWeb, 53) {
					t.Errorf("%s: connected udp peer %s", who.name, c.Peer)
				}
			}
			requireSpread(t, who.name+" udp", d, pods, 2)
		}
	})
	t.Run("affinity holds then expires", func(t *testing.T) {
		var keys []model.BackendKey
		for _, p := range pods {
			keys = append(keys, model.BackendKey{Addr: p.IP, Port: podTCPPort})
		}
		own := func(r netlab.ClientResult) netip.Addr {
			if socketLB {
				return pick(keys, flowhash.Sock(r.Cookie, 80)).Addr
			}
			return pick(keys, flowhash.Flow(r.Local.Addr(), r.Local.Port(), 80, 6)).Addr
		}
		var first string
		differ := 0
		for i := range 16 {
			r := must(t, e.pod0, netlab.ClientRequest{Op: "tcp", Addr: ap(cipSticky, 80)})
			rep := reply(t, r)
			if i == 0 {
				first = rep.Name
			} else if rep.Name != first {
				t.Fatalf("connection %d went to %s, affinity says %s", i, rep.Name, first)
			}
			if own(r) != e.pod(first).IP {
				differ++
			}
		}
		if differ == 0 {
			t.Fatal("every connection's own pick was the affinity backend: proves nothing")
		}
		time.Sleep(2500 * time.Millisecond)
		r := must(t, e.pod0, netlab.ClientRequest{Op: "tcp", Addr: ap(cipSticky, 80)})
		rep := reply(t, r)
		if e.pod(rep.Name).IP != own(r) {
			t.Errorf("after the timeout: %s, the connection's own pick is %s", rep.Name, own(r))
		}
		t.Logf("affinity backend %s (%d of 16 connections would have gone elsewhere); after expiry %s", first, differ, rep.Name)
	})
	t.Run("internalTrafficPolicy=Local", func(t *testing.T) {
		d := distribution{}
		for range 20 {
			rep := reply(t, must(t, e.pod0, netlab.ClientRequest{Op: "tcp", Addr: ap(cipLocal, 80)}))
			d[rep.Name]++
			if e.pod(rep.Name).Node != n1.Node {
				t.Errorf("iTP=Local: reached %s on another node", rep.Name)
			}
		}
		requireSpread(t, "local", d, n1.Pods, 2)
		// Endpoints on node2 only: dropped on node1, no fallback.
		start := time.Now()
		r := must(t, e.pod0, netlab.ClientRequest{Op: "tcp", Addr: ap(cipLocal0, 80), TimeoutMs: 700})
		if r.Err == "" || r.Errno == "ECONNREFUSED" || time.Since(start) < 600*time.Millisecond {
			t.Errorf("iTP=Local without local endpoints: %+v after %v, want a timeout (drop)", r, time.Since(start))
		}
	})
	t.Run("no endpoints: refused immediately", func(t *testing.T) {
		for _, who := range []struct {
			name string
			cl   *netlab.Client
		}{{"pod", e.pod0}, {"host", e.host}} {
			start := time.Now()
			r := must(t, who.cl, netlab.ClientRequest{Op: "tcp", Addr: ap(cipEmpty, 80)})
			el := time.Since(start)
			if r.Errno != "ECONNREFUSED" || el > 500*time.Millisecond {
				t.Errorf("%s tcp: %q (%s) after %v, want ECONNREFUSED at once", who.name, r.Errno, r.Err, el)
			}
			r = must(t, who.cl, netlab.ClientRequest{Op: "udp", Addr: ap(cipEmpty, 53)})
			if r.Errno != "ECONNREFUSED" {
				t.Errorf("%s connected udp: %q (%s), want ECONNREFUSED", who.name, r.Errno, r.Err)
			}
			t.Logf("%s: refused in %v", who.name, el)
		}
	})
	t.Run("hairpin", func(t *testing.T) {
		for range 5 {
			r := must(t, e.pod0, netlab.ClientRequest{Op: "tcp", Addr: ap(cipSelf, 80)})
			rep := reply(t, r)
			if rep.Name != pod0.Name {
				t.Fatalf("reached %s", rep.Name)
			}
			want := r.Local.Addr() // socket level: the pod's own address
			if !socketLB {
				want = program.DefaultHairpinAddr // per packet: the reply must leave the pod
			}
			if rep.Peer.Addr() != want {
				t.Errorf("hairpin: backend saw %s, want %s", rep.Peer, want)
			}
		}
	})
	t.Run("udp flow moves off a removed backend", func(t *testing.T) {
		const lport = 40555
		req := netlab.ClientRequest{Op: "udpto", Addr: ap(cipMove, 53), LocalPort: lport, Keep: true}
		first := reply(t, must(t, e.pod0, req)).Name
		for range 3 {
			if got := reply(t, must(t, e.pod0, req)).Name; got != first {
				t.Fatalf("one flow switched from %s to %s", first, got)
			}
		}
		// Remove the backend (its pod keeps running and answering).
		for i := range e.specs {
			if e.specs[i].name == "move" {
				e.specs[i].backends = slices.DeleteFunc(slices.Clone(e.specs[i].backends), func(p *netlab.Pod) bool { return p.Name == first })
			}
		}
		res := e.apply(t)
		t.Logf("stale UDP entries removed: node1 %d, node2 %d", res[0].StaleUDPFlows, res[1].StaleUDPFlows)
		for range 3 {
			if got := reply(t, must(t, e.pod0, req)).Name; got == first {
				t.Fatalf("the flow still reaches the removed backend %s", first)
			}
		}
	})
	t.Run("latency", func(t *testing.T) {
		const n = 200
		med := func(r netlab.ClientResult) time.Duration {
			if r.Err != "" {
				t.Fatalf("%s", r.Err)
			}
			s := slices.Clone(r.Elapsed)
			slices.Sort(s)
			return s[len(s)/2]
		}
		local, remote := n1.Pods[1], e.nodes[1].Pods[0]
		for round := range 2 {
			dl := med(must(t, e.pod0, netlab.ClientRequest{Op: "tcp", Addr: ap(local.IP, podTCPPort), Count: n}))
			sl := med(must(t, e.pod0, netlab.ClientRequest{Op: "tcp", Addr: ap(cipLatL, 80), Count: n}))
			dr := med(must(t, e.pod0, netlab.ClientRequest{Op: "tcp", Addr: ap(remote.IP, podTCPPort), Count: n}))
			sr := med(must(t, e.pod0, netlab.ClientRequest{Op: "tcp", Addr: ap(cipLatR, 80), Count: n}))
			if round == 1 { // the first round warms up
				t.Logf("connect+first byte, median of %d (socketLB=%v): local backend direct %v, via ClusterIP %v (%+v); remote backend direct %v, via ClusterIP %v (%+v)",
					n, socketLB, dl, sl, sl-dl, dr, sr, sr-dr)
			}
		}
	})
}
