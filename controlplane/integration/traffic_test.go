package integration

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"

	"github.com/straitlb/strait/controlplane/proxier"
	"github.com/straitlb/strait/controlplane/source"
	"github.com/straitlb/strait/dataplane/datapath"
	"github.com/straitlb/strait/dataplane/loader"
	"github.com/straitlb/strait/dataplane/program"
	"github.com/straitlb/strait/internal/kubetest"
	"github.com/straitlb/strait/internal/netlab"
	"github.com/straitlb/strait/model"
)

// nodeDataplane runs Apply inside the node's namespace, where the
// datapath's devices and neighbours are.
type nodeDataplane struct {
	ns *netlab.NS
	dp *datapath.Datapath
	ch chan struct{}
}

func (n *nodeDataplane) Apply(s model.State) (res program.Result, err error) {
	derr := n.ns.Do(func() error { res, err = n.dp.Apply(s); return nil })
	select {
	case n.ch <- struct{}{}:
	default:
	}
	return res, errors.Join(err, derr)
}

// The agent's control plane, fed by a real kube-apiserver, programs real
// datapaths on two nodes, and real TCP and UDP traffic flows: the same
// objects as the demo's standalone manifests.
func TestPrivilegedAgentTrafficFromAPIServer(t *testing.T) {
	cp := kubetest.Start(t)
	lab := netlab.NewT(t)
	topo, err := netlab.BuildTopology(lab, netlab.TopologyConfig{Nodes: 2, PodsPerNode: 2, VIPMultipath: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := topo.ServeAll(8080, 5353); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"nodes.yaml", "web.yaml", "dns.yaml", "nobody.yaml"} {
		o, err := decodeFile(filepath.Join("..", "..", "examples", "standalone", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := create(context.Background(), cp.Client, o); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, n := range topo.Nodes {
		log := zaptest.NewLogger(t).Named(n.Name)
		fs := filepath.Join(t.TempDir(), "bpffs")
		if err := loader.EnsureBPFFS(fs); err != nil {
			t.Fatal(err)
		}
		var dp *datapath.Datapath
		if err := n.NS.Do(func() (err error) {
			dp, err = datapath.Open(log, datapath.Config{PinDir: filepath.Join(fs, "strait"), Devices: []string{n.Uplink}})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = n.NS.Do(dp.Remove)
			_ = unix.Unmount(fs, unix.MNT_DETACH)
		})
		src, err := source.NewKubernetes(cp.Client, source.KubernetesConfig{NodeName: n.Name}, log)
		if err != nil {
			t.Fatal(err)
		}
		ndp := &nodeDataplane{ns: n.NS, dp: dp, ch: make(chan struct{}, 1)}
		p, err := proxier.New(log, proxier.Config{NodeName: n.Name}, proxier.Deps{Source: src, Dataplane: ndp})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { defer close(done); _ = p.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		select {
		case <-ndp.ch:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no sync", n.Name)
		}
	}

	seen := make(map[string]int)
	for i := range 40 {
		addr := netip.AddrPortFrom(topo.Nodes[i%2].IP, 30080)
		reply, _, err := netlab.DialTCP(topo.Client, addr, 3*time.Second)
		if err != nil {
			t.Fatalf("NodePort %s: %v", addr, err)
		}
		r, err := netlab.ParseReply(reply)
		if err != nil {
			t.Fatal(err)
		}
		seen[r.Name]++
	}
	if len(seen) != 4 {
		t.Errorf("NodePort traffic reached %v, want all 4 pods", seen)
	}
	lb := netip.MustParseAddrPort("203.0.113.53:53")
	for range 10 {
		reply, _, err := netlab.UDPRequest(topo.Client, lb, 3*time.Second)
		if err != nil {
			t.Fatalf("LoadBalancer UDP %s: %v", lb, err)
		}
		r, _ := netlab.ParseReply(reply)
		if r.Peer.Addr() != topo.ClientIP {
			t.Errorf("eTP=Local backend %s saw %s, want the client's own address", r.Name, r.Peer)
		}
	}
	_, _, err = netlab.DialTCP(topo.Client, netip.MustParseAddrPort("203.0.113.99:80"), 2*time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) && (err == nil || !strings.Contains(err.Error(), "refused")) {
		t.Errorf("service without endpoints: %v, want connection refused", err)
	}
	t.Logf("NodePort spread: %v", seen)
}
