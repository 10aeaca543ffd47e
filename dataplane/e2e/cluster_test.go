package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/straitlb/strait/dataplane/lbmap"
	"github.com/straitlb/strait/dataplane/loader"
	"github.com/straitlb/strait/dataplane/loader/loadertest"
	"github.com/straitlb/strait/dataplane/neigh"
	"github.com/straitlb/strait/dataplane/program"
	"github.com/straitlb/strait/internal/netlab"
	"github.com/straitlb/strait/internal/privtest"
	"github.com/straitlb/strait/model"
)

// Ports the pods' servers listen on (netlab's ServeAll).
const (
	podTCPPort = 8080
	podUDPPort = 5353
)

// SNAT port range (program's default).
const snatMin, snatMax = 61000, 65535

// Small maps: two datapaths per test, and the default conntrack alone is
// a million preallocated entries.
var caps = lbmap.Capacities{
	Frontends: 1024, Services: 256, Backends: 1024,
	Conntrack: 1 << 16, Affinity: 1024, SrcRanges: 1024,
}

// Global counters of the datapath (bpf/include/consts.h G_*).
const (
	gPassNotIP = iota
	gPassFragment
	gPassMalformed
	gPassNoFrontend
	gReverseNAT
	gCTHit
	gCTNew
	gFIBNoNeigh
	gFIBFail
	gSNATExhausted
	gCTInsertFail
	gNoIfconfig
	gRejectUnsupported
	gTCReverseNAT
	gSockXlate
	gEWNew
	gEWHit
	gEWReject
	gSockRevNAT
	gMax = 32
)

var counterNames = map[int]string{
	gPassNotIP: "pass_not_ip", gPassFragment: "pass_fragment", gPassMalformed: "pass_malformed",
	gPassNoFrontend: "pass_no_frontend", gReverseNAT: "reverse_nat", gCTHit: "ct_hit", gCTNew: "ct_new",
	gFIBNoNeigh: "fib_no_neigh", gFIBFail: "fib_fail", gSNATExhausted: "snat_exhausted",
	gCTInsertFail: "ct_insert_fail", gNoIfconfig: "no_ifconfig", gRejectUnsupported: "reject_unsupported",
	gTCReverseNAT: "tc_reverse_nat", gSockXlate: "sock_xlate", gEWNew: "ew_new", gEWHit: "ew_hit",
	gEWReject: "ew_reject", gSockRevNAT: "sock_revnat",
}

// failureCounters must stay zero in every test.
var failureCounters = []int{gFIBNoNeigh, gFIBFail, gSNATExhausted, gCTInsertFail, gNoIfconfig, gRejectUnsupported}

// svcSpec is a service as the cluster sees it; stateFor turns it into what
// one node programs.
type svcSpec struct {
	Name     string
	Proto    model.Protocol
	NodePort uint16         // on every node's IP; 0 for none
	VIP      netip.AddrPort // LoadBalancer ingress; invalid for none
	Backends []*netlab.Pod
	// LocalPolicy is externalTrafficPolicy=Local: each node balances only
	// to its own pods, and drops when it has none.
	LocalPolicy bool
}

func (s svcSpec) targetPort() uint16 {
	if s.Proto == model.UDP {
		return podUDPPort
	}
	return podTCPPort
}

// node is one node namespace with its datapath.
type node struct {
	*netlab.Node
	pinDir string
	dp     *loader.Datapath
	prog   *program.Programmer
	neigh  *neigh.Manager
	state  model.State
}

type cluster struct {
	t     *testing.T
	log   *zap.Logger
	topo  *netlab.Topology
	nodes []*node
}

// newCluster builds the topology (2 nodes x 2 pods), starts the pods'
// servers and one datapath per node, and registers the end-of-test checks
// and the cleanup.
func newCluster(t *testing.T, cfg netlab.TopologyConfig) *cluster {
	t.Helper()
	privtest.Require(t)
	lab := netlab.NewT(t)
	topo, err := netlab.BuildTopology(lab, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := topo.ServeAll(podTCPPort, podUDPPort); err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, topo: topo, log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))}
	for _, n := range topo.Nodes {
		c.nodes = append(c.nodes, &node{Node: n, pinDir: loadertest.PinDir(t)})
	}
	// Runs before the pins are unmounted and the lab is shut down.
	t.Cleanup(func() {
		for _, n := range c.nodes {
			if n.dp != nil {
				if err := n.dp.Remove(); err != nil {
					t.Errorf("%s: remove datapath: %v", n.Name, err)
				}
			}
		}
	})
	for _, n := range c.nodes {
		c.start(n)
	}
	// Runs first: while everything still exists.
	t.Cleanup(c.finalChecks)
	return c
}

// start loads the node's datapath (or reloads it over its pins), attaches
// it to the uplink and creates its programmer and neighbour manager. It
// returns the attachments.
func (c *cluster) start(n *node) (xdp, tc loader.Attached) {
	t := c.t
	t.Helper()
	dp, err := loader.Load(c.log.With(zap.String("node", n.Name)), loader.Options{PinDir: n.pinDir, Capacities: caps})
	if err != nil {
		t.Fatalf("%s: %v", n.Name, err)
	}
	n.dp = dp
	// Devices are resolved by name in the calling thread's namespace.
	err = n.NS.Do(func() (err error) {
		if xdp, err = dp.AttachXDP(n.Uplink, true); err != nil {
			return err
		}
		tc, err = dp.AttachTCEgress(n.Uplink)
		return err
	})
	if err != nil {
		t.Fatalf("%s: %v", n.Name, err)
	}
	if xdp.Mode != loader.XDPNative {
		t.Fatalf("%s: XDP attached in %s mode, want native", n.Name, xdp.Mode)
	}
	n.prog, err = program.New(c.log.With(zap.String("node", n.Name)), dp.Maps, program.Config{Capacities: caps})
	if err != nil {
		t.Fatalf("%s: %v", n.Name, err)
	}
	err = n.prog.SetIfaces([]program.Iface{{Index: n.UplinkIndex, SNATAddr: model.BackendKey{Addr: n.IP}}})
	if err != nil {
		t.Fatalf("%s: %v", n.Name, err)
	}
	n.neigh = neigh.New(c.log.With(zap.String("node", n.Name)))
	return xdp, tc
}

// stateFor is the desired state of node n for specs.
func stateFor(n *netlab.Node, specs []svcSpec) model.State {
	var st model.State
	for _, s := range specs {
		svc := model.Service{Name: model.ServiceName{Namespace: "e2e", Name: s.Name, Port: strings.ToLower(s.Proto.String())}}
		if s.NodePort != 0 {
			svc.Frontends = append(svc.Frontends, model.Frontend{Addr: n.IP, Port: s.NodePort, Proto: s.Proto, Kind: model.NodePort})
		}
		if s.VIP.IsValid() {
			svc.Frontends = append(svc.Frontends, model.Frontend{Addr: s.VIP.Addr(), Port: s.VIP.Port(), Proto: s.Proto, Kind: model.LoadBalancer})
		}
		for _, p := range s.Backends {
			local := p.Node == n
			if s.LocalPolicy && !local {
				continue
			}
			svc.Backends = append(svc.Backends, model.Backend{Addr: p.IP, Port: s.targetPort(), Local: local})
		}
		if s.LocalPolicy {
			svc.Name.Scope = "external"
			if len(s.Backends) > 0 {
				svc.IfEmpty = model.Drop // endpoints exist, none here
			}
		}
		st.Services = append(st.Services, svc)
	}
	st.Canonicalize()
	return st
}

// apply programs every node with specs, keeps managed neighbours for the
// next hops of its remote backends (and its default gateway) and waits
// until they are resolved. It returns each node's result.
func (c *cluster) apply(specs ...svcSpec) []program.Result {
	t := c.t
	t.Helper()
	var results []program.Result
	for _, n := range c.nodes {
		n.state = stateFor(n.Node, specs)
		res, err := n.prog.Apply(n.state)
		if err != nil || len(res.Failed) > 0 {
			t.Fatalf("%s: apply: %v (failed: %v)", n.Name, err, res.Failed)
		}
		results = append(results, res)
		c.syncNeigh(n)
	}
	return results
}

// syncNeigh runs the node's neighbour manager inside the node namespace
// for its remote backends and waits until every next hop is resolved.
func (c *cluster) syncNeigh(n *node) {
	t := c.t
	t.Helper()
	var targets []netip.Addr
	for _, s := range n.state.Services {
		for _, b := range s.Backends {
			if !b.Local {
				targets = append(targets, b.Addr)
			}
		}
	}
	if err := n.NS.Do(func() error { return n.neigh.Sync(context.Background(), targets) }); err != nil {
		t.Fatalf("%s: neighbour sync: %v", n.Name, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var ents []neigh.Entry
		if err := n.NS.Do(func() (err error) { ents, err = n.neigh.Entries(); return err }); err != nil {
			t.Fatalf("%s: %v", n.Name, err)
		}
		ok := len(ents) > 0
		for _, e := range ents {
			ok = ok && e.Resolved()
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: next hops not resolved after 5s: %v", n.Name, ents)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// counters sums the node's global counters over CPUs.
func (n *node) counters() ([gMax]uint64, error) {
	var out [gMax]uint64
	m := n.dp.Objects().GlobalStats
	for i := range gMax {
		var per []uint64
		if err := m.Lookup(uint32(i), &per); err != nil {
			return out, fmt.Errorf("read global_stats[%d]: %w", i, err)
		}
		for _, v := range per {
			out[i] += v
		}
	}
	return out, nil
}

// svcStats sums a service's per-verdict counters on the node (lbmap.Stat*
// order), looked up by one of its frontends.
func (n *node) svcStats(fe model.FrontendKey) ([lbmap.StatMax]uint64, error) {
	var out [lbmap.StatMax]uint64
	objs := n.dp.Objects()
	var fv lbmap.FrontendVal
	if err := objs.Frontends.Lookup(lbmap.MakeFrontendKey(fe), &fv); err != nil {
		return out, fmt.Errorf("frontend %s: %w", fe, err)
	}
	for v := range lbmap.StatMax {
		var per []struct{ Packets, Bytes uint64 }
		if err := objs.SvcStats.Lookup(fv.SvcId*lbmap.StatMax+uint32(v), &per); err != nil {
			return out, fmt.Errorf("svc_stats: %w", err)
		}
		for _, p := range per {
			out[v] += p.Packets
		}
	}
	return out, nil
}

func formatCounters(c [gMax]uint64) string {
	var parts []string
	for i, v := range c {
		if v != 0 {
			name := counterNames[i]
			if name == "" {
				name = fmt.Sprint(i)
			}
			parts = append(parts, fmt.Sprintf("%s=%d", name, v))
		}
	}
	return strings.Join(parts, " ")
}

// finalChecks: no checksum error in any namespace, no failure counted by
// any datapath.
func (c *cluster) finalChecks() {
	t := c.t
	bad, err := c.topo.ChecksumErrors()
	if err != nil {
		t.Errorf("read checksum counters: %v", err)
	} else if len(bad) > 0 {
		t.Errorf("checksum errors: %v", bad)
	}
	for _, n := range c.nodes {
		if n.dp == nil {
			continue
		}
		cs, err := n.counters()
		if err != nil {
			t.Errorf("%s: %v", n.Name, err)
			continue
		}
		t.Logf("%s datapath counters: %s", n.Name, formatCounters(cs))
		for _, i := range failureCounters {
			if cs[i] != 0 {
				t.Errorf("%s: datapath counted %s=%d", n.Name, counterNames[i], cs[i])
			}
		}
	}
}

// checkChecksums asserts no checksum error so far (for a mid-test check).
func (c *cluster) checkChecksums() {
	c.t.Helper()
	bad, err := c.topo.ChecksumErrors()
	if err != nil {
		c.t.Fatal(err)
	}
	if len(bad) > 0 {
		c.t.Errorf("checksum errors: %v", bad)
	}
}

// podByName finds a pod.
func (c *cluster) pod(name string) *netlab.Pod {
	for _, p := range c.topo.Pods() {
		if p.Name == name {
			return p
		}
	}
	c.t.Fatalf("no pod %s", name)
	return nil
}

// conn is a TCP connection from the client kept open across steps.
type conn struct {
	c     net.Conn
	r     *bufio.Reader
	local netip.AddrPort
	reply netlab.Reply // the server's greeting: which pod, and the peer it saw
}

// dial connects from the client namespace to addr and reads the greeting.
func (c *cluster) dial(addr netip.AddrPort, timeout time.Duration) (*conn, error) {
	var nc net.Conn
	err := c.topo.Client.Do(func() (err error) {
		d := net.Dialer{Timeout: timeout}
		nc, err = d.Dial("tcp4", addr.String())
		return err
	})
	if err != nil {
		return nil, err
	}
	cn := &conn{c: nc, r: bufio.NewReader(nc)}
	ta := nc.LocalAddr().(*net.TCPAddr).AddrPort()
	cn.local = netip.AddrPortFrom(ta.Addr().Unmap(), ta.Port())
	nc.SetDeadline(time.Now().Add(timeout))
	line, err := cn.r.ReadString('\n')
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("read greeting from %s: %w", addr, err)
	}
	if cn.reply, err = netlab.ParseReply(line); err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return cn, nil
}

// echo sends a line on the connection and expects it back.
func (cn *conn) echo(msg string) error {
	cn.c.SetDeadline(time.Now().Add(3 * time.Second))
	defer cn.c.SetDeadline(time.Time{})
	if _, err := io.WriteString(cn.c, msg+"\n"); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	got, err := cn.r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("read echo: %w", err)
	}
	if got != msg+"\n" {
		return fmt.Errorf("echo %q, want %q", got, msg+"\n")
	}
	return nil
}

// bulk sends n bytes and expects them echoed: full-sized segments, their
// payload in paged fragments, through every translation on the path.
func (cn *conn) bulk(n int) error {
	cn.c.SetDeadline(time.Now().Add(5 * time.Second))
	defer cn.c.SetDeadline(time.Time{})
	out := make([]byte, n)
	for i := range out {
		out[i] = byte(i*7 + i>>8)
	}
	werr := make(chan error, 1)
	go func() { _, err := cn.c.Write(out); werr <- err }()
	in := make([]byte, n)
	if _, err := io.ReadFull(cn.r, in); err != nil {
		return fmt.Errorf("read %d echoed bytes: %w", n, err)
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("write %d bytes: %w", n, err)
	}
	if !bytes.Equal(in, out) {
		return fmt.Errorf("%d echoed bytes differ", n)
	}
	return nil
}

func (cn *conn) Close() error { return cn.c.Close() }

// udpReply is one UDP exchange seen from the client.
type udpReply struct {
	netlab.Reply
	from    netip.AddrPort // source of the reply datagram
	local   netip.AddrPort
	resends int
}

// udpAsk sends a datagram from a fresh, unconnected socket in the client
// namespace (a new source port each time) and returns the first reply with
// the address it came from. It resends every 200ms until timeout.
func (c *cluster) udpAsk(to netip.AddrPort, timeout time.Duration) (udpReply, error) {
	var r udpReply
	var uc *net.UDPConn
	err := c.topo.Client.Do(func() (err error) {
		uc, err = net.ListenUDP("udp4", &net.UDPAddr{})
		return err
	})
	if err != nil {
		return r, err
	}
	defer uc.Close()
	la := uc.LocalAddr().(*net.UDPAddr).AddrPort()
	r.local = netip.AddrPortFrom(c.topo.ClientIP, la.Port())
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 2048)
	for i := 0; time.Now().Before(deadline); i++ {
		if _, err := uc.WriteToUDPAddrPort([]byte("e2e"), to); err != nil {
			return r, err
		}
		r.resends = i
		uc.SetReadDeadline(earliest(deadline, time.Now().Add(200*time.Millisecond)))
		n, from, err := uc.ReadFromUDPAddrPort(buf)
		if err == nil {
			r.from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
			r.Reply, err = netlab.ParseReply(string(buf[:n]))
			return r, err
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return r, err
		}
	}
	return r, fmt.Errorf("udp to %s: no reply in %s", to, timeout)
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// distribution counts hits per pod name.
type distribution map[string]int

func (d distribution) String() string {
	names := make([]string, 0, len(d))
	for n := range d {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s=%d", n, d[n]))
	}
	return strings.Join(parts, " ")
}

// requireSpread asserts every pod got at least min hits.
func requireSpread(t *testing.T, what string, d distribution, pods []*netlab.Pod, least int) {
	t.Helper()
	t.Logf("%s: %s", what, d)
	for _, p := range pods {
		if d[p.Name] < least {
			t.Errorf("%s: backend %s got %d of the flows, want at least %d (%s)", what, p.Name, d[p.Name], least, d)
		}
	}
	for name := range d {
		if !slices.ContainsFunc(pods, func(p *netlab.Pod) bool { return p.Name == name }) {
			t.Errorf("%s: reached %s, which is not a backend", what, name)
		}
	}
}
