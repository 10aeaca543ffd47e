package cpuinfo

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// PinPlan proposes CPUs for the agent's threads.
type PinPlan struct {
	Node        int    `json:"node"`
	CPUs        CPUSet `json:"cpus"`
	Explanation string `json:"explanation"`
}

// PlanPinning chooses CPUs of one NUMA node that serve no NIC queue IRQ.
// node < 0 picks the node of the chosen devices (the one with the most RX
// queues), else node 0. allowed restricts the choice (the agent's cpuset);
// nil allows every online CPU.
func PlanPinning(rep Report, node int, allowed CPUSet) PinPlan {
	topo := rep.Topology
	why := ""
	if node < 0 {
		node, why = pickNode(rep)
	} else {
		why = "configured"
	}
	plan := PinPlan{Node: node}
	cands := topo.Nodes[node].Intersect(topo.Online)
	if allowed != nil {
		cands = cands.Intersect(allowed)
	}
	if len(cands) == 0 {
		plan.Explanation = fmt.Sprintf("no allowed CPU on NUMA node %d (%s): not pinning", node, why)
		return plan
	}
	var busy CPUSet
	for _, d := range rep.Devices {
		busy = busy.Union(d.QueueCPUs)
	}
	free := cands.Minus(busy)
	if len(free) == 0 {
		plan.CPUs = cands
		plan.Explanation = fmt.Sprintf("every allowed CPU of NUMA node %d (%s) serves NIC queue IRQs: pinning agent threads to all of them, %s", node, why, cands)
		return plan
	}
	plan.CPUs = free
	plan.Explanation = fmt.Sprintf("pin agent threads to CPUs %s of NUMA node %d (%s)", free, node, why)
	if b := cands.Intersect(busy); len(b) > 0 {
		plan.Explanation += fmt.Sprintf(": CPUs %s of that node serve NIC queue IRQs", b)
	}
	return plan
}

func pickNode(rep Report) (int, string) {
	queues := map[int]int{}
	devs := map[int][]string{}
	for _, d := range rep.Devices {
		if d.NUMANode < 0 {
			continue
		}
		queues[d.NUMANode] += max(d.RXQueues, 1)
		devs[d.NUMANode] = append(devs[d.NUMANode], d.Device)
	}
	if len(queues) == 0 {
		return 0, "no chosen device reports a NUMA node"
	}
	nodes := make([]int, 0, len(queues))
	for n := range queues {
		nodes = append(nodes, n)
	}
	sort.Ints(nodes)
	best := nodes[0]
	for _, n := range nodes[1:] {
		if queues[n] > queues[best] {
			best = n
		}
	}
	return best, "node of " + strings.Join(devs[best], ", ")
}

// CurrentAffinity returns the calling thread's allowed CPUs.
func CurrentAffinity() (CPUSet, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, err
	}
	var out []int
	for c := 0; c < len(set)*64; c++ {
		if set.IsSet(c) {
			out = append(out, c)
		}
	}
	return NewCPUSet(out...), nil
}

// ApplyPinning restricts every thread of this process to cpus with
// sched_setaffinity. Threads the Go runtime starts later inherit the mask
// of the thread that creates them. Off by default: the agent calls it only
// when pinning is enabled.
func ApplyPinning(cpus CPUSet) error {
	if len(cpus) == 0 {
		return fmt.Errorf("apply pinning: empty CPU set")
	}
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("apply pinning: %w", err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
			return fmt.Errorf("apply pinning to thread %d: %w", tid, err)
		}
	}
	return nil
}
