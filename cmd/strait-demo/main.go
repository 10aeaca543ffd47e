// Command strait-demo builds a network-namespace lab (a client, a router,
// two nodes with two backend pods each), runs Strait's datapath on both
// nodes' uplinks, sends real TCP and UDP traffic to a NodePort and to
// LoadBalancer IPs, prints how it spread over the backends, and tears
// everything down. It needs root.
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

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/straitlb/strait/dataplane/datapath"
	"github.com/straitlb/strait/dataplane/loader"
	"github.com/straitlb/strait/internal/netlab"
	"github.com/straitlb/strait/model"
)

var (
	lbWeb = netip.MustParseAddr("203.0.113.10")
	lbDNS = netip.MustParseAddr("203.0.113.53")
)

const (
	nodePort = 30080
	tcpPort  = 8080
	udpPort  = 5353
)

func main() {
	conns := flag.Int("connections", 60, "TCP connections (and UDP requests) per frontend")
	verbose := flag.Bool("v", false, "log the datapath's own messages")
	flag.Parse()
	log := zap.NewNop()
	if *verbose {
		log, _ = zap.NewDevelopment()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, *conns); err != nil {
		fmt.Fprintln(os.Stderr, "strait-demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *zap.Logger, conns int) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces and eBPF)")
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
	for _, n := range topo.Nodes {
		fs := filepath.Join(tmp, n.Name)
		if err := loader.EnsureBPFFS(fs); err != nil {
			return err
		}
		defer unix.Unmount(fs, unix.MNT_DETACH)
		var dp *datapath.Datapath
		err := n.NS.Do(func() error {
			var err error
			dp, err = datapath.Open(log, datapath.Config{PinDir: filepath.Join(fs, "strait"), Devices: []string{n.Uplink}})
			if err != nil {
				return err
			}
			res, err := dp.Apply(nodeState(topo, n))
			if err == nil && len(res.Failed) > 0 {
				err = fmt.Errorf("services not programmed: %v", res.Failed)
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
		defer dp.Close()
		d := dp.Devices()[0]
		fmt.Printf("%s: Strait XDP (%s) and tc egress on %s, SNAT source %s\n", n.Name, d.Mode, d.Name, d.SNATAddr)
	}
	fmt.Println()

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
	refused := netip.AddrPortFrom(netip.MustParseAddr("203.0.113.99"), 80)
	t0 := time.Now()
	_, _, derr := netlab.DialTCP(topo.Client, refused, 2*time.Second)
	fmt.Printf("LoadBalancer %s/TCP with no endpoints: %v after %s\n\n", refused, derr, time.Since(t0).Round(time.Microsecond))
	fmt.Printf("done in %s; tearing the lab down\n", time.Since(start).Round(time.Millisecond))
	return nil
}

func podList(t *netlab.Topology) string {
	var s []string
	for _, p := range t.Pods() {
		s = append(s, p.IP.String())
	}
	return strings.Join(s, " ")
}

// nodeState is what the control plane would compute for node n: every pod
// is a backend of "web"; "dns" has eTP=Local, so only n's own pods.
func nodeState(t *netlab.Topology, n *netlab.Node) model.State {
	var web, dns []model.Backend
	for _, p := range t.Pods() {
		web = append(web, model.Backend{Addr: p.IP, Port: tcpPort, Local: p.Node == n})
		if p.Node == n {
			dns = append(dns, model.Backend{Addr: p.IP, Port: udpPort, Local: true})
		}
	}
	s := model.State{Services: []model.Service{
		{
			Name: model.ServiceName{Namespace: "demo", Name: "web", Port: "http"},
			Frontends: []model.Frontend{
				{Addr: n.IP, Port: nodePort, Proto: model.TCP, Kind: model.NodePort},
				{Addr: lbWeb, Port: 80, Proto: model.TCP, Kind: model.LoadBalancer},
			},
			Backends: web,
		},
		{
			Name:      model.ServiceName{Namespace: "demo", Name: "dns", Port: "dns", Scope: "external"},
			Frontends: []model.Frontend{{Addr: lbDNS, Port: 53, Proto: model.UDP, Kind: model.LoadBalancer}},
			Backends:  dns,
			IfEmpty:   model.Drop,
		},
		{
			Name:      model.ServiceName{Namespace: "demo", Name: "nobody", Port: "http"},
			Frontends: []model.Frontend{{Addr: netip.MustParseAddr("203.0.113.99"), Port: 80, Proto: model.TCP, Kind: model.LoadBalancer}},
		},
	}}
	s.Canonicalize()
	return s
}

// spread sends n requests to addr and prints which backend answered and
// which client address it saw.
func spread(t *netlab.Topology, title string, addr netip.AddrPort, udp bool, n int) error {
	type key struct{ pod, peer string }
	counts := make(map[key]int)
	for i := 0; i < n; i++ {
		var reply string
		var err error
		if udp {
			reply, _, err = netlab.UDPRequest(t.Client, addr, 3*time.Second)
		} else {
			reply, _, err = netlab.DialTCP(t.Client, addr, 3*time.Second)
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
