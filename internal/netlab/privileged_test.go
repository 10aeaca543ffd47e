package netlab_test

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/straitlb/strait/internal/netlab"
)

const (
	tcpPort = 8080
	udpPort = 5353
	timeout = 3 * time.Second
)

func buildTopology(t *testing.T, lab *netlab.Lab, cfg netlab.TopologyConfig) *netlab.Topology {
	t.Helper()
	start := time.Now()
	topo, err := netlab.BuildTopology(lab, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := topo.ServeAll(tcpPort, udpPort); err != nil {
		t.Fatal(err)
	}
	t.Logf("lab %s: topology built in %v", lab.Prefix(), time.Since(start).Round(time.Millisecond))
	return topo
}

// checkRequest sends one TCP and one UDP request from ns to p and checks the
// reply names p and shows the source address wantSrc unchanged.
func checkRequest(t *testing.T, from *netlab.NS, p *netlab.Pod, wantSrc netip.Addr) {
	t.Helper()
	reply, local, err := netlab.DialTCP(from, netip.AddrPortFrom(p.IP, tcpPort), timeout)
	if err != nil {
		t.Fatal(err)
	}
	checkReply(t, "tcp", reply, p.Name, local, wantSrc)
	peers, _ := p.TCP.Peers()
	if len(peers) == 0 || peers[len(peers)-1] != local {
		t.Errorf("tcp server %s saw peers %v, want last %v", p.Name, peers, local)
	}
	reply, local, err = netlab.UDPRequest(from, netip.AddrPortFrom(p.IP, udpPort), timeout)
	if err != nil {
		t.Fatal(err)
	}
	checkReply(t, "udp", reply, p.Name, local, wantSrc)
}

func checkReply(t *testing.T, proto, reply, wantName string, local netip.AddrPort, wantSrc netip.Addr) {
	t.Helper()
	r, err := netlab.ParseReply(reply)
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != wantName {
		t.Errorf("%s reply from %q, want %q", proto, r.Name, wantName)
	}
	if r.Peer != local || local.Addr() != wantSrc {
		t.Errorf("%s: server saw client %v, client is %v, want source %v preserved", proto, r.Peer, local, wantSrc)
	}
}

func TestPrivilegedTopologyRouting(t *testing.T) {
	lab := netlab.NewT(t)
	topo := buildTopology(t, lab, netlab.TopologyConfig{})
	if len(topo.Nodes) != 2 || len(topo.Pods()) != 4 {
		t.Fatalf("got %d nodes and %d pods, want 2 and 4", len(topo.Nodes), len(topo.Pods()))
	}

	for _, p := range topo.Pods() {
		checkRequest(t, topo.Client, p, topo.ClientIP)
	}
	// Pod to pod across nodes (node1 -> node2 pod CIDR route), node to pod.
	from, to := topo.Nodes[0].Pods[0], topo.Nodes[1].Pods[1]
	checkRequest(t, from.NS, to, from.IP)
	checkRequest(t, topo.Nodes[1].NS, topo.Nodes[0].Pods[1], topo.Nodes[1].IP)

	bad, err := topo.ChecksumErrors()
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Errorf("checksum errors: %v", bad)
	}

	// Tx checksum offload is off on every veth end.
	_, ethtoolErr := exec.LookPath("ethtool")
	for _, v := range topo.Veths() {
		on, err := v.NS.TxChecksum(v.Name)
		if err != nil {
			t.Fatal(err)
		}
		if on {
			t.Errorf("tx checksum offload on for %s in %s", v.Name, v.NS)
		}
		if ethtoolErr == nil {
			out, err := v.NS.Run("ethtool", "-k", v.Name)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "tx-checksumming: off") {
				t.Errorf("ethtool -k %s in %s: tx-checksumming is not off:\n%s", v.Name, v.NS, out)
			}
		}
	}

	for _, n := range topo.Nodes {
		// XDP_PASS sits on the router-side peer of every node uplink.
		lk, err := topo.Router.Link(n.RouterPort)
		if err != nil {
			t.Fatal(err)
		}
		if x := lk.Attrs().Xdp; x == nil || !x.Attached {
			t.Errorf("no XDP program on router port %s", n.RouterPort)
		}
		if lk.Attrs().Index != n.RouterPortIndex {
			t.Errorf("router port %s index %d, recorded %d", n.RouterPort, lk.Attrs().Index, n.RouterPortIndex)
		}
		// The node resolved the router to the bridge's MAC.
		neighs, err := n.NS.Netlink().NeighList(n.UplinkIndex, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, ne := range neighs {
			if ne.IP.Equal(topo.RouterIP.AsSlice()) {
				found = true
				if ne.HardwareAddr.String() != topo.RouterBridgeMAC.String() {
					t.Errorf("%s resolved %v to %v, RouterBridgeMAC is %v", n.Name, topo.RouterIP, ne.HardwareAddr, topo.RouterBridgeMAC)
				}
			}
		}
		if !found {
			t.Errorf("%s has no neighbour entry for %v", n.Name, topo.RouterIP)
		}
	}

	// The VIP range is routed to node1.
	out, err := topo.Router.Run("ip", "route", "get", "203.0.113.7")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "via 192.0.2.11") {
		t.Errorf("router: route to a VIP is %q, want via 192.0.2.11", out)
	}
}

func TestPrivilegedChecksumErrorsAreCounted(t *testing.T) {
	lab := netlab.NewT(t)
	topo := buildTopology(t, lab, netlab.TopologyConfig{Nodes: 1, PodsPerNode: 1})
	pod := topo.Pods()[0]

	// A UDP datagram with a wrong checksum, forwarded by router and node,
	// must be caught by the pod: the counters are live.
	payload := []byte("corrupt")
	udp := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(udp[0:], 40000)
	binary.BigEndian.PutUint16(udp[2:], udpPort)
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	copy(udp[8:], payload)
	sum := udpChecksum(topo.ClientIP, pod.IP, udp)
	bad := sum ^ 0x5555
	binary.BigEndian.PutUint16(udp[6:], bad)
	err := topo.Client.Do(func() error {
		c, err := net.DialIP("ip4:udp", nil, &net.IPAddr{IP: pod.IP.AsSlice()})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(udp)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	for {
		c, err := pod.NS.ChecksumErrors()
		if err != nil {
			t.Fatal(err)
		}
		if c.UDP == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod UdpInCsumErrors = %d after a corrupted datagram, want 1", c.UDP)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Only the pod counted it, and a good request still works.
	checkRequest(t, topo.Client, pod, topo.ClientIP)
	errs, err := topo.ChecksumErrors()
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != 1 || errs[pod.Name] != (netlab.ChecksumErrors{UDP: 1}) {
		t.Errorf("checksum errors %v, want only %s UDP=1", errs, pod.Name)
	}
}

// udpChecksum is the RFC 768 checksum over the IPv4 pseudo-header and udp
// (whose checksum field is zero).
func udpChecksum(src, dst netip.Addr, udp []byte) uint16 {
	s4, d4 := src.As4(), dst.As4()
	b := append(append(append([]byte{}, s4[:]...), d4[:]...), 0, 17, byte(len(udp)>>8), byte(len(udp)))
	b = append(b, udp...)
	if len(b)%2 == 1 {
		b = append(b, 0)
	}
	var s uint32
	for i := 0; i < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	c := ^uint16(s)
	if c == 0 {
		c = 0xffff
	}
	return c
}

func TestPrivilegedCloseRemovesEverything(t *testing.T) {
	netlab.RequirePrivileged(t)
	lab, err := netlab.New("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close) // in case of an early failure
	topo := buildTopology(t, lab, netlab.TopologyConfig{Nodes: 2, PodsPerNode: 1, VIPMultipath: true})
	prefix := lab.Prefix() + "-"
	out, err := topo.Router.Run("ip", "route", "show", topo.VIPRange.String())
	if err != nil || !strings.Contains(out, "nexthop via 192.0.2.11") || !strings.Contains(out, "nexthop via 192.0.2.12") {
		t.Errorf("router VIP route with VIPMultipath: %q, %v", out, err)
	}
	proc, err := topo.Nodes[0].NS.Spawn(exec.Command("sleep", "60"))
	if err != nil {
		t.Fatal(err)
	}
	if out := run(t, "ip", "netns", "list"); !strings.Contains(out, prefix) {
		t.Fatalf("ip netns list does not show %s:\n%s", prefix, out)
	}
	// Keep a namespace alive past Close to check its links were deleted.
	h, err := netns.GetFromPath(topo.Router.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	if err := lab.Shutdown(); err != nil {
		t.Fatal(err)
	}
	lab.Close() // idempotent

	if err := proc.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("spawned process: Wait = %v, want killed", err)
	}
	if out := run(t, "ip", "netns", "list"); strings.Contains(out, prefix) {
		t.Errorf("ip netns list still shows %s:\n%s", prefix, out)
	}
	if out := run(t, "ip", "-o", "link", "show"); strings.Contains(out, prefix) {
		t.Errorf("ip link still shows %s:\n%s", prefix, out)
	}
	ents, _ := os.ReadDir("/var/run/netns")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			t.Errorf("/var/run/netns/%s is left", e.Name())
		}
	}
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	links, err := nh.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, lk := range links {
		if lk.Attrs().Name != "lo" {
			t.Errorf("link %s is left in the closed router namespace", lk.Attrs().Name)
		}
	}
	// A shut-down lab refuses work instead of falling back to the caller's
	// namespace.
	if _, err := lab.AddNS("late"); !errors.Is(err, netlab.ErrClosed) {
		t.Errorf("AddNS after Close: %v, want ErrClosed", err)
	}
	if err := topo.Router.AddBridge(lab.Name("late")); !errors.Is(err, netlab.ErrClosed) {
		t.Errorf("AddBridge after Close: %v, want ErrClosed", err)
	}
	if err := topo.Router.Do(func() error { return nil }); !errors.Is(err, netlab.ErrClosed) {
		t.Errorf("Do after Close: %v, want ErrClosed", err)
	}
	if out := run(t, "ip", "-o", "link", "show"); strings.Contains(out, prefix) {
		t.Errorf("ip link shows %s after use of a closed lab:\n%s", prefix, out)
	}
}

func TestPrivilegedParallelLabsDoNotCollide(t *testing.T) {
	a, b := netlab.NewT(t), netlab.NewT(t)
	if a.Prefix() == b.Prefix() {
		t.Fatalf("two labs share prefix %s", a.Prefix())
	}
	ta := buildTopology(t, a, netlab.TopologyConfig{Nodes: 1, PodsPerNode: 1})
	tb := buildTopology(t, b, netlab.TopologyConfig{Nodes: 1, PodsPerNode: 1})
	// Same addresses in both labs, separate namespaces.
	checkRequest(t, ta.Client, ta.Pods()[0], ta.ClientIP)
	checkRequest(t, tb.Client, tb.Pods()[0], tb.ClientIP)
	b.Close()
	checkRequest(t, ta.Client, ta.Pods()[0], ta.ClientIP)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// reflectProgram is XDP that answers UDP to port 9999 by swapping MACs, IPs
// and ports and returning XDP_TX (checksums stay valid: the sums commute).
func reflectProgram(t *testing.T) *ebpf.Program {
	t.Helper()
	const pass = "pass"
	swap := func(off1, off2 int16, size asm.Size) asm.Instructions {
		return asm.Instructions{
			asm.LoadMem(asm.R5, asm.R2, off1, size),
			asm.LoadMem(asm.R6, asm.R2, off2, size),
			asm.StoreMem(asm.R2, off1, asm.R6, size),
			asm.StoreMem(asm.R2, off2, asm.R5, size),
		}
	}
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word), // data
		asm.LoadMem(asm.R3, asm.R1, 4, asm.Word), // data_end
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 42), // eth + ip (no options) + udp
		asm.JGT.Reg(asm.R4, asm.R3, pass),
		asm.LoadMem(asm.R5, asm.R2, 12, asm.Half),
		asm.JNE.Imm(asm.R5, 0x0008, pass), // ETH_P_IP, big endian
		asm.LoadMem(asm.R5, asm.R2, 14, asm.Byte),
		asm.JNE.Imm(asm.R5, 0x45, pass),
		asm.LoadMem(asm.R5, asm.R2, 23, asm.Byte),
		asm.JNE.Imm(asm.R5, 17, pass),
		asm.LoadMem(asm.R5, asm.R2, 36, asm.Half),
		asm.JNE.Imm(asm.R5, 0x0f27, pass), // port 9999, big endian
	}
	insns = append(insns, swap(0, 6, asm.Word)...)
	insns = append(insns, swap(4, 10, asm.Half)...)
	insns = append(insns, swap(26, 30, asm.Word)...)
	insns = append(insns, swap(34, 36, asm.Half)...)
	insns = append(insns,
		asm.Mov.Imm(asm.R0, 3), // XDP_TX
		asm.Return(),
		asm.Mov.Imm(asm.R0, 2).WithSymbol(pass), // XDP_PASS
		asm.Return(),
	)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, Instructions: insns, License: "GPL"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	return prog
}

func TestPrivilegedXDPTxFromNodeUplinkIsDelivered(t *testing.T) {
	lab := netlab.NewT(t)
	topo := buildTopology(t, lab, netlab.TopologyConfig{Nodes: 1, PodsPerNode: 1})
	node := topo.Nodes[0]
	if _, err := node.NS.AttachXDP(node.Uplink, reflectProgram(t), link.XDPDriverMode); err != nil {
		t.Fatal(err)
	}
	target := netip.AddrPortFrom(node.IP, 9999)
	reply, local, err := netlab.UDPRequest(topo.Client, target, timeout)
	if err != nil {
		t.Fatal(err)
	}
	if reply != "netlab-probe" || local.Addr() != topo.ClientIP {
		t.Errorf("reflected %q to %v, want the probe back at %v", reply, local, topo.ClientIP)
	}
	bad, err := topo.ChecksumErrors()
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Errorf("checksum errors: %v", bad)
	}
}
