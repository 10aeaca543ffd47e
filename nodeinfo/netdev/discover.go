package netdev

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/straitlb/strait/nodeinfo/hostfs"
)

// Source is what discovery reads. Net and Ethtool may be nil: discovery then
// reports what sysfs alone tells.
type Source struct {
	FS      hostfs.FS
	Net     NetSource
	Ethtool Ethtool
}

var (
	pciAddrRE = regexp.MustCompile(`^[0-9a-fA-F]{4,}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$`)
	// Representor port names: pf0vf3, pf1sf2, c1pf0vf3 (controller), pf0
	// (host PF seen from a SmartNIC/DPU).
	repVFRE  = regexp.MustCompile(`^(?:c\d+)?pf(\d+)vf(\d+)$`)
	repSFRE  = regexp.MustCompile(`^(?:c\d+)?pf(\d+)sf(\d+)$`)
	repPFRE  = regexp.MustCompile(`^(?:c\d+)?pf(\d+)$`)
	uplinkRE = regexp.MustCompile(`^p\d+$`)
)

// IsPCIAddress reports whether s looks like a PCI address (0000:3b:00.0).
func IsPCIAddress(s string) bool { return pciAddrRE.MatchString(s) }

// Discover lists the devices under <sys>/class/net, sorted by name.
func Discover(src Source) ([]Device, error) {
	fs := src.FS
	names, err := hostfs.List(fs.SysPath("class", "net"))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", fs.SysPath("class", "net"), err)
	}
	var st NetState
	if src.Net != nil {
		st, err = src.Net.NetState()
		if err != nil {
			return nil, fmt.Errorf("read addresses and routes: %w", err)
		}
	}
	links := map[string]LinkState{}
	for _, l := range st.Links {
		links[l.Name] = l
	}
	vlans := readVLANConfig(fs.ProcPath("net", "vlan", "config"))
	peers := map[string]int{}

	devs := make([]Device, 0, len(names))
	for _, name := range names {
		d, ok := readDevice(fs, name)
		if !ok {
			continue // vanished while listing
		}
		if l, ok := links[name]; ok {
			if l.Kind != "" {
				d.Kind = l.Kind
			}
			d.Addrs = slices.Clone(l.Addrs)
			d.XDP = l.XDP
			if l.PeerIndex > 0 {
				peers[name] = l.PeerIndex
			}
			if d.Index == 0 {
				d.Index = l.Index
			}
		}
		if v, ok := vlans[name]; ok {
			d.VLAN = &v
			d.Kind = "vlan"
		} else if d.Kind == "vlan" && len(d.Lowers) == 1 {
			d.VLAN = &VLAN{Lower: d.Lowers[0]}
		}
		for _, r := range st.Routes {
			if r.Device == name && r.IsDefault() {
				d.DefaultRoutes = append(d.DefaultRoutes, r)
			}
		}
		if src.Ethtool != nil && d.Kind != KindLoopback {
			if d.Driver == "" {
				if drv, err := src.Ethtool.Driver(name); err == nil {
					d.Driver = drv
				}
			}
			f, err := src.Ethtool.Features(name)
			if err != nil {
				d.FeaturesError = err.Error()
			} else {
				d.Features = map[string]bool{}
				for _, k := range KeptFeatures {
					if v, ok := f[k]; ok {
						d.Features[k] = v
					}
				}
			}
		}
		if d.Kind == KindVirtual && d.Driver != "" {
			if k, ok := kindOfDriver[d.Driver]; ok {
				d.Kind = k
			}
		}
		devs = append(devs, d)
	}
	linkSRIOV(devs)
	for i := range devs {
		if idx, ok := peers[devs[i].Name]; ok {
			for _, o := range devs {
				if o.Index == idx {
					devs[i].Peer, devs[i].PeerMTU = o.Name, o.MTU
				}
			}
		}
	}
	return devs, nil
}

// kindOfDriver maps ethtool driver names of virtual devices to link kinds,
// for when netlink is not available.
var kindOfDriver = map[string]string{
	"veth":               "veth",
	"bridge":             "bridge",
	"bonding":            "bond",
	"macvlan":            "macvlan",
	"ipvlan":             "ipvlan",
	"vxlan":              "vxlan",
	"geneve":             "geneve",
	"dummy":              "dummy",
	"ifb":                "ifb",
	"tun":                "tuntap",
	"802.1Q VLAN Driver": "vlan",
	"wireguard":          "wireguard",
	"openvswitch":        "openvswitch",
	"team":               "team",
	"netkit":             "netkit",
}

func readDevice(fs hostfs.FS, name string) (Device, bool) {
	base := fs.SysPath("class", "net", name)
	if _, err := os.Lstat(base); err != nil {
		return Device{}, false
	}
	d := Device{
		Name:      name,
		Index:     hostfs.ReadIntOr(filepath.Join(base, "ifindex"), 0),
		MTU:       hostfs.ReadIntOr(filepath.Join(base, "mtu"), 0),
		OperState: hostfs.ReadStringOr(filepath.Join(base, "operstate"), ""),
		NUMANode:  -1,
		RXQueues:  len(hostfs.ListPrefix(filepath.Join(base, "queues"), "rx-")),
		TXQueues:  len(hostfs.ListPrefix(filepath.Join(base, "queues"), "tx-")),
		Master:    hostfs.LinkBase(filepath.Join(base, "master")),
	}
	for _, u := range hostfs.ListPrefix(base, "upper_") {
		d.Uppers = append(d.Uppers, strings.TrimPrefix(u, "upper_"))
	}
	for _, l := range hostfs.ListPrefix(base, "lower_") {
		d.Lowers = append(d.Lowers, strings.TrimPrefix(l, "lower_"))
	}

	devType := ""
	for line := range strings.Lines(hostfs.ReadStringOr(filepath.Join(base, "uevent"), "")) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "DEVTYPE="); ok {
			devType = v
		}
	}

	if dev, err := hostfs.Resolve(filepath.Join(base, "device")); err == nil {
		d.Virtual = false
		d.BusDevice = filepath.Base(dev)
		d.Driver = hostfs.LinkBase(filepath.Join(dev, "driver"))
		pci := pciAncestor(dev)
		if pci != "" {
			d.PCIAddress = filepath.Base(pci)
			d.NUMANode = hostfs.ReadIntOr(filepath.Join(pci, "numa_node"), -1)
			readSRIOV(&d, pci)
		} else {
			d.NUMANode = hostfs.ReadIntOr(filepath.Join(dev, "numa_node"), -1)
		}
	} else {
		d.Virtual = true
	}

	if id := hostfs.ReadStringOr(filepath.Join(base, "phys_switch_id"), ""); id != "" {
		sw := &Switchdev{SwitchID: id, PortName: hostfs.ReadStringOr(filepath.Join(base, "phys_port_name"), ""), VFNum: -1}
		pn := sw.PortName
		switch {
		case repVFRE.MatchString(pn):
			m := repVFRE.FindStringSubmatch(pn)
			sw.PFNum, _ = strconv.Atoi(m[1])
			sw.VFNum, _ = strconv.Atoi(m[2])
			sw.Represents = pn
		case repSFRE.MatchString(pn):
			m := repSFRE.FindStringSubmatch(pn)
			sw.PFNum, _ = strconv.Atoi(m[1])
			sw.Represents = pn
		case repPFRE.MatchString(pn):
			m := repPFRE.FindStringSubmatch(pn)
			sw.PFNum, _ = strconv.Atoi(m[1])
			sw.Represents = pn
		case uplinkRE.MatchString(pn):
			sw.Uplink = true
		}
		d.Switch = sw
		if sw.Represents != "" {
			d.Role = RoleRepresentor
			d.SRIOV = nil // the PF's PCI function, not this port's
		}
	}

	switch {
	case name == "lo" || hostfs.ReadStringOr(filepath.Join(base, "type"), "") == "772": // ARPHRD_LOOPBACK
		d.Kind = KindLoopback
	case hostfs.Exists(filepath.Join(base, "bonding")):
		d.Kind = "bond"
		d.Bond = &Bond{
			Mode:           firstField(hostfs.ReadStringOr(filepath.Join(base, "bonding", "mode"), "")),
			XmitHashPolicy: firstField(hostfs.ReadStringOr(filepath.Join(base, "bonding", "xmit_hash_policy"), "")),
			Slaves:         strings.Fields(hostfs.ReadStringOr(filepath.Join(base, "bonding", "slaves"), "")),
		}
	case hostfs.Exists(filepath.Join(base, "bridge")):
		d.Kind = "bridge"
		d.Ports, _ = hostfs.List(filepath.Join(base, "brif"))
	case devType == "vlan":
		d.Kind = "vlan"
	case devType != "" && devType != "wlan":
		d.Kind = devType
	case !d.Virtual:
		d.Kind = KindPhysical
	default:
		d.Kind = KindVirtual
	}
	return d, true
}

func firstField(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// pciAncestor returns the PCI function behind a netdev's device: the device
// itself, or for virtio_net the PCI function above the virtioN device. A USB
// or platform NIC has none (its ancestors' PCI address would be the host
// controller's).
func pciAncestor(dev string) string {
	if IsPCIAddress(filepath.Base(dev)) {
		return dev
	}
	if hostfs.LinkBase(filepath.Join(dev, "subsystem")) == "virtio" && IsPCIAddress(filepath.Base(filepath.Dir(dev))) {
		return filepath.Dir(dev)
	}
	return ""
}

func readSRIOV(d *Device, pci string) {
	if pf, err := hostfs.Resolve(filepath.Join(pci, "physfn")); err == nil {
		s := &SRIOV{PF: filepath.Base(pf), VFIndex: -1}
		s.PFNetdevs, _ = hostfs.List(filepath.Join(pf, "net"))
		for _, v := range hostfs.ListPrefix(pf, "virtfn") {
			if hostfs.LinkBase(filepath.Join(pf, v)) == d.PCIAddress {
				s.VFIndex, _ = strconv.Atoi(strings.TrimPrefix(v, "virtfn"))
			}
		}
		d.Role, d.SRIOV = RoleVF, s
		return
	}
	total := hostfs.ReadIntOr(filepath.Join(pci, "sriov_totalvfs"), 0)
	if total <= 0 {
		return
	}
	s := &SRIOV{TotalVFs: total, NumVFs: hostfs.ReadIntOr(filepath.Join(pci, "sriov_numvfs"), 0)}
	for _, v := range hostfs.ListPrefix(pci, "virtfn") {
		idx, err := strconv.Atoi(strings.TrimPrefix(v, "virtfn"))
		if err != nil {
			continue
		}
		vf := VF{Index: idx}
		if dir, err := hostfs.Resolve(filepath.Join(pci, v)); err == nil {
			vf.PCIAddress = filepath.Base(dir)
			vf.Driver = hostfs.LinkBase(filepath.Join(dir, "driver"))
			vf.Netdevs, _ = hostfs.List(filepath.Join(dir, "net"))
		}
		s.VFs = append(s.VFs, vf)
	}
	slices.SortFunc(s.VFs, func(a, b VF) int { return a.Index - b.Index })
	d.Role, d.SRIOV = RolePF, s
}

// linkSRIOV fills cross references that need every device: the netdev
// names of a VF's PF exclude the PF's representors, and a representor
// learns its VF's PCI address.
func linkSRIOV(devs []Device) {
	byName := ByName(devs)
	pfByPCI := map[string]*Device{}
	for i := range devs {
		d := &devs[i]
		if d.Role == RolePF {
			if cur, ok := pfByPCI[d.PCIAddress]; !ok || (d.Switch != nil && d.Switch.Uplink && (cur.Switch == nil || !cur.Switch.Uplink)) {
				pfByPCI[d.PCIAddress] = d
			}
		}
	}
	for i := range devs {
		d := &devs[i]
		switch d.Role {
		case RoleVF:
			d.SRIOV.PFNetdevs = slices.DeleteFunc(d.SRIOV.PFNetdevs, func(n string) bool {
				o, ok := byName[n]
				return ok && o.Role == RoleRepresentor
			})
		case RoleRepresentor:
			pf := pfByPCI[d.PCIAddress]
			if pf == nil || d.Switch.VFNum < 0 || pf.SRIOV == nil {
				continue
			}
			for _, vf := range pf.SRIOV.VFs {
				if vf.Index == d.Switch.VFNum {
					d.Switch.RepresentedPCI = vf.PCIAddress
				}
			}
		}
	}
}

// readVLANConfig parses /proc/net/vlan/config:
//
//	VLAN Dev name	 | VLAN ID
//	Name-Type: VLAN_NAME_TYPE_RAW_PLUS_VID_NO_PAD
//	ens1f0.100     | 100  | ens1f0
func readVLANConfig(path string) map[string]VLAN {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	out := map[string]VLAN{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(sc.Text(), "|")
		if len(parts) != 3 {
			continue
		}
		id, err := strconv.Atoi(strings.TrimSpace(parts[1]))
		if err != nil {
			continue
		}
		out[strings.TrimSpace(parts[0])] = VLAN{ID: id, Lower: strings.TrimSpace(parts[2])}
	}
	return out
}
