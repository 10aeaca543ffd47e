package nodeinfo

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/straitlb/strait/nodeinfo/choice"
	"github.com/straitlb/strait/nodeinfo/cpuinfo"
	"github.com/straitlb/strait/nodeinfo/hostfs"
	"github.com/straitlb/strait/nodeinfo/netdev"
	"github.com/straitlb/strait/nodeinfo/steal"
	"github.com/straitlb/strait/nodeinfo/xdpplan"
)

// Config is the agent's device configuration.
type Config struct {
	// Devices lists device names or glob patterns; empty chooses
	// automatically (devices carrying node addresses or default routes).
	Devices []string `json:"devices,omitempty"`
	// NodeAddresses are the node's addresses (from the Node object).
	NodeAddresses []netip.Addr `json:"nodeAddresses,omitempty"`
	// NativeOnly fails planning instead of falling back to generic XDP.
	NativeOnly bool `json:"nativeOnly,omitempty"`
	// Frags: the XDP program is multi-buffer aware (Strait's is not).
	Frags bool `json:"frags,omitempty"`
	// PlanPinning adds a CPU pinning plan for the agent's threads to the
	// status. Applying it (cpuinfo.ApplyPinning) is separate; both are off
	// by default.
	PlanPinning bool `json:"planPinning,omitempty"`
	// PinNode is the NUMA node to pin to; -1 (or nil) picks the node of the
	// chosen devices.
	PinNode *int `json:"pinNode,omitempty"`
}

// Inspector gathers a Status. FS, Net and Ethtool are the sources
// (hostfs.Real(), netdev.NetlinkSource{} and netdev.NewEthtoolIoctl() on a
// real node).
type Inspector struct {
	FS      hostfs.FS
	Net     netdev.NetSource
	Ethtool netdev.Ethtool
	Config  Config
	// AllowedCPUs restricts the pinning plan (the agent's cpuset); nil
	// allows every online CPU.
	AllowedCPUs cpuinfo.CPUSet
	// Steal, when set, adds the steal monitor's view to the status.
	Steal *steal.Monitor
	// Now defaults to time.Now.
	Now func() time.Time
}

// Status is everything the agent reports about the node's devices.
type Status struct {
	Time   time.Time `json:"time"`
	Kernel string    `json:"kernel,omitempty"`
	CPUs   int       `json:"cpus"`

	Devices   []netdev.Device   `json:"devices"`
	Decisions []choice.Decision `json:"decisions"`
	Chosen    []string          `json:"chosen"`
	Missing   []string          `json:"missing,omitempty"`
	Plans     []xdpplan.Plan    `json:"plans"`
	IRQ       cpuinfo.Report    `json:"irq"`
	Pinning   *cpuinfo.PinPlan  `json:"pinning,omitempty"`
	Steal     *steal.Status     `json:"steal,omitempty"`
	// Problems are things that could not be read; the rest of the status
	// is still valid.
	Problems []string `json:"problems,omitempty"`
}

// Plan returns the plan for a device.
func (s Status) Plan(dev string) (xdpplan.Plan, bool) {
	for _, p := range s.Plans {
		if p.Device == dev {
			return p, true
		}
	}
	return xdpplan.Plan{}, false
}

// Decision returns the decision on a device.
func (s Status) Decision(dev string) (choice.Decision, bool) {
	return choice.Result{Decisions: s.Decisions}.Decision(dev)
}

// Inspect runs discovery, choice, planning and the IRQ/NUMA report once.
func (in *Inspector) Inspect() (Status, error) {
	now := time.Now
	if in.Now != nil {
		now = in.Now
	}
	st := Status{Time: now()}
	st.Kernel = hostfs.ReadStringOr(in.FS.ProcPath("sys", "kernel", "osrelease"), "")

	devs, err := netdev.Discover(netdev.Source{FS: in.FS, Net: in.Net, Ethtool: in.Ethtool})
	if err != nil {
		return st, err
	}
	st.Devices = devs

	topo, err := cpuinfo.ReadTopology(in.FS)
	if err != nil {
		st.Problems = append(st.Problems, fmt.Sprintf("CPU topology: %v", err))
	}
	st.CPUs = len(topo.Online)

	res := choice.Choose(devs, choice.Config{Devices: in.Config.Devices, NodeAddresses: in.Config.NodeAddresses})
	st.Decisions, st.Chosen, st.Missing = res.Decisions, res.Chosen, res.Missing

	st.Plans = xdpplan.PlanAll(devs, res.Chosen, xdpplan.Options{
		NativeOnly: in.Config.NativeOnly,
		Frags:      in.Config.Frags,
		Kernel:     st.Kernel,
		CPUs:       st.CPUs,
	})

	ints, err := cpuinfo.ReadInterrupts(in.FS)
	if err != nil {
		st.Problems = append(st.Problems, fmt.Sprintf("interrupts: %v", err))
	}
	st.IRQ = cpuinfo.BuildReport(in.FS, topo, ints, devs, res.Chosen)

	if in.Config.PlanPinning {
		node := -1
		if in.Config.PinNode != nil {
			node = *in.Config.PinNode
		}
		p := cpuinfo.PlanPinning(st.IRQ, node, in.AllowedCPUs)
		st.Pinning = &p
	}
	if in.Steal != nil {
		s := in.Steal.Status()
		st.Steal = &s
	}
	return st, nil
}
