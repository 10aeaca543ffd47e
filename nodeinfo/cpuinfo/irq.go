package cpuinfo

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/straitlb/strait/nodeinfo/hostfs"
	"github.com/straitlb/strait/nodeinfo/netdev"
)

// Interrupt is one numbered line of /proc/interrupts.
type Interrupt struct {
	IRQ    int      `json:"irq"`
	Counts []uint64 `json:"counts"` // per CPU column
	// Desc is everything after the counts: chip, hardware IRQ, trigger and
	// action names, e.g. "PCI-MSIX-0000:00:03.0 1-edge virtio2-input.0".
	Desc string `json:"desc"`
	// Name is the last field of Desc: the action name.
	Name string `json:"name"`
}

// Total returns the sum of the per-CPU counts.
func (i Interrupt) Total() uint64 {
	var t uint64
	for _, c := range i.Counts {
		t += c
	}
	return t
}

// ReadInterrupts reads <proc>/interrupts.
func ReadInterrupts(fs hostfs.FS) ([]Interrupt, error) {
	f, err := os.Open(fs.ProcPath("interrupts"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseInterrupts(f)
}

// ParseInterrupts parses /proc/interrupts. Lines of non-numbered
// interrupts (NMI, LOC, ...) are skipped.
func ParseInterrupts(r io.Reader) ([]Interrupt, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	ncpu := -1
	var out []Interrupt
	for sc.Scan() {
		line := sc.Text()
		if ncpu < 0 {
			ncpu = len(strings.Fields(line))
			continue
		}
		head, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		irq, err := strconv.Atoi(strings.TrimSpace(head))
		if err != nil {
			continue
		}
		f := strings.Fields(rest)
		in := Interrupt{IRQ: irq}
		i := 0
		for ; i < len(f) && i < ncpu; i++ {
			n, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				break
			}
			in.Counts = append(in.Counts, n)
		}
		if i < len(f) {
			in.Desc = strings.Join(f[i:], " ")
			in.Name = f[len(f)-1]
		}
		out = append(out, in)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if ncpu < 0 {
		return nil, fmt.Errorf("empty interrupts file")
	}
	return out, nil
}

// IRQ is one interrupt of a device and the CPUs serving it.
type IRQ struct {
	IRQ  int    `json:"irq"`
	Name string `json:"name"`
	// Queue says the IRQ serves a queue (not the config, control or async
	// event vector).
	Queue bool `json:"queue"`
	// CPUs serve the IRQ: the effective affinity, or the allowed one.
	CPUs CPUSet `json:"cpus"`
	// Allowed is smp_affinity_list.
	Allowed CPUSet `json:"allowed"`
	Nodes   []int  `json:"nodes,omitempty"`
	Count   uint64 `json:"count"`
}

// DeviceReport is the IRQ and NUMA picture of one device.
type DeviceReport struct {
	Device string `json:"device"`
	// Via names the chosen device this one serves (a bond's slave).
	Via        string `json:"via,omitempty"`
	Driver     string `json:"driver,omitempty"`
	PCIAddress string `json:"pciAddress,omitempty"`
	NUMANode   int    `json:"numaNode"`
	RXQueues   int    `json:"rxQueues"`
	// Software devices (veth, bridge, ...) have no IRQs of their own.
	Software bool  `json:"software,omitempty"`
	IRQs     []IRQ `json:"irqs,omitempty"`
	// QueueCPUs serve the device's queue IRQs.
	QueueCPUs       CPUSet   `json:"queueCPUs,omitempty"`
	QueueIRQs       int      `json:"queueIRQs"`
	RemoteQueueIRQs int      `json:"remoteQueueIRQs"`
	Warnings        []string `json:"warnings,omitempty"`
}

// Report covers the chosen devices.
type Report struct {
	Topology Topology       `json:"topology"`
	Devices  []DeviceReport `json:"devices"`
}

// Warnings returns every device warning.
func (r Report) Warnings() []string {
	var out []string
	for _, d := range r.Devices {
		out = append(out, d.Warnings...)
	}
	return out
}

// BuildReport reports on the chosen devices (bonds through their slaves).
// ints is /proc/interrupts (ReadInterrupts).
func BuildReport(fs hostfs.FS, topo Topology, ints []Interrupt, devs []netdev.Device, chosen []string) Report {
	byName := netdev.ByName(devs)
	rep := Report{Topology: topo}
	for _, name := range chosen {
		d := byName[name]
		if d == nil {
			continue
		}
		if d.Bond != nil {
			for _, s := range d.Bond.Slaves {
				if sd := byName[s]; sd != nil {
					rep.Devices = append(rep.Devices, deviceReport(fs, topo, ints, sd, name))
				}
			}
			continue
		}
		rep.Devices = append(rep.Devices, deviceReport(fs, topo, ints, d, ""))
	}
	return rep
}

func deviceReport(fs hostfs.FS, topo Topology, ints []Interrupt, d *netdev.Device, via string) DeviceReport {
	r := DeviceReport{Device: d.Name, Via: via, Driver: d.Driver, PCIAddress: d.PCIAddress, NUMANode: d.NUMANode, RXQueues: d.RXQueues}
	if d.Virtual {
		r.Software = true
		return r
	}
	if d.Role == netdev.RoleRepresentor {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%s is a representor: its packets arrive through the IRQs of its PF", d.Name))
		return r
	}
	msi := map[int]bool{}
	if d.PCIAddress != "" {
		names, _ := hostfs.List(fs.SysPath("bus", "pci", "devices", d.PCIAddress, "msi_irqs"))
		for _, n := range names {
			if irq, err := strconv.Atoi(n); err == nil {
				msi[irq] = true
			}
		}
	}
	for _, in := range ints {
		if !msi[in.IRQ] && !namesDevice(in, d) {
			continue
		}
		// A vector named just after the device (ixgbe, igb) is its misc vector.
		irq := IRQ{IRQ: in.IRQ, Name: in.Name, Queue: in.Name != d.Name && isQueueIRQ(in.Name), Count: in.Total()}
		irqDir := fs.ProcPath("irq", strconv.Itoa(in.IRQ))
		irq.Allowed, _ = ParseCPUList(hostfs.ReadStringOr(filepath.Join(irqDir, "smp_affinity_list"), ""))
		irq.CPUs, _ = ParseCPUList(hostfs.ReadStringOr(filepath.Join(irqDir, "effective_affinity_list"), ""))
		if len(irq.CPUs) == 0 {
			irq.CPUs = irq.Allowed
		}
		irq.Nodes = topo.NodesOf(irq.CPUs)
		r.IRQs = append(r.IRQs, irq)
	}
	var remote []int
	var remoteCPUs CPUSet
	for _, irq := range r.IRQs {
		if !irq.Queue {
			continue
		}
		r.QueueIRQs++
		r.QueueCPUs = r.QueueCPUs.Union(irq.CPUs)
		if d.NUMANode >= 0 && len(irq.Nodes) > 0 && !slices.Contains(irq.Nodes, d.NUMANode) {
			remote = append(remote, irq.IRQ)
			remoteCPUs = remoteCPUs.Union(irq.CPUs)
		}
	}
	r.RemoteQueueIRQs = len(remote)
	who := d.Name
	if via != "" {
		who = fmt.Sprintf("%s (slave of %s)", d.Name, via)
	}
	switch {
	case len(r.IRQs) == 0:
		r.Warnings = append(r.Warnings, fmt.Sprintf("no IRQs found for %s (driver %s): cannot check which CPUs serve its queues", who, d.Driver))
	case len(remote) > 0:
		local := topo.Nodes[d.NUMANode]
		r.Warnings = append(r.Warnings, fmt.Sprintf(
			"%s is on NUMA node %d but %d of %d queue IRQs (IRQs %s) are served by CPUs %s on node %s: every packet crosses the socket interconnect; move them to node %d's CPUs %s (echo %s > /proc/irq/N/smp_affinity_list, or irqbalance with NUMA hints)",
			who, d.NUMANode, len(remote), r.QueueIRQs, NewCPUSet(remote...), remoteCPUs, joinInts(topo.NodesOf(remoteCPUs)), d.NUMANode, local, local))
	}
	if d.NUMANode < 0 && len(topo.Nodes) > 1 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%s reports no NUMA node (numa_node -1) on a %d-node machine: its locality is unknown (firmware did not describe it)", who, len(topo.Nodes)))
	}
	return r
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// namesDevice reports whether an interrupt line names the device (as a
// whole token: "ice-ens1f0-TxRx-3", "ens1f0-rx-0", "eno1-TxRx-0") or its
// PCI address ("mlx5_comp3@pci:0000:af:00.0", "PCI-MSIX-0000:00:03.0").
func namesDevice(in Interrupt, d *netdev.Device) bool {
	if d.PCIAddress != "" && strings.Contains(in.Desc, d.PCIAddress) {
		return true
	}
	return containsToken(in.Name, d.Name)
}

func containsToken(s, tok string) bool {
	if tok == "" {
		return false
	}
	for i := 0; ; {
		j := strings.Index(s[i:], tok)
		if j < 0 {
			return false
		}
		j += i
		before := j == 0 || strings.ContainsRune("-_@:. ", rune(s[j-1]))
		end := j + len(tok)
		after := end == len(s) || strings.ContainsRune("-_@: ", rune(s[end]))
		if before && after {
			return true
		}
		i = j + 1
	}
}

// isQueueIRQ tells queue vectors from configuration, control, mailbox and
// async-event vectors by name.
func isQueueIRQ(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"config", "async", "ctrl", "control", "mbx", "mailbox", "misc", "cmd", "pages", "-ae", "event"} {
		if strings.Contains(n, s) {
			return false
		}
	}
	return true
}
