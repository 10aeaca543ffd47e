package netlab

import (
	"fmt"
	"net"
	"net/netip"
)

// TopologyConfig sizes the Strait datapath topology (see the package doc for
// the address plan).
type TopologyConfig struct {
	Nodes        int  // node namespaces, 1-9 (default 2)
	PodsPerNode  int  // pod namespaces per node, 1-99 (default 2)
	VIPMultipath bool // route the VIP range over every node (ECMP) instead of node1 only
}

// Topology is the built lab: client - router - nodes - pods.
type Topology struct {
	Lab *Lab

	Client        *NS
	ClientIP      netip.Addr // 198.51.100.10
	ClientDev     string     // client's link to the router
	ClientGateway netip.Addr // 198.51.100.1, on the router

	Router          *NS
	RouterClientDev string     // router's link to the client
	RouterIP        netip.Addr // 192.0.2.1, on the bridge
	RouterBridge    string
	RouterBridgeMAC net.HardwareAddr // what nodes resolve 192.0.2.1 to

	VIPRange netip.Prefix // 203.0.113.0/24, routed to the nodes
	Nodes    []*Node

	veths []Iface
}

// Node is one node namespace.
type Node struct {
	Name            string // "node1"
	NS              *NS
	IP              netip.Addr // 192.0.2.(10+i)
	Uplink          string     // the node's "eth0", towards the router
	UplinkIndex     int
	UplinkMAC       net.HardwareAddr
	RouterPort      string // uplink's peer, a port of the router's bridge (XDP_PASS attached)
	RouterPortIndex int    // ifindex in the router namespace
	PodCIDR         netip.Prefix
	PodGateway      netip.Addr // 198.18.i.1, on every pod veth of the node
	Pods            []*Pod
}

// Pod is one backend namespace behind a node.
type Pod struct {
	Name          string // "node1-pod0", also the name its servers answer with
	Node          *Node
	NS            *NS
	IP            netip.Addr // 198.18.i.(10+j)
	Dev           string     // pod side of the veth
	DevIndex      int
	HostVeth      string // node side of the veth
	HostVethIndex int    // ifindex in the node namespace
	HostVethMAC   net.HardwareAddr
	TCP           *TCPServer // set by ServeAll
	UDP           *UDPServer // set by ServeAll
}

// Iface names a link inside a namespace.
type Iface struct {
	NS   *NS
	Name string
}

// NodeIP returns node i's address, 192.0.2.(10+i) (i counts from 1).
func NodeIP(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)}) }

// PodCIDR returns node i's pod range, 198.18.i.0/24.
func PodCIDR(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i), 0}), 24)
}

// PodIP returns the address of pod j (from 0) on node i, 198.18.i.(10+j).
func PodIP(i, j int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, byte(i), byte(10 + j)}) }

// BuildTopology creates the Strait datapath topology in l. On error, what
// was built stays in the lab and goes away with it.
func BuildTopology(l *Lab, cfg TopologyConfig) (*Topology, error) {
	if cfg.Nodes == 0 {
		cfg.Nodes = 2
	}
	if cfg.PodsPerNode == 0 {
		cfg.PodsPerNode = 2
	}
	if cfg.Nodes < 1 || cfg.Nodes > 9 || cfg.PodsPerNode < 1 || cfg.PodsPerNode > 99 {
		return nil, fmt.Errorf("build topology: %d nodes x %d pods: want 1-9 nodes and 1-99 pods per node", cfg.Nodes, cfg.PodsPerNode)
	}
	t := &Topology{
		Lab:             l,
		ClientIP:        netip.MustParseAddr("198.51.100.10"),
		ClientGateway:   netip.MustParseAddr("198.51.100.1"),
		ClientDev:       l.Name("cl"),
		RouterClientDev: l.Name("rcl"),
		RouterIP:        netip.MustParseAddr("192.0.2.1"),
		RouterBridge:    l.Name("br"),
		VIPRange:        netip.MustParsePrefix("203.0.113.0/24"),
	}
	if err := t.build(cfg); err != nil {
		return nil, fmt.Errorf("build topology %s: %w", l.Prefix(), err)
	}
	return t, nil
}

func (t *Topology) build(cfg TopologyConfig) error {
	var err error
	if t.Client, err = t.addNS("client"); err != nil {
		return err
	}
	if t.Router, err = t.addNS("router"); err != nil {
		return err
	}
	err = t.veth(
		VethEnd{NS: t.Client, Name: t.ClientDev, Addr: netip.PrefixFrom(t.ClientIP, 24)},
		VethEnd{NS: t.Router, Name: t.RouterClientDev, Addr: netip.PrefixFrom(t.ClientGateway, 24)})
	if err != nil {
		return err
	}
	if err := t.Client.AddRoute(DefaultRoute(), t.ClientGateway, ""); err != nil {
		return err
	}
	r := t.Router
	for _, kv := range [][2]string{
		{"net.ipv4.ip_forward", "1"},
		{"net.ipv4.conf.all.send_redirects", "0"},
		{"net.ipv4.conf.default.send_redirects", "0"},
	} {
		if err := r.SetSysctl(kv[0], kv[1]); err != nil {
			return err
		}
	}
	if err := r.AddBridge(t.RouterBridge); err != nil {
		return err
	}
	if err := r.AddAddr(t.RouterBridge, netip.PrefixFrom(t.RouterIP, 24)); err != nil {
		return err
	}
	for i := 1; i <= cfg.Nodes; i++ {
		if err := t.addNode(i, cfg.PodsPerNode); err != nil {
			return err
		}
	}
	// Routes between nodes' pod ranges, and from the router to them.
	var nodeIPs []netip.Addr
	for _, n := range t.Nodes {
		nodeIPs = append(nodeIPs, n.IP)
		if err := r.AddRoute(n.PodCIDR, n.IP, ""); err != nil {
			return err
		}
		for _, o := range t.Nodes {
			if o != n {
				if err := n.NS.AddRoute(o.PodCIDR, o.IP, ""); err != nil {
					return err
				}
			}
		}
	}
	if cfg.VIPMultipath && len(nodeIPs) > 1 {
		err = r.AddMultipathRoute(t.VIPRange, nodeIPs...)
	} else {
		err = r.AddRoute(t.VIPRange, nodeIPs[0], "")
	}
	if err != nil {
		return err
	}
	for _, v := range t.veths {
		if err := v.NS.DisableTxChecksum(v.Name); err != nil {
			return err
		}
	}
	for _, n := range t.Nodes {
		if _, err := r.AttachXDPPass(n.RouterPort); err != nil {
			return err
		}
	}
	t.RouterBridgeMAC, err = r.HardwareAddr(t.RouterBridge)
	return err
}

func (t *Topology) addNode(i, pods int) error {
	l, r := t.Lab, t.Router
	n := &Node{
		Name:       fmt.Sprintf("node%d", i),
		IP:         NodeIP(i),
		Uplink:     l.Name(fmt.Sprintf("n%d", i)),
		RouterPort: l.Name(fmt.Sprintf("r%d", i)),
		PodCIDR:    PodCIDR(i),
		PodGateway: netip.AddrFrom4([4]byte{198, 18, byte(i), 1}),
	}
	var err error
	if n.NS, err = t.addNS(n.Name); err != nil {
		return err
	}
	t.Nodes = append(t.Nodes, n)
	err = t.veth(
		VethEnd{NS: n.NS, Name: n.Uplink, Addr: netip.PrefixFrom(n.IP, 24)},
		VethEnd{NS: r, Name: n.RouterPort})
	if err != nil {
		return err
	}
	if err := r.SetMaster(n.RouterPort, t.RouterBridge); err != nil {
		return err
	}
	if err := n.NS.EnableForwarding(); err != nil {
		return err
	}
	if err := n.NS.AddRoute(DefaultRoute(), t.RouterIP, ""); err != nil {
		return err
	}
	if n.UplinkIndex, err = n.NS.LinkIndex(n.Uplink); err != nil {
		return err
	}
	if n.UplinkMAC, err = n.NS.HardwareAddr(n.Uplink); err != nil {
		return err
	}
	if n.RouterPortIndex, err = r.LinkIndex(n.RouterPort); err != nil {
		return err
	}
	for j := range pods {
		if err := t.addPod(n, i, j); err != nil {
			return err
		}
	}
	return nil
}

func (t *Topology) addPod(n *Node, i, j int) error {
	l := t.Lab
	p := &Pod{
		Name:     fmt.Sprintf("%s-pod%d", n.Name, j),
		Node:     n,
		IP:       PodIP(i, j),
		Dev:      l.Name(fmt.Sprintf("p%d-%d", i, j)),
		HostVeth: l.Name(fmt.Sprintf("v%d-%d", i, j)),
	}
	var err error
	if p.NS, err = t.addNS(p.Name); err != nil {
		return err
	}
	n.Pods = append(n.Pods, p)
	if err := t.veth(VethEnd{NS: p.NS, Name: p.Dev}, VethEnd{NS: n.NS, Name: p.HostVeth}); err != nil {
		return err
	}
	podNet, gwNet := netip.PrefixFrom(p.IP, 32), netip.PrefixFrom(n.PodGateway, 32)
	if err := p.NS.AddPeerAddr(p.Dev, podNet, gwNet); err != nil {
		return err
	}
	if err := p.NS.AddRoute(DefaultRoute(), n.PodGateway, p.Dev); err != nil {
		return err
	}
	if err := n.NS.AddPeerAddr(p.HostVeth, gwNet, podNet); err != nil {
		return err
	}
	if p.DevIndex, err = p.NS.LinkIndex(p.Dev); err != nil {
		return err
	}
	if p.HostVethIndex, err = n.NS.LinkIndex(p.HostVeth); err != nil {
		return err
	}
	p.HostVethMAC, err = n.NS.HardwareAddr(p.HostVeth)
	return err
}

// DefaultRoute is 0.0.0.0/0, for NS.AddRoute.
func DefaultRoute() netip.Prefix { return netip.PrefixFrom(netip.IPv4Unspecified(), 0) }

// addNS creates a namespace with rp_filter explicitly off.
func (t *Topology) addNS(name string) (*NS, error) { return t.Lab.AddNSNoRPFilter(name) }

// AddNSNoRPFilter creates a namespace with reverse-path filtering off, as
// a router or host of an asymmetric lab needs.
func (l *Lab) AddNSNoRPFilter(name string) (*NS, error) {
	ns, err := l.AddNS(name)
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"} {
		if err := ns.SetSysctl(k, "0"); err != nil {
			return nil, err
		}
	}
	return ns, nil
}

// veth creates a pair and remembers both ends for tx checksum offload.
func (t *Topology) veth(a, b VethEnd) error {
	if err := t.Lab.AddVeth(a, b); err != nil {
		return err
	}
	t.veths = append(t.veths, Iface{a.NS, a.Name}, Iface{b.NS, b.Name})
	return nil
}

// Veths returns both ends of every veth of the topology.
func (t *Topology) Veths() []Iface { return append([]Iface(nil), t.veths...) }

// Pods returns every pod, node by node.
func (t *Topology) Pods() []*Pod {
	var ps []*Pod
	for _, n := range t.Nodes {
		ps = append(ps, n.Pods...)
	}
	return ps
}

// Namespaces returns every namespace of the topology by short name
// ("client", "router", "node1", "node1-pod0", ...).
func (t *Topology) Namespaces() map[string]*NS {
	m := map[string]*NS{"client": t.Client, "router": t.Router}
	for _, n := range t.Nodes {
		m[n.Name] = n.NS
		for _, p := range n.Pods {
			m[p.Name] = p.NS
		}
	}
	return m
}

// ServeAll starts, in every pod, a TCP server on tcpPort and a UDP server on
// udpPort (all pod addresses), both answering with the pod's name.
func (t *Topology) ServeAll(tcpPort, udpPort uint16) error {
	for _, p := range t.Pods() {
		var err error
		if p.TCP, err = p.NS.ServeTCP(p.Name, netip.AddrPortFrom(netip.IPv4Unspecified(), tcpPort)); err != nil {
			return err
		}
		if p.UDP, err = p.NS.ServeUDP(p.Name, netip.AddrPortFrom(netip.IPv4Unspecified(), udpPort)); err != nil {
			return err
		}
	}
	return nil
}

// ChecksumErrors returns the checksum error counters of every namespace of
// the topology that has a non-zero one, by short name (empty when clean).
func (t *Topology) ChecksumErrors() (map[string]ChecksumErrors, error) {
	bad := make(map[string]ChecksumErrors)
	for name, ns := range t.Namespaces() {
		c, err := ns.ChecksumErrors()
		if err != nil {
			return nil, err
		}
		if !c.IsZero() {
			bad[name] = c
		}
	}
	return bad, nil
}
