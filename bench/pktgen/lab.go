package pktgen

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"

	"github.com/straitlb/strait/internal/netlab"
)

// Lab addresses.
var (
	GenIP      = netip.MustParseAddr("192.0.2.1")
	NodeIP     = netip.MustParseAddr("192.0.2.11")
	BackendNet = netip.MustParsePrefix("198.18.0.0/15")
	labNet     = 24
	neighPerm  = netlink.NUD_PERMANENT
)

// NodeLab is a generator namespace wired to one node namespace.
type NodeLab struct {
	Lab             *netlab.Lab
	Gen, Node       *netlab.NS
	GenDev, Uplink  string
	GenIndex        int
	UplinkIndex     int
	GenMAC, NodeMAC net.HardwareAddr
	sinkAttached    bool
}

// NewNodeLab builds the lab in l (see the package doc). The sink is not
// attached yet: AttachSink.
func NewNodeLab(l *netlab.Lab) (*NodeLab, error) {
	n := &NodeLab{Lab: l, GenDev: l.Name("g"), Uplink: l.Name("u")}
	var err error
	if n.Gen, err = l.AddNS("gen"); err != nil {
		return nil, err
	}
	if n.Node, err = l.AddNS("node"); err != nil {
		return nil, err
	}
	err = l.AddVeth(
		netlab.VethEnd{NS: n.Gen, Name: n.GenDev, Addr: netip.PrefixFrom(GenIP, labNet)},
		netlab.VethEnd{NS: n.Node, Name: n.Uplink, Addr: netip.PrefixFrom(NodeIP, labNet)})
	if err != nil {
		return nil, err
	}
	for _, ns := range []*netlab.NS{n.Gen, n.Node} {
		for _, kv := range [][2]string{
			{"net.ipv4.conf.all.rp_filter", "0"},
			{"net.ipv4.conf.default.rp_filter", "0"},
			{"net.ipv4.conf.all.send_redirects", "0"},
			{"net.ipv4.conf.default.send_redirects", "0"},
		} {
			if err := ns.SetSysctl(kv[0], kv[1]); err != nil {
				return nil, err
			}
		}
	}
	for _, dev := range []string{"rp_filter", "send_redirects"} {
		if err := n.Node.SetSysctl("net/ipv4/conf/"+n.Uplink+"/"+dev, "0"); err != nil {
			return nil, err
		}
	}
	if err := n.Node.EnableForwarding(); err != nil {
		return nil, err
	}
	if err := n.Node.AddRoute(BackendNet, GenIP, ""); err != nil {
		return nil, err
	}
	if err := n.Node.AddRoute(netlab.DefaultRoute(), GenIP, ""); err != nil {
		return nil, err
	}
	if err := n.Gen.DisableTxChecksum(n.GenDev); err != nil {
		return nil, err
	}
	if err := n.Node.DisableTxChecksum(n.Uplink); err != nil {
		return nil, err
	}
	if n.GenIndex, err = n.Gen.LinkIndex(n.GenDev); err != nil {
		return nil, err
	}
	if n.UplinkIndex, err = n.Node.LinkIndex(n.Uplink); err != nil {
		return nil, err
	}
	if n.GenMAC, err = n.Gen.HardwareAddr(n.GenDev); err != nil {
		return nil, err
	}
	if n.NodeMAC, err = n.Node.HardwareAddr(n.Uplink); err != nil {
		return nil, err
	}
	// The node's next hop is known from the start: no first-packet
	// neighbour misses in either datapath.
	h := n.Node.Netlink()
	if h == nil {
		return nil, netlab.ErrClosed
	}
	if err := h.NeighSet(&netlink.Neigh{LinkIndex: n.UplinkIndex, Family: netlink.FAMILY_V4,
		State: neighPerm, IP: GenIP.AsSlice(), HardwareAddr: n.GenMAC}); err != nil {
		return nil, fmt.Errorf("neighbour entry for %s: %w", GenIP, err)
	}
	return n, nil
}

// AttachSink attaches the counting sink (native XDP) to the generator's
// device: what the node sends back is counted there, and its presence lets
// the node's native XDP_TX be delivered.
func (n *NodeLab) AttachSink(o *Objects) error {
	if _, err := n.Gen.AttachXDP(n.GenDev, o.BenchSink, link.XDPDriverMode); err != nil {
		return err
	}
	n.sinkAttached = true
	return SetSinkMatch(o, BackendNet)
}

// AttachNodePass attaches an XDP_PASS program to the node's uplink, for a
// node whose forwarding is the kernel stack (kube-proxy): native XDP_TX
// into a veth is delivered only when the receiving end has a program.
func (n *NodeLab) AttachNodePass() error {
	_, err := n.Node.AttachXDPPass(n.Uplink)
	return err
}

// Frame builds t's template frame from the generator to the node.
func (n *NodeLab) Frame(t Traffic) ([]byte, error) { return t.Frame(n.GenMAC, n.NodeMAC) }

// RunOptions returns generator options injecting frame on the gen device.
func (n *NodeLab) RunOptions(frame []byte) RunOptions {
	return RunOptions{NS: n.Gen, Ifindex: n.GenIndex, Frame: frame}
}
