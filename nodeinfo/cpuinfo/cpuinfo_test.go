package cpuinfo_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/straitlb/strait/nodeinfo/cpuinfo"
	"github.com/straitlb/strait/nodeinfo/internal/layouts"
	"github.com/straitlb/strait/nodeinfo/netdev"
)

func TestCPUList(t *testing.T) {
	for in, want := range map[string]string{"0-3,8,10-11": "0-3,8,10-11", "3,1,2": "1-3", "": "", "5": "5", "0-1,1-2": "0-2"} {
		s, err := cpuinfo.ParseCPUList(in)
		if err != nil || s.String() != want {
			t.Errorf("%q: %v %v, want %q", in, s, err, want)
		}
	}
	for _, bad := range []string{"a", "3-1", "1-", "0-99999999"} {
		if _, err := cpuinfo.ParseCPUList(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	a, _ := cpuinfo.ParseCPUList("0-7")
	b, _ := cpuinfo.ParseCPUList("4-11")
	if a.Intersect(b).String() != "4-7" || a.Minus(b).String() != "0-3" || a.Union(b).String() != "0-11" {
		t.Error("set operations")
	}
	j, _ := json.Marshal(struct{ C cpuinfo.CPUSet }{a})
	if string(j) != `{"C":"0-7"}` {
		t.Errorf("json %s", j)
	}
	var back struct{ C cpuinfo.CPUSet }
	if err := json.Unmarshal(j, &back); err != nil || back.C.String() != "0-7" {
		t.Errorf("unmarshal %v %v", back, err)
	}
}

const interrupts = `           CPU0       CPU1       CPU2       CPU3
  0:         26          0          0          0   IO-APIC   2-edge      timer
 38:          0       9634          0          0  PCI-MSIX-0000:00:03.0   1-edge      virtio2-input.0
 90:    1234567          0          0          0  IR-PCI-MSI 1572864-edge      ens1f0
 91:          5     123456          0          0  IR-PCI-MSI 1572865-edge      ens1f0-TxRx-0
 92:          1          2          3          4  IR-PCI-MSI 1572866-edge      ens1f0-TxRx-1
 93:          0          0          0          0  IR-PCI-MSI 1574912-edge      ens1f01-TxRx-0
 94:          0          0          7          0  IR-PCI-MSIX-0000:af:00.0   5-edge      mlx5_comp4@pci:0000:af:00.0
NMI:          0          0          0          0   Non-maskable interrupts
LOC:    2075875    2066924    2075875    2066924   Local timer interrupts
ERR:          0
`

func TestParseInterrupts(t *testing.T) {
	ints, err := cpuinfo.ParseInterrupts(strings.NewReader(interrupts))
	if err != nil {
		t.Fatal(err)
	}
	if len(ints) != 7 {
		t.Fatalf("%d lines: %+v", len(ints), ints)
	}
	in := ints[3]
	if in.IRQ != 91 || in.Name != "ens1f0-TxRx-0" || in.Desc != "IR-PCI-MSI 1572865-edge ens1f0-TxRx-0" || in.Total() != 123461 || len(in.Counts) != 4 {
		t.Errorf("%+v", in)
	}
	if ints[6].Name != "mlx5_comp4@pci:0000:af:00.0" {
		t.Errorf("%+v", ints[6])
	}
}

// The IRQs of ens1f0 are found by name, without confusing ens1f01, and its
// misc vector (named just "ens1f0") is not a queue.
func TestReportMatchesByNameAndAddress(t *testing.T) {
	tr := layouts.NewTree(t)
	tr.CPUs("0-3", map[int]string{0: "0-1", 1: "2-3"})
	tr.File("proc/interrupts", strings.TrimSpace(interrupts))
	for _, irq := range []string{"90", "91", "92", "93", "94"} {
		tr.File("proc/irq/"+irq+"/smp_affinity_list", "0-3")
	}
	tr.File("proc/irq/91/effective_affinity_list", "1")
	tr.File("proc/irq/92/effective_affinity_list", "2")
	tr.File("proc/irq/94/effective_affinity_list", "3")
	fs := tr.FS()
	topo, err := cpuinfo.ReadTopology(fs)
	if err != nil {
		t.Fatal(err)
	}
	ints, err := cpuinfo.ReadInterrupts(fs)
	if err != nil {
		t.Fatal(err)
	}
	devs := []netdev.Device{
		{Name: "ens1f0", Driver: "i40e", NUMANode: 0, RXQueues: 2},
		{Name: "ens2f0np0", Driver: "mlx5_core", PCIAddress: "0000:af:00.0", NUMANode: 1, RXQueues: 1},
		{Name: "ens9", Driver: "ice", NUMANode: -1},
	}
	rep := cpuinfo.BuildReport(fs, topo, ints, devs, []string{"ens1f0", "ens2f0np0", "ens9"})
	r := rep.Devices[0]
	var irqs []int
	for _, i := range r.IRQs {
		irqs = append(irqs, i.IRQ)
	}
	if !slices.Equal(irqs, []int{90, 91, 92}) || r.IRQs[0].Queue || r.QueueIRQs != 2 || r.QueueCPUs.String() != "1-2" || r.RemoteQueueIRQs != 1 {
		t.Errorf("ens1f0 report: %+v", r)
	}
	want := "ens1f0 is on NUMA node 0 but 1 of 2 queue IRQs (IRQs 92) are served by CPUs 2 on node 1: every packet crosses the socket interconnect; move them to node 0's CPUs 0-1 (echo 0-1 > /proc/irq/N/smp_affinity_list, or irqbalance with NUMA hints)"
	if len(r.Warnings) != 1 || r.Warnings[0] != want {
		t.Errorf("ens1f0 warnings %q", r.Warnings)
	}
	if m := rep.Devices[1]; len(m.IRQs) != 1 || m.IRQs[0].IRQ != 94 || m.RemoteQueueIRQs != 0 || len(m.Warnings) != 0 {
		t.Errorf("mlx5 by PCI address: %+v", m)
	}
	if w := rep.Devices[2].Warnings; len(w) != 2 ||
		w[0] != "no IRQs found for ens9 (driver ice): cannot check which CPUs serve its queues" ||
		w[1] != "ens9 reports no NUMA node (numa_node -1) on a 2-node machine: its locality is unknown (firmware did not describe it)" {
		t.Errorf("ens9 warnings %q", w)
	}
}

func TestTopologyWithoutNUMA(t *testing.T) {
	tr := layouts.NewTree(t)
	tr.CPUs("0-3", nil)
	topo, err := cpuinfo.ReadTopology(tr.FS())
	if err != nil {
		t.Fatal(err)
	}
	if len(topo.Nodes) != 1 || topo.Nodes[0].String() != "0-3" || topo.NodeOf(2) != 0 || topo.NodeOf(9) != -1 {
		t.Errorf("%+v", topo)
	}
}

func twoSocketReport(t *testing.T) cpuinfo.Report {
	l := layouts.TwoSocketSRIOV(t)
	devs, err := netdev.Discover(l.Source())
	if err != nil {
		t.Fatal(err)
	}
	topo, err := cpuinfo.ReadTopology(l.FS())
	if err != nil {
		t.Fatal(err)
	}
	ints, err := cpuinfo.ReadInterrupts(l.FS())
	if err != nil {
		t.Fatal(err)
	}
	return cpuinfo.BuildReport(l.FS(), topo, ints, devs, []string{"ens1f0", "ens2f0np0"})
}

func TestCrossNodeIRQs(t *testing.T) {
	rep := twoSocketReport(t)
	ice, mlx := rep.Devices[0], rep.Devices[1]
	if ice.RemoteQueueIRQs != 0 || ice.QueueIRQs != 8 || ice.QueueCPUs.String() != "0-7" || len(ice.Warnings) != 0 {
		t.Errorf("ice: %+v", ice)
	}
	if mlx.RemoteQueueIRQs != 6 || mlx.QueueIRQs != 8 || len(mlx.IRQs) != 9 || mlx.IRQs[0].Queue {
		t.Errorf("mlx5: %+v", mlx)
	}
	if !slices.Equal(mlx.IRQs[1].Nodes, []int{0}) || mlx.IRQs[1].Allowed.String() != "0-15" || mlx.IRQs[1].CPUs.String() != "0" {
		t.Errorf("mlx5 comp0: %+v", mlx.IRQs[1])
	}
	want := "ens2f0np0 is on NUMA node 1 but 6 of 8 queue IRQs (IRQs 200-205) are served by CPUs 0-5 on node 0: every packet crosses the socket interconnect; move them to node 1's CPUs 16-31 (echo 16-31 > /proc/irq/N/smp_affinity_list, or irqbalance with NUMA hints)"
	if w := rep.Warnings(); len(w) != 1 || w[0] != want {
		t.Errorf("warnings %q", w)
	}
}

func TestPinningPlan(t *testing.T) {
	rep := twoSocketReport(t)
	cases := []struct {
		node    int
		allowed string
		cpus    string
		why     string
	}{
		// Both devices have 8 queues: the lower node wins the tie.
		{-1, "", "8-15", "pin agent threads to CPUs 8-15 of NUMA node 0 (node of ens1f0): CPUs 0-7 of that node serve NIC queue IRQs"},
		{1, "", "16-21,24-31", "pin agent threads to CPUs 16-21,24-31 of NUMA node 1 (configured): CPUs 22-23 of that node serve NIC queue IRQs"},
		{0, "4-9", "8-9", "pin agent threads to CPUs 8-9 of NUMA node 0 (configured): CPUs 4-7 of that node serve NIC queue IRQs"},
		{0, "0-7", "0-7", "every allowed CPU of NUMA node 0 (configured) serves NIC queue IRQs: pinning agent threads to all of them, 0-7"},
		{1, "0-15", "", "no allowed CPU on NUMA node 1 (configured): not pinning"},
	}
	for _, c := range cases {
		var allowed cpuinfo.CPUSet
		if c.allowed != "" {
			allowed, _ = cpuinfo.ParseCPUList(c.allowed)
		}
		p := cpuinfo.PlanPinning(rep, c.node, allowed)
		if p.CPUs.String() != c.cpus || p.Explanation != c.why {
			t.Errorf("node %d allowed %q:\n got %s: %s\nwant %s: %s", c.node, c.allowed, p.CPUs, p.Explanation, c.cpus, c.why)
		}
	}
	// A second device on node 1 tips the automatic choice.
	rep.Devices = append(rep.Devices, cpuinfo.DeviceReport{Device: "ens2f1np1", NUMANode: 1, RXQueues: 8})
	if p := cpuinfo.PlanPinning(rep, -1, nil); p.Node != 1 || !strings.Contains(p.Explanation, "(node of ens2f0np0, ens2f1np1)") {
		t.Errorf("auto node: %+v", p)
	}
}

func TestCurrentAffinityAndApply(t *testing.T) {
	cur, err := cpuinfo.CurrentAffinity()
	if err != nil || len(cur) == 0 {
		t.Fatalf("%v %v", cur, err)
	}
	// Re-applying the current mask changes nothing but exercises every thread.
	if err := cpuinfo.ApplyPinning(cur); err != nil {
		t.Fatal(err)
	}
	if err := cpuinfo.ApplyPinning(nil); err == nil {
		t.Error("empty set accepted")
	}
}
