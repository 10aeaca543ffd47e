package layouts

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/straitlb/strait/nodeinfo/hostfs"
	"github.com/straitlb/strait/nodeinfo/netdev"
)

// Layout is a node: its trees and the facts netlink and ethtool add.
type Layout struct {
	Name          string
	Tree          *Tree
	Net           netdev.StaticNet
	Ethtool       netdev.StaticEthtool
	NodeAddresses []netip.Addr
}

// FS returns the layout's roots.
func (l *Layout) FS() hostfs.FS { return l.Tree.FS() }

// Source returns the discovery source.
func (l *Layout) Source() netdev.Source {
	return netdev.Source{FS: l.FS(), Net: l.Net, Ethtool: l.Ethtool}
}

func newLayout(t testing.TB, name string) *Layout {
	return &Layout{
		Name:    name,
		Tree:    NewTree(t),
		Ethtool: netdev.StaticEthtool{Drivers: map[string]string{}, FeatureSets: map[string]map[string]bool{}},
	}
}

func (l *Layout) link(name string, index int, kind string, addrs ...string) {
	ls := netdev.LinkState{Name: name, Index: index, Kind: kind}
	for _, a := range addrs {
		ls.Addrs = append(ls.Addrs, netip.MustParsePrefix(a))
	}
	l.Net.Links = append(l.Net.Links, ls)
}

func (l *Layout) defaultRoute(dev, gw string) {
	g := netip.MustParseAddr(gw)
	dst := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	if g.Is6() {
		dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	l.Net.Routes = append(l.Net.Routes, netdev.Route{Dst: dst, Gateway: g, Device: dev})
}

func (l *Layout) features(dev string, lro, groHW bool) {
	l.Ethtool.FeatureSets[dev] = map[string]bool{netdev.FeatureLRO: lro, netdev.FeatureGROHW: groHW, "rx-gro": true}
}

func (l *Layout) loopback() {
	l.Tree.Netdev("lo", Netdev{Index: 1, MTU: 65536, Type: 772, Oper: "unknown"})
	l.link("lo", 1, "", "127.0.0.1/8", "::1/128")
}

func irange(lo, hi int) []int {
	var out []int
	for i := lo; i <= hi; i++ {
		out = append(out, i)
	}
	return out
}

// TwoSocketSRIOV is a two-socket server: an Intel E810 (ice) PF with 8 VFs
// on NUMA node 0 and an NVIDIA ConnectX-6 (mlx5_core) PF in switchdev mode
// with 8 VFs and their representors on node 1.
//
//   - ens1f0 (ice, 0000:3b:00.0, node 0) carries node address 10.0.0.11,
//     fd00:1::11 and both default routes. VFs 0-5 are bound to vfio-pci
//     (handed to DPDK pods); VFs 6 and 7 run iavf with host netdevs
//     ens1f0v6, ens1f0v7 and no addresses.
//   - ens2f0np0 (mlx5_core, 0000:af:00.0, node 1, switchdev uplink p0,
//     MTU 9000) carries node address 10.1.0.11. VFs 0-3 run mlx5_core with
//     their netdevs moved into pods, 4-5 are on vfio-pci, 6 has host netdev
//     ens2f0v6, 7 is unbound. Representors ens2f0npf0vf0..7.
//   - ens1f0's queue IRQs run on node 0 CPUs 0-7; six of ens2f0np0's eight
//     completion IRQs run on node 0 CPUs 0-5 (the cross-node case).
func TwoSocketSRIOV(t testing.TB) *Layout {
	l := newLayout(t, "two-socket-sriov")
	tr := l.Tree
	tr.CPUs("0-31", map[int]string{0: "0-15", 1: "16-31"})
	tr.Kernel("6.8.0-45-generic")
	l.loopback()

	// Intel E810 on node 0.
	ice := tr.PCIDevice("0000:3b:00.0", PCI{Parent: "pci0000:3a/0000:3a:00.0", Driver: "ice", NUMA: 0, TotalVFs: 128, NumVFs: 8, MSI: irange(99, 107)})
	tr.Netdev("ens1f0", Netdev{Device: ice, Index: 2, RX: 8})
	l.link("ens1f0", 2, "", "10.0.0.11/24", "fd00:1::11/64", "fe80::1/64")
	l.defaultRoute("ens1f0", "10.0.0.1")
	l.defaultRoute("ens1f0", "fd00:1::1")
	l.features("ens1f0", false, false)
	tr.IRQ(Interrupt{IRQ: 99, Chip: "IR-PCI-MSIX-0000:3b:00.0", HWIRQ: "0-edge", Name: "ice-0000:3b:00.0:misc", Affinity: "0-15", Effective: "3"})
	for i := range 8 {
		tr.IRQ(Interrupt{IRQ: 100 + i, Chip: "IR-PCI-MSIX-0000:3b:00.0", HWIRQ: fmt.Sprintf("%d-edge", i+1), Name: fmt.Sprintf("ice-ens1f0-TxRx-%d", i), Affinity: fmt.Sprint(i)})
	}
	for i := range 8 {
		drv := "vfio-pci"
		if i >= 6 {
			drv = "iavf"
		}
		vf := tr.VF(ice, i, fmt.Sprintf("0000:3b:01.%d", i), PCI{Driver: drv, NUMA: 0, MSI: irange(300+10*i, 304+10*i)})
		if i >= 6 {
			name := fmt.Sprintf("ens1f0v%d", i)
			tr.Netdev(name, Netdev{Device: vf, Index: 10 + i, RX: 4})
			l.link(name, 10+i, "")
			l.features(name, false, false)
			addr := fmt.Sprintf("0000:3b:01.%d", i)
			tr.IRQ(Interrupt{IRQ: 300 + 10*i, Chip: "IR-PCI-MSIX-" + addr, HWIRQ: "0-edge", Name: "iavf-" + addr + ":mbx", Affinity: "0-15", Effective: "4"})
			for q := range 4 {
				tr.IRQ(Interrupt{IRQ: 301 + 10*i + q, Chip: "IR-PCI-MSIX-" + addr, HWIRQ: fmt.Sprintf("%d-edge", q+1), Name: fmt.Sprintf("iavf-%s-TxRx-%d", name, q), Affinity: fmt.Sprint(8 + q)})
			}
		}
	}

	// NVIDIA ConnectX-6 Dx on node 1, switchdev mode.
	const sw = "b8cef60300a1b2c3"
	mlx := tr.PCIDevice("0000:af:00.0", PCI{Parent: "pci0000:ae/0000:ae:00.0", Driver: "mlx5_core", NUMA: 1, TotalVFs: 8, NumVFs: 8, MSI: irange(198, 207)})
	tr.Netdev("ens2f0np0", Netdev{Device: mlx, Index: 3, RX: 8, MTU: 9000, SwitchID: sw, PortName: "p0"})
	l.link("ens2f0np0", 3, "", "10.1.0.11/24")
	l.features("ens2f0np0", false, false)
	tr.IRQ(Interrupt{IRQ: 198, Chip: "IR-PCI-MSIX-0000:af:00.0", HWIRQ: "0-edge", Name: "mlx5_async0@pci:0000:af:00.0", Affinity: "16-31", Effective: "16"})
	for i := range 8 {
		aff, eff := "0-15", fmt.Sprint(i) // irqbalance put them on node 0
		if i >= 6 {
			aff, eff = "16-31", fmt.Sprint(16+i)
		}
		tr.IRQ(Interrupt{IRQ: 200 + i, Chip: "IR-PCI-MSIX-0000:af:00.0", HWIRQ: fmt.Sprintf("%d-edge", i+1), Name: fmt.Sprintf("mlx5_comp%d@pci:0000:af:00.0", i), Affinity: aff, Effective: eff})
	}
	vfAddrs := []string{"0000:af:00.2", "0000:af:00.3", "0000:af:00.4", "0000:af:00.5", "0000:af:00.6", "0000:af:00.7", "0000:af:01.0", "0000:af:01.1"}
	for i, addr := range vfAddrs {
		drv := "mlx5_core"
		switch {
		case i == 4 || i == 5:
			drv = "vfio-pci"
		case i == 7:
			drv = ""
		}
		vf := tr.VF(mlx, i, addr, PCI{Driver: drv, NUMA: 1, MSI: irange(400+10*i, 402+10*i)})
		if i == 6 {
			tr.Netdev("ens2f0v6", Netdev{Device: vf, Index: 26, RX: 2})
			l.link("ens2f0v6", 26, "")
			l.features("ens2f0v6", false, false)
		}
	}
	for i := range 8 {
		name := fmt.Sprintf("ens2f0npf0vf%d", i)
		tr.Netdev(name, Netdev{Device: mlx, Index: 30 + i, SwitchID: sw, PortName: fmt.Sprintf("pf0vf%d", i)})
		l.link(name, 30+i, "")
		l.features(name, false, false)
	}
	tr.WriteInterrupts()
	l.NodeAddresses = []netip.Addr{netip.MustParseAddr("10.0.0.11"), netip.MustParseAddr("10.1.0.11"), netip.MustParseAddr("fd00:1::11")}
	return l
}

// BondedNICs is a single-socket server with bond0 (802.3ad, layer3+4) over
// two ixgbe ports eno1 and eno2; bond0 carries the node address and the
// default route. eno2 still has LRO on (ixgbe's default). A CNI bridge cni0
// with a pod veth carries the pod gateway address.
func BondedNICs(t testing.TB) *Layout {
	l := newLayout(t, "bond")
	tr := l.Tree
	tr.CPUs("0-7", map[int]string{0: "0-7"})
	tr.Kernel("6.1.0-18-amd64")
	l.loopback()
	for i, name := range []string{"eno1", "eno2"} {
		addr := fmt.Sprintf("0000:19:00.%d", i)
		dev := tr.PCIDevice(addr, PCI{Parent: "pci0000:17/0000:17:02.0", Driver: "ixgbe", NUMA: 0, TotalVFs: 63, MSI: irange(60+10*i, 64+10*i)})
		tr.Netdev(name, Netdev{Device: dev, Index: 2 + i, RX: 4})
		l.link(name, 2+i, "")
		l.features(name, i == 1, false)
		tr.IRQ(Interrupt{IRQ: 60 + 10*i, Chip: "IR-PCI-MSIX-" + addr, HWIRQ: "0-edge", Name: name, Affinity: "0-7", Effective: "0"})
		for q := range 4 {
			tr.IRQ(Interrupt{IRQ: 61 + 10*i + q, Chip: "IR-PCI-MSIX-" + addr, HWIRQ: fmt.Sprintf("%d-edge", q+1), Name: fmt.Sprintf("%s-TxRx-%d", name, q), Affinity: fmt.Sprint(4*i + q)})
		}
	}
	tr.Bond("bond0", 4, "802.3ad 4", "layer3+4 1", 1500, "eno1", "eno2")
	l.link("bond0", 4, "bond", "192.168.10.21/24")
	l.defaultRoute("bond0", "192.168.10.1")
	l.Ethtool.Drivers["bond0"] = "bonding"
	l.features("bond0", false, false)

	tr.Netdev("vethc0ffee", Netdev{Index: 7})
	l.link("vethc0ffee", 7, "veth")
	tr.Bridge("cni0", 6, "vethc0ffee")
	l.link("cni0", 6, "bridge", "10.244.1.1/24")
	tr.WriteInterrupts()
	l.NodeAddresses = []netip.Addr{netip.MustParseAddr("192.168.10.21")}
	return l
}

// VLANOnPF is a server whose node network is VLAN 100 on PF ens3f0 (i40e,
// SR-IOV capable with no VFs enabled): ens3f0.100 carries the node address
// and the default route, ens3f0 none. ens3f1, the second port, is down.
func VLANOnPF(t testing.TB) *Layout {
	l := newLayout(t, "vlan")
	tr := l.Tree
	tr.CPUs("0-15", map[int]string{0: "0-7", 1: "8-15"})
	tr.Kernel("5.14.0-427.el9.x86_64")
	l.loopback()
	for i, name := range []string{"ens3f0", "ens3f1"} {
		addr := fmt.Sprintf("0000:5e:00.%d", i)
		dev := tr.PCIDevice(addr, PCI{Parent: "pci0000:5d/0000:5d:00.0", Driver: "i40e", NUMA: 0, TotalVFs: 64, MSI: irange(39+20*i, 47+20*i)})
		oper := "up"
		if i == 1 {
			oper = "down"
		}
		tr.Netdev(name, Netdev{Device: dev, Index: 2 + i, RX: 8, Oper: oper})
		l.link(name, 2+i, "")
		l.features(name, false, false)
		tr.IRQ(Interrupt{IRQ: 39 + 20*i, Chip: "IR-PCI-MSIX-" + addr, HWIRQ: "0-edge", Name: fmt.Sprintf("i40e-%s:misc", addr), Affinity: "0-15", Effective: "1"})
		for q := range 8 {
			tr.IRQ(Interrupt{IRQ: 40 + 20*i + q, Chip: "IR-PCI-MSIX-" + addr, HWIRQ: fmt.Sprintf("%d-edge", q+1), Name: fmt.Sprintf("i40e-%s-TxRx-%d", name, q), Affinity: fmt.Sprint(q)})
		}
	}
	// i40e strips VLAN tags by default (ethtool -k: rx-vlan-offload on).
	l.Ethtool.FeatureSets["ens3f0"][netdev.FeatureVLANStrip] = true
	tr.VLAN("ens3f0.100", 4, 100, "ens3f0")
	l.link("ens3f0.100", 4, "vlan", "172.16.100.11/24")
	l.defaultRoute("ens3f0.100", "172.16.100.1")
	l.Ethtool.Drivers["ens3f0.100"] = "802.1Q VLAN Driver"
	tr.WriteInterrupts()
	l.NodeAddresses = []netip.Addr{netip.MustParseAddr("172.16.100.11")}
	return l
}

// VirtioVM is a 2-vCPU virtual machine with one virtio_net device eth0
// (1 queue, no NUMA node) and Docker's bridge docker0.
func VirtioVM(t testing.TB) *Layout {
	l := newLayout(t, "virtio-vm")
	tr := l.Tree
	tr.CPUs("0-1", map[int]string{0: "0-1"})
	tr.Kernel("6.1.0-18-cloud-amd64")
	l.loopback()
	pci := tr.PCIDevice("0000:00:03.0", PCI{Parent: "pci0000:00", Driver: "virtio-pci", NUMA: -1, MSI: []int{24, 25, 26}})
	vio := tr.BusDevice(pci, "virtio0", "virtio", "virtio_net")
	tr.Netdev("eth0", Netdev{Device: vio, Index: 2, RX: 1})
	l.link("eth0", 2, "", "192.0.2.10/24")
	l.defaultRoute("eth0", "192.0.2.1")
	l.features("eth0", false, false)
	tr.IRQ(
		Interrupt{IRQ: 24, Chip: "PCI-MSIX-0000:00:03.0", HWIRQ: "0-edge", Name: "virtio0-config", Affinity: "0-1", Effective: "0"},
		Interrupt{IRQ: 25, Chip: "PCI-MSIX-0000:00:03.0", HWIRQ: "1-edge", Name: "virtio0-input.0", Affinity: "1"},
		Interrupt{IRQ: 26, Chip: "PCI-MSIX-0000:00:03.0", HWIRQ: "2-edge", Name: "virtio0-output.0", Affinity: "0"},
	)
	tr.Bridge("docker0", 3)
	l.link("docker0", 3, "bridge", "172.17.0.1/16")
	l.Ethtool.Drivers["docker0"] = "bridge"
	tr.WriteInterrupts()
	l.NodeAddresses = []netip.Addr{netip.MustParseAddr("192.0.2.10")}
	return l
}
