package cpuinfo

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/straitlb/strait/nodeinfo/hostfs"
)

// Topology maps NUMA nodes to their CPUs.
type Topology struct {
	Online CPUSet         `json:"online"`
	Nodes  map[int]CPUSet `json:"nodes"`
}

// ReadTopology reads <sys>/devices/system/cpu/online and the node*/cpulist
// files. Without NUMA information every online CPU is on node 0.
func ReadTopology(fs hostfs.FS) (Topology, error) {
	t := Topology{Nodes: map[int]CPUSet{}}
	online, err := hostfs.ReadString(fs.SysPath("devices", "system", "cpu", "online"))
	if err == nil {
		if t.Online, err = ParseCPUList(online); err != nil {
			return t, err
		}
	}
	nodeDir := fs.SysPath("devices", "system", "node")
	for _, n := range hostfs.ListPrefix(nodeDir, "node") {
		id, err := strconv.Atoi(strings.TrimPrefix(n, "node"))
		if err != nil {
			continue
		}
		s, err := hostfs.ReadString(filepath.Join(nodeDir, n, "cpulist"))
		if err != nil {
			continue
		}
		cpus, err := ParseCPUList(s)
		if err != nil {
			return t, fmt.Errorf("node %d: %w", id, err)
		}
		t.Nodes[id] = cpus
	}
	if len(t.Online) == 0 {
		for _, c := range t.Nodes {
			t.Online = t.Online.Union(c)
		}
	}
	if len(t.Nodes) == 0 && len(t.Online) > 0 {
		t.Nodes[0] = t.Online
	}
	if len(t.Online) == 0 {
		return t, fmt.Errorf("no online CPUs found under %s", fs.SysPath("devices", "system"))
	}
	return t, nil
}

// NodeOf returns the NUMA node of cpu, or -1.
func (t Topology) NodeOf(cpu int) int {
	for n, cpus := range t.Nodes {
		if cpus.Contains(cpu) {
			return n
		}
	}
	return -1
}

// NodesOf returns the sorted NUMA nodes of cpus.
func (t Topology) NodesOf(cpus CPUSet) []int {
	seen := map[int]bool{}
	var out []int
	for _, c := range cpus {
		if n := t.NodeOf(c); n >= 0 && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out
}

// NodeIDs returns the sorted node numbers.
func (t Topology) NodeIDs() []int {
	var out []int
	for n := range t.Nodes {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}
