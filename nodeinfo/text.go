package nodeinfo

import (
	"fmt"
	"strings"
)

// Text renders the status for people: devices, decisions with their
// reasons, attach plans with warnings and errors, and the IRQ/NUMA report.
func (s Status) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kernel %s, %d CPUs", s.Kernel, s.CPUs)
	if n := len(s.IRQ.Topology.Nodes); n > 0 {
		fmt.Fprintf(&b, ", %d NUMA node(s)", n)
	}
	b.WriteString("\ndevices:\n")
	for _, d := range s.Devices {
		fmt.Fprintf(&b, "  %s: kind=%s", d.Name, d.Kind)
		if d.Driver != "" {
			fmt.Fprintf(&b, " driver=%s", d.Driver)
		}
		if d.PCIAddress != "" {
			fmt.Fprintf(&b, " pci=%s", d.PCIAddress)
		}
		if d.Role != "" {
			fmt.Fprintf(&b, " role=%s", d.Role)
		}
		fmt.Fprintf(&b, " numa=%d rxq=%d mtu=%d", d.NUMANode, d.RXQueues, d.MTU)
		if d.OperState != "" {
			fmt.Fprintf(&b, " state=%s", d.OperState)
		}
		if d.Master != "" {
			fmt.Fprintf(&b, " master=%s", d.Master)
		}
		if d.VLAN != nil {
			fmt.Fprintf(&b, " vlan=%d@%s", d.VLAN.ID, d.VLAN.Lower)
		}
		if d.Switch != nil {
			fmt.Fprintf(&b, " switch=%s port=%s", d.Switch.SwitchID, d.Switch.PortName)
		}
		if on, ok := d.Feature("rx-lro"); ok {
			fmt.Fprintf(&b, " lro=%v", on)
		}
		for _, a := range d.Addrs {
			fmt.Fprintf(&b, " %s", a)
		}
		b.WriteString("\n")
	}
	b.WriteString("decisions:\n")
	for _, d := range s.Decisions {
		fmt.Fprintf(&b, "  %s\n", d)
	}
	b.WriteString("plans:\n")
	for _, p := range s.Plans {
		fmt.Fprintf(&b, "  %s: %s XDP (driver %s)\n", p.Device, p.Mode, p.Driver)
		for _, e := range p.Errors {
			fmt.Fprintf(&b, "    ERROR: %s\n", e)
		}
		for _, w := range p.Warnings {
			fmt.Fprintf(&b, "    warning: %s\n", w)
		}
	}
	b.WriteString("irq:\n")
	for _, r := range s.IRQ.Devices {
		fmt.Fprintf(&b, "  %s", r.Device)
		if r.Via != "" {
			fmt.Fprintf(&b, " (via %s)", r.Via)
		}
		if r.Software {
			b.WriteString(": software device, no IRQs of its own\n")
		} else if len(r.IRQs) == 0 {
			fmt.Fprintf(&b, ": numa=%d, no IRQs found\n", r.NUMANode)
		} else {
			fmt.Fprintf(&b, ": numa=%d queue IRQs=%d on CPUs %s, remote=%d\n", r.NUMANode, r.QueueIRQs, r.QueueCPUs, r.RemoteQueueIRQs)
		}
		for _, w := range r.Warnings {
			fmt.Fprintf(&b, "    warning: %s\n", w)
		}
	}
	if s.Pinning != nil {
		fmt.Fprintf(&b, "pinning: %s\n", s.Pinning.Explanation)
	}
	if s.Steal != nil {
		fmt.Fprintf(&b, "steal: %.3f (threshold %.3f)\n", s.Steal.Fraction, s.Steal.Threshold)
		if s.Steal.Warning != "" {
			fmt.Fprintf(&b, "  warning: %s\n", s.Steal.Warning)
		}
	}
	for _, p := range s.Problems {
		fmt.Fprintf(&b, "problem: %s\n", p)
	}
	return b.String()
}
