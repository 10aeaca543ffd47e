package netdev

import (
	"net/netip"
	"slices"
)

// Role is a device's SR-IOV or switchdev role.
type Role string

// Roles.
const (
	RoleNone        Role = ""            // not SR-IOV capable
	RolePF          Role = "pf"          // physical function that can create VFs
	RoleVF          Role = "vf"          // virtual function
	RoleRepresentor Role = "representor" // switchdev port representor of a VF, SF or PF
)

// Kinds reported in Device.Kind besides netlink's link kinds ("veth", "bond",
// "vlan", "bridge", "macvlan", "vxlan", ...).
const (
	KindPhysical = "physical" // backed by a bus device (PCI, virtio, ...)
	KindLoopback = "loopback"
	KindVirtual  = "virtual" // virtual device of unknown kind
)

// Kernel feature names (ETH_SS_FEATURES strings) that planning looks at.
const (
	FeatureLRO   = "rx-lro"    // ethtool -k: large-receive-offload
	FeatureGROHW = "rx-gro-hw" // ethtool -k: rx-gro-hw
	// FeatureVLANStrip is ethtool -k's rx-vlan-offload (rxvlan): the NIC
	// strips the 802.1Q tag before XDP sees the frame.
	FeatureVLANStrip = "rx-vlan-hw-parse"
)

// KeptFeatures are the features discovery keeps in Device.Features (the
// ones planning and people reading the status care about).
var KeptFeatures = []string{FeatureLRO, FeatureGROHW, FeatureVLANStrip, "rx-gro", "rx-gro-list", "rx-checksum", "hw-tc-offload"}

// Device is one network device as discovered.
type Device struct {
	Name       string `json:"name"`
	Index      int    `json:"ifindex,omitempty"`
	Kind       string `json:"kind"`
	Driver     string `json:"driver,omitempty"`
	PCIAddress string `json:"pciAddress,omitempty"`
	// BusDevice is the sysfs device directory's base name (e.g. "virtio2"
	// for virtio_net, the PCI address for a PCI NIC).
	BusDevice string `json:"busDevice,omitempty"`
	Virtual   bool   `json:"virtual"`
	Role      Role   `json:"role,omitempty"`

	SRIOV  *SRIOV     `json:"sriov,omitempty"`
	Switch *Switchdev `json:"switchdev,omitempty"`
	Bond   *Bond      `json:"bond,omitempty"`
	VLAN   *VLAN      `json:"vlan,omitempty"`
	Master string     `json:"master,omitempty"`
	// Ports of a bridge (bond slaves are in Bond.Slaves).
	Ports []string `json:"ports,omitempty"`
	// Peer is a veth's peer when it is in the same namespace.
	Peer    string   `json:"peer,omitempty"`
	PeerMTU int      `json:"peerMTU,omitempty"`
	Uppers  []string `json:"uppers,omitempty"`
	Lowers  []string `json:"lowers,omitempty"`

	NUMANode  int    `json:"numaNode"` // -1: none reported
	RXQueues  int    `json:"rxQueues"`
	TXQueues  int    `json:"txQueues"`
	MTU       int    `json:"mtu"`
	OperState string `json:"operState,omitempty"`

	// Features maps kernel feature names (e.g. "rx-lro") to their active
	// state; nil when unknown (FeaturesError says why).
	Features      map[string]bool `json:"features,omitempty"`
	FeaturesError string          `json:"featuresError,omitempty"`

	Addrs         []netip.Prefix `json:"addresses,omitempty"`
	DefaultRoutes []Route        `json:"defaultRoutes,omitempty"`
	XDP           *XDPState      `json:"xdp,omitempty"`
}

// SRIOV describes a PF (NumVFs, TotalVFs, VFs) or a VF (PF, PFNetdevs,
// VFIndex).
type SRIOV struct {
	NumVFs   int  `json:"numVFs,omitempty"`
	TotalVFs int  `json:"totalVFs,omitempty"`
	VFs      []VF `json:"vfs,omitempty"`

	PF        string   `json:"pf,omitempty"` // PF PCI address
	PFNetdevs []string `json:"pfNetdevs,omitempty"`
	VFIndex   int      `json:"vfIndex,omitempty"`
}

// VF is one virtual function of a PF.
type VF struct {
	Index      int    `json:"index"`
	PCIAddress string `json:"pciAddress"`
	Driver     string `json:"driver,omitempty"` // "" when unbound
	// Netdevs visible in this network namespace; empty when the VF is bound
	// to vfio-pci, unbound, or its netdev moved into a pod's namespace.
	Netdevs []string `json:"netdevs,omitempty"`
}

// Switchdev describes a device with a phys_switch_id.
type Switchdev struct {
	SwitchID string `json:"switchID"`
	PortName string `json:"portName,omitempty"`
	// Uplink is the PF's uplink port ("p0"): the wire side of the eswitch.
	Uplink bool `json:"uplink,omitempty"`
	// Represents names what a representor stands for, e.g. "pf0vf3".
	Represents string `json:"represents,omitempty"`
	// PF and VF numbers from the port name; VF is -1 for PF and SF ports.
	PFNum int `json:"pfNum,omitempty"`
	VFNum int `json:"vfNum,omitempty"`
	// RepresentedPCI is the represented VF's PCI address when it could be
	// resolved from the PF's virtfn links.
	RepresentedPCI string `json:"representedPCI,omitempty"`
}

// Bond describes a bonding master.
type Bond struct {
	Mode           string   `json:"mode"` // e.g. "802.3ad", "active-backup"
	XmitHashPolicy string   `json:"xmitHashPolicy,omitempty"`
	Slaves         []string `json:"slaves"`
}

// VLAN describes an 802.1Q device.
type VLAN struct {
	ID    int    `json:"id"` // 0 when unknown
	Lower string `json:"lower"`
}

// XDPState is a program already attached to a device (from netlink).
type XDPState struct {
	ProgID uint32 `json:"progID"`
	Mode   string `json:"mode"` // native, generic, offload, multi
}

// Feature returns a feature's state and whether it is known.
func (d *Device) Feature(name string) (on, known bool) {
	if d.Features == nil {
		return false, false
	}
	on, known = d.Features[name]
	return on, known
}

// HasGlobalAddr reports whether the device carries a global unicast address.
func (d *Device) HasGlobalAddr() bool {
	for _, p := range d.Addrs {
		if IsNodeAddr(p.Addr()) {
			return true
		}
	}
	return false
}

// Carries reports whether the device carries address a.
func (d *Device) Carries(a netip.Addr) bool {
	return slices.ContainsFunc(d.Addrs, func(p netip.Prefix) bool { return p.Addr() == a.Unmap() })
}

// IsNodeAddr reports whether a could be a node address: global unicast (not
// loopback, link-local or multicast).
func IsNodeAddr(a netip.Addr) bool {
	return a.IsValid() && a.IsGlobalUnicast()
}

// ByName indexes devices by name.
func ByName(devs []Device) map[string]*Device {
	m := make(map[string]*Device, len(devs))
	for i := range devs {
		m[devs[i].Name] = &devs[i]
	}
	return m
}
