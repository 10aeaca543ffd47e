// Command strait-demo builds a network-namespace lab (a client, a router,
// two nodes with two backend pods each), runs strait-agent in standalone
// mode on both nodes (reading examples/standalone), sends real TCP and UDP
// traffic to a NodePort, LoadBalancer IPs and a ClusterIP, prints how it
// spread over the backends, and tears everything down. It needs root.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/straitlb/strait/internal/frrlab"
	"github.com/straitlb/strait/internal/netlab"
)

var (
	lbWeb      = netip.MustParseAddr("203.0.113.10")
	lbDNS      = netip.MustParseAddr("203.0.113.53")
	clusterWeb = netip.MustParseAddr("198.19.0.10")
)

const (
	nodePort = 30080
	tcpPort  = 8080
	udpPort  = 5353
)

func main() {
	conns := flag.Int("connections", 60, "TCP connections (and UDP requests) per frontend")
	agent := flag.String("agent", "", "strait-agent binary (default: next to this program)")
	dir := flag.String("manifests", "examples/standalone", "standalone manifests the agents read")
	flag.Parse()
	if *agent == "" {
		self, _ := os.Executable()
		*agent = filepath.Join(filepath.Dir(self), "strait-agent")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *agent, *dir, *conns); err != nil {
		fmt.Fprintln(os.Stderr, "strait-demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, agentBin, manifests string, conns int) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces and eBPF)")
	}
	if _, err := os.Stat(agentBin); err != nil {
		return fmt.Errorf("agent binary: %w (build it with make demo or go build -o bin/ ./cmd/...)", err)
	}
	if manifests, err = filepath.Abs(manifests); err != nil {
		return err
	}
	start := time.Now()
	lab, err := netlab.New("sd")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, lab.Shutdown()) }()
	topo, err := netlab.BuildTopology(lab, netlab.TopologyConfig{Nodes: 2, PodsPerNode: 2, VIPMultipath: true})
	if err != nil {
		return err
	}
	if err := topo.ServeAll(tcpPort, udpPort); err != nil {
		return err
	}
	fmt.Printf("lab %s: client %s, router %s, nodes %s and %s, pods %s\n\n", lab.Prefix(), topo.ClientIP, topo.RouterIP,
		topo.Nodes[0].IP, topo.Nodes[1].IP, podList(topo))

	tmp, err := os.MkdirTemp("", "strait-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var agents []*agentProc
	defer func() {
		for _, a := range agents {
			a.stop()
		}
	}()
	// The router becomes a BGP top-of-rack: it forgets the lab's static
	// route to the LoadBalancer range and learns it from the agents.
	if out, err := topo.Router.Run("ip", "route", "del", topo.VIPRange.String()); err != nil {
		return fmt.Errorf("remove static VIP route: %v: %s", err, out)
	}
	tor, err := frrlab.Start(topo.Router, frrlab.Config{ASN: 65000, RouterID: topo.RouterIP, Neighbors: []frrlab.Neighbor{
		{Addr: topo.Nodes[0].IP, ASN: 64512}, {Addr: topo.Nodes[1].IP, ASN: 64512}}})
	if err != nil {
		return err
	}
	defer tor.Close()
	for _, n := range topo.Nodes {
		a, err := startAgent(n, agentBin, manifests, tmp, lab.Prefix())
		if err != nil {
			return err
		}
		agents = append(agents, a)
	}
	if err := waitProgrammed(ctx, topo, 20*time.Second); err != nil {
		for _, a := range agents {
			a.printLog(30)
		}
		return err
	}
	for _, a := range agents {
		fmt.Printf("%s: strait-agent --standalone %s (pid %d)\n", a.node.Name, manifests, a.cmd.Process.Pid)
		a.printLog(5, "device decision", "datapath attached", "standalone mode", "BGP speaker started")
	}
	fmt.Println()
	// Routes learned over BGP: each LoadBalancer IP via both nodes (ECMP).
	out, err := tor.WaitFor("show ip route bgp", 30*time.Second,
		"203.0.113.10/32", "203.0.113.53/32", topo.Nodes[0].IP.String(), topo.Nodes[1].IP.String())
	if err != nil {
		return fmt.Errorf("router did not learn the LoadBalancer IPs: %w\n%s", err, out)
	}
	fmt.Printf("router (FRR, AS 65000) learned over BGP:\n%s\n", indent(out))
	if st, err := agentStatus(topo.Nodes[0]); err == nil {
		fmt.Printf("node1 agent status (what `strait status` shows):\n%s\n", st)
	} else {
		fmt.Printf("node1 agent status: %v\n\n", err)
	}

	targets := []struct {
		title string
		addr  netip.AddrPort
		udp   bool
	}{
		{"NodePort " + netip.AddrPortFrom(topo.Nodes[0].IP, nodePort).String() + "/TCP (eTP=Cluster)", netip.AddrPortFrom(topo.Nodes[0].IP, nodePort), false},
		{"LoadBalancer " + netip.AddrPortFrom(lbWeb, 80).String() + "/TCP (eTP=Cluster)", netip.AddrPortFrom(lbWeb, 80), false},
		{"LoadBalancer " + netip.AddrPortFrom(lbDNS, 53).String() + "/UDP (eTP=Local)", netip.AddrPortFrom(lbDNS, 53), true},
	}
	for _, tg := range targets {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := spread(topo, tg.title, tg.addr, tg.udp, conns); err != nil {
			return err
		}
	}
	pod := topo.Nodes[0].Pods[0]
	if err := spreadFrom(topo, pod.NS, "ClusterIP 198.19.0.10:80/TCP from pod "+pod.Name+" (east-west, tc path)",
		netip.AddrPortFrom(clusterWeb, 80), false, conns); err != nil {
		return err
	}
	refused := netip.AddrPortFrom(topo.Nodes[0].IP, 30099)
	t0 := time.Now()
	_, _, derr := netlab.DialTCP(topo.Client, refused, 2*time.Second)
	fmt.Printf("NodePort %s/TCP of a service with no endpoints (its LoadBalancer IP is not announced): %v after %s\n\n",
		refused, derr, time.Since(t0).Round(time.Microsecond))
	fmt.Printf("done in %s; tearing the lab down\n", time.Since(start).Round(time.Millisecond))
	return nil
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if strings.HasPrefix(l, "B") {
			b.WriteString("  " + l + "\n")
		} else if strings.HasPrefix(strings.TrimSpace(l), "*") {
			b.WriteString("  " + l + "\n")
		}
	}
	return b.String()
}

func podList(t *netlab.Topology) string {
	var s []string
	for _, p := range t.Pods() {
		s = append(s, p.IP.String())
	}
	return strings.Join(s, " ")
}

// spread sends n requests to addr and prints which backend answered and
// which client address it saw.
func spread(t *netlab.Topology, title string, addr netip.AddrPort, udp bool, n int) error {
	return spreadFrom(t, t.Client, title, addr, udp, n)
}

// spreadFrom is spread with the requests sent from ns.
func spreadFrom(t *netlab.Topology, ns *netlab.NS, title string, addr netip.AddrPort, udp bool, n int) error {
	type key struct{ pod, peer string }
	counts := make(map[key]int)
	for i := 0; i < n; i++ {
		var reply string
		var err error
		if udp {
			reply, _, err = netlab.UDPRequest(ns, addr, 3*time.Second)
		} else {
			reply, _, err = netlab.DialTCP(ns, addr, 3*time.Second)
		}
		if err != nil {
			return fmt.Errorf("%s: request %d: %w", title, i, err)
		}
		r, err := netlab.ParseReply(reply)
		if err != nil {
			return err
		}
		counts[key{r.Name, r.Peer.Addr().String()}]++
	}
	fmt.Println(title)
	keys := make([]key, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].pod < keys[j].pod })
	for _, k := range keys {
		c := counts[k]
		fmt.Printf("  %-12s %3d %-40s backend saw client %s\n", k.pod, c, strings.Repeat("#", c*40/n), k.peer)
	}
	fmt.Println()
	return nil
}
