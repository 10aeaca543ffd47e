package layouts

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/straitlb/strait/nodeinfo/hostfs"
)

// Tree builds a directory that mimics / (sys/ and proc/ below Root).
type Tree struct {
	t    testing.TB
	Root string
	irqs []Interrupt
	ncpu int
}

// NewTree creates an empty tree in t.TempDir().
func NewTree(t testing.TB) *Tree {
	t.Helper()
	return &Tree{t: t, Root: t.TempDir()}
}

// FS returns the tree's roots.
func (tr *Tree) FS() hostfs.FS { return hostfs.AtRoot(tr.Root) }

// File writes rel (relative to Root) with content, creating directories.
func (tr *Tree) File(rel, content string) {
	tr.t.Helper()
	p := filepath.Join(tr.Root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content+"\n"), 0o644); err != nil {
		tr.t.Fatal(err)
	}
}

// Dir creates directory rel.
func (tr *Tree) Dir(rel string) {
	tr.t.Helper()
	if err := os.MkdirAll(filepath.Join(tr.Root, rel), 0o755); err != nil {
		tr.t.Fatal(err)
	}
}

// Link creates symlink rel pointing at target (both relative to Root); the
// link's text is relative, as in sysfs.
func (tr *Tree) Link(rel, target string) {
	tr.t.Helper()
	p := filepath.Join(tr.Root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tr.t.Fatal(err)
	}
	txt, err := filepath.Rel(filepath.Dir(p), filepath.Join(tr.Root, target))
	if err != nil {
		tr.t.Fatal(err)
	}
	if err := os.Symlink(txt, p); err != nil {
		tr.t.Fatal(err)
	}
}

// CPUs declares the online CPUs and the NUMA nodes (node id -> cpulist).
// With no nodes, only cpu/online is written.
func (tr *Tree) CPUs(online string, nodes map[int]string) {
	tr.File("sys/devices/system/cpu/online", online)
	for n, l := range nodes {
		tr.File(fmt.Sprintf("sys/devices/system/node/node%d/cpulist", n), l)
	}
	set := 0
	for _, part := range strings.Split(online, ",") {
		lo, hi, ok := strings.Cut(part, "-")
		a, _ := strconv.Atoi(lo)
		b := a
		if ok {
			b, _ = strconv.Atoi(hi)
		}
		set += b - a + 1
	}
	tr.ncpu = set
}

// Kernel writes proc/sys/kernel/osrelease.
func (tr *Tree) Kernel(release string) { tr.File("proc/sys/kernel/osrelease", release) }

// PCI describes a PCI function.
type PCI struct {
	Parent   string // path under sys/devices, e.g. "pci0000:3a/0000:3a:00.0"
	Driver   string // "" for unbound
	Bus      string // driver's bus, default "pci"
	NUMA     int
	TotalVFs int
	NumVFs   int
	MSI      []int
}

// PCIDevice creates sys/devices/<parent>/<addr> with its driver link,
// numa_node, SR-IOV counts and msi_irqs, plus sys/bus/pci/devices/<addr>.
// It returns the device directory relative to Root.
func (tr *Tree) PCIDevice(addr string, p PCI) string {
	dir := filepath.Join("sys/devices", p.Parent, addr)
	tr.Dir(dir)
	if p.Driver != "" {
		tr.Link(filepath.Join(dir, "driver"), "sys/bus/pci/drivers/"+p.Driver)
		tr.Dir("sys/bus/pci/drivers/" + p.Driver)
	}
	tr.File(filepath.Join(dir, "numa_node"), strconv.Itoa(p.NUMA))
	if p.TotalVFs > 0 {
		tr.File(filepath.Join(dir, "sriov_totalvfs"), strconv.Itoa(p.TotalVFs))
		tr.File(filepath.Join(dir, "sriov_numvfs"), strconv.Itoa(p.NumVFs))
	}
	tr.Dir(filepath.Join(dir, "msi_irqs"))
	for _, irq := range p.MSI {
		tr.File(filepath.Join(dir, "msi_irqs", strconv.Itoa(irq)), "msix")
	}
	tr.Link("sys/bus/pci/devices/"+addr, dir)
	return dir
}

// VF creates a VF of the PF at pfDir: the VF's PCI function next to it,
// pf/virtfnN and vf/physfn.
func (tr *Tree) VF(pfDir string, index int, addr string, p PCI) string {
	p.Parent = strings.TrimPrefix(filepath.Dir(pfDir), "sys/devices/")
	dir := tr.PCIDevice(addr, p)
	tr.Link(filepath.Join(pfDir, fmt.Sprintf("virtfn%d", index)), dir)
	tr.Link(filepath.Join(dir, "physfn"), pfDir)
	return dir
}

// BusDevice creates a non-PCI bus device (virtio) below a PCI function
// with its driver link on bus.
func (tr *Tree) BusDevice(parentDir, name, bus, driver string) string {
	dir := filepath.Join(parentDir, name)
	tr.Dir(dir)
	tr.Link(filepath.Join(dir, "driver"), fmt.Sprintf("sys/bus/%s/drivers/%s", bus, driver))
	tr.Link(filepath.Join(dir, "subsystem"), "sys/bus/"+bus)
	tr.Dir(fmt.Sprintf("sys/bus/%s/drivers/%s", bus, driver))
	return dir
}

// Netdev describes a network device.
type Netdev struct {
	Device   string // bus device directory relative to Root; "" for a virtual device
	Index    int
	MTU      int
	Oper     string
	RX, TX   int
	SwitchID string
	PortName string
	DevType  string
	Type     int // ARPHRD; default 1 (ether)
}

// NetdevDir returns the directory of netdev name relative to Root.
func (tr *Tree) NetdevDir(name string) string {
	p, err := filepath.EvalSymlinks(filepath.Join(tr.Root, "sys/class/net", name))
	if err != nil {
		tr.t.Fatal(err)
	}
	r, _ := filepath.Rel(tr.Root, p)
	return r
}

// Netdev creates a network device and its sys/class/net link.
func (tr *Tree) Netdev(name string, n Netdev) string {
	parent := "sys/devices/virtual/net"
	if n.Device != "" {
		parent = filepath.Join(n.Device, "net")
	}
	dir := filepath.Join(parent, name)
	tr.Dir(dir)
	if n.Device != "" {
		tr.Link(filepath.Join(dir, "device"), n.Device)
	}
	if n.Type == 0 {
		n.Type = 1
	}
	if n.MTU == 0 {
		n.MTU = 1500
	}
	if n.Oper == "" {
		n.Oper = "up"
	}
	if n.RX == 0 {
		n.RX = 1
	}
	if n.TX == 0 {
		n.TX = n.RX
	}
	tr.File(filepath.Join(dir, "ifindex"), strconv.Itoa(n.Index))
	tr.File(filepath.Join(dir, "mtu"), strconv.Itoa(n.MTU))
	tr.File(filepath.Join(dir, "operstate"), n.Oper)
	tr.File(filepath.Join(dir, "type"), strconv.Itoa(n.Type))
	ue := fmt.Sprintf("INTERFACE=%s\nIFINDEX=%d", name, n.Index)
	if n.DevType != "" {
		ue = "DEVTYPE=" + n.DevType + "\n" + ue
	}
	tr.File(filepath.Join(dir, "uevent"), ue)
	for i := range n.RX {
		tr.Dir(filepath.Join(dir, "queues", fmt.Sprintf("rx-%d", i)))
	}
	for i := range n.TX {
		tr.Dir(filepath.Join(dir, "queues", fmt.Sprintf("tx-%d", i)))
	}
	if n.SwitchID != "" {
		tr.File(filepath.Join(dir, "phys_switch_id"), n.SwitchID)
	}
	if n.PortName != "" {
		tr.File(filepath.Join(dir, "phys_port_name"), n.PortName)
	}
	tr.Link("sys/class/net/"+name, dir)
	return dir
}

// Upper records that upper sits on lower (upper_/lower_ links).
func (tr *Tree) Upper(upper, lower string) {
	u, l := tr.NetdevDir(upper), tr.NetdevDir(lower)
	tr.Link(filepath.Join(l, "upper_"+upper), u)
	tr.Link(filepath.Join(u, "lower_"+lower), l)
}

// Bond creates a bonding master over slaves (which must exist).
func (tr *Tree) Bond(name string, index int, mode, hash string, mtu int, slaves ...string) {
	dir := tr.Netdev(name, Netdev{Index: index, MTU: mtu, DevType: "bond", RX: 16})
	tr.File(filepath.Join(dir, "bonding/mode"), mode)
	tr.File(filepath.Join(dir, "bonding/xmit_hash_policy"), hash)
	tr.File(filepath.Join(dir, "bonding/slaves"), strings.Join(slaves, " "))
	for _, s := range slaves {
		sd := tr.NetdevDir(s)
		tr.Link(filepath.Join(sd, "master"), dir)
		tr.Dir(filepath.Join(sd, "bonding_slave"))
		tr.Upper(name, s)
	}
}

// VLAN creates an 802.1Q device on lower and appends it to
// proc/net/vlan/config.
func (tr *Tree) VLAN(name string, index, id int, lower string) {
	tr.Netdev(name, Netdev{Index: index, DevType: "vlan"})
	tr.Upper(name, lower)
	cfg := filepath.Join(tr.Root, "proc/net/vlan/config")
	old, err := os.ReadFile(cfg)
	if err != nil {
		old = []byte("VLAN Dev name\t | VLAN ID\nName-Type: VLAN_NAME_TYPE_RAW_PLUS_VID_NO_PAD\n")
	}
	tr.File("proc/net/vlan/config", strings.TrimRight(string(old), "\n")+fmt.Sprintf("\n%-15s| %d  | %s", name, id, lower))
}

// Bridge creates a bridge with ports.
func (tr *Tree) Bridge(name string, index int, ports ...string) {
	dir := tr.Netdev(name, Netdev{Index: index, DevType: "bridge"})
	tr.Dir(filepath.Join(dir, "bridge"))
	tr.Dir(filepath.Join(dir, "brif"))
	for _, p := range ports {
		pd := tr.NetdevDir(p)
		tr.Link(filepath.Join(dir, "brif", p), filepath.Join(pd, "brport"))
		tr.Dir(filepath.Join(pd, "brport"))
		tr.Link(filepath.Join(pd, "master"), dir)
		tr.Upper(name, p)
	}
}

// Interrupt is one /proc/interrupts line with its affinity.
type Interrupt struct {
	IRQ       int
	Chip      string // e.g. "IR-PCI-MSIX-0000:3b:00.0"
	HWIRQ     string // e.g. "1572865-edge"
	Name      string
	Affinity  string // smp_affinity_list
	Effective string // effective_affinity_list; "" = same as Affinity
}

// IRQ adds interrupts; WriteInterrupts writes them out.
func (tr *Tree) IRQ(in ...Interrupt) { tr.irqs = append(tr.irqs, in...) }

// WriteInterrupts writes proc/interrupts and proc/irq/N/*affinity_list.
func (tr *Tree) WriteInterrupts() {
	sort.Slice(tr.irqs, func(i, j int) bool { return tr.irqs[i].IRQ < tr.irqs[j].IRQ })
	var b strings.Builder
	b.WriteString("     ")
	for c := range tr.ncpu {
		fmt.Fprintf(&b, " %10s", fmt.Sprintf("CPU%d", c))
	}
	b.WriteString("\n")
	for _, in := range tr.irqs {
		fmt.Fprintf(&b, "%4d:", in.IRQ)
		for c := range tr.ncpu {
			fmt.Fprintf(&b, " %10d", (in.IRQ*7+c*13)%1000)
		}
		fmt.Fprintf(&b, "  %s  %s  %s\n", in.Chip, in.HWIRQ, in.Name)
		tr.File(fmt.Sprintf("proc/irq/%d/smp_affinity_list", in.IRQ), in.Affinity)
		eff := in.Effective
		if eff == "" {
			eff = in.Affinity
		}
		tr.File(fmt.Sprintf("proc/irq/%d/effective_affinity_list", in.IRQ), eff)
	}
	b.WriteString(" NMI:")
	for range tr.ncpu {
		b.WriteString("          0")
	}
	b.WriteString("   Non-maskable interrupts\n")
	tr.File("proc/interrupts", strings.TrimRight(b.String(), "\n"))
}
