package nodeinfo_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/straitlb/strait/nodeinfo"
	"github.com/straitlb/strait/nodeinfo/internal/layouts"
)

// Each layout's full status text is kept in testdata/<layout>.golden;
// the tests below also spell out the decisions and messages that matter.

func TestLayoutTwoSocketSRIOV(t *testing.T) {
	l := layouts.TwoSocketSRIOV(t)
	st := inspect(t, l, nodeinfo.Config{NodeAddresses: l.NodeAddresses, PlanPinning: true})
	golden(t, "two-socket-sriov", st.Text())

	wantDecisions(t, st, map[string]string{
		"use ens1f0":         "carries node addresses 10.0.0.11, fd00:1::11; the IPv4 default route via 10.0.0.1 and the IPv6 default route via fd00:1::1",
		"use ens2f0np0":      "carries node address 10.1.0.11",
		"skip ens1f0v6":      "SR-IOV VF 6 (0000:3b:01.6) of PF ens1f0 without node address or default route: VFs are normally handed to workloads; name it in the device list to use it",
		"skip ens2f0v6":      "SR-IOV VF 6 (0000:af:01.0) of PF ens2f0np0 without node address or default route: VFs are normally handed to workloads; name it in the device list to use it",
		"skip ens2f0npf0vf3": "switchdev representor of pf0vf3 (VF 0000:af:00.5): it carries only that function's slow-path traffic; name it in the device list to use it",
		"skip ens2f0npf0vf6": "switchdev representor of pf0vf6 (VF 0000:af:01.0, netdev ens2f0v6): it carries only that function's slow-path traffic; name it in the device list to use it",
		"skip lo":            "loopback device",
	})
	d, _ := st.Decision("ens1f0")
	wantStrings(t, "ens1f0 notes", d.Notes, "SR-IOV PF with 8 of 128 VFs enabled (2 on iavf, 6 on vfio-pci); VF netdevs in this namespace: ens1f0v6, ens1f0v7; 6 VFs have no netdev here (vfio-pci, unbound or moved to a pod)")
	d, _ = st.Decision("ens2f0np0")
	wantStrings(t, "ens2f0np0 notes", d.Notes,
		"SR-IOV PF with 8 of 8 VFs enabled (1 unbound, 2 on vfio-pci, 5 on mlx5_core); VF netdevs in this namespace: ens2f0v6; 7 VFs have no netdev here (vfio-pci, unbound or moved to a pod)",
		"switchdev uplink p0 of switch b8cef60300a1b2c3")

	wantPlan(t, st, "ens1f0", "native", nil, nil)
	wantPlan(t, st, "ens2f0np0", "generic", nil, []string{
		"MTU 9000 on ens2f0np0 is above 3498, the largest MTU mlx5_core accepts for single-buffer native XDP; lower it (ip link set dev ens2f0np0 mtu 3498) for native XDP: using generic XDP (slower)",
		"switchdev uplink p0: traffic the eswitch offloads between VFs and the wire bypasses XDP here; only traffic the eswitch sends to the host is seen",
	})
	wantStrings(t, "IRQ warnings", st.IRQ.Warnings(),
		"ens2f0np0 is on NUMA node 1 but 6 of 8 queue IRQs (IRQs 200-205) are served by CPUs 0-5 on node 0: every packet crosses the socket interconnect; move them to node 1's CPUs 16-31 (echo 16-31 > /proc/irq/N/smp_affinity_list, or irqbalance with NUMA hints)")
	if st.Pinning.Explanation != "pin agent threads to CPUs 8-15 of NUMA node 0 (node of ens1f0): CPUs 0-7 of that node serve NIC queue IRQs" {
		t.Errorf("pinning: %s", st.Pinning.Explanation)
	}

	// Native-only: the MTU becomes an error.
	st = inspect(t, l, nodeinfo.Config{NodeAddresses: l.NodeAddresses, NativeOnly: true})
	wantPlan(t, st, "ens2f0np0", "native", []string{
		"native-only mode: MTU 9000 on ens2f0np0 is above 3498, the largest MTU mlx5_core accepts for single-buffer native XDP; lower it (ip link set dev ens2f0np0 mtu 3498) for native XDP",
	}, []string{
		"switchdev uplink p0: traffic the eswitch offloads between VFs and the wire bypasses XDP here; only traffic the eswitch sends to the host is seen",
	})
}

func TestLayoutTwoSocketSRIOVConfigured(t *testing.T) {
	l := layouts.TwoSocketSRIOV(t)
	st := inspect(t, l, nodeinfo.Config{Devices: []string{"ens*", "ens2f0npf0vf1", "ens1f0v7", "eth9"}})
	golden(t, "two-socket-sriov-configured", st.Text())
	wantDecisions(t, st, map[string]string{
		"use ens1f0":         `matches configured pattern "ens*"`,
		"use ens2f0np0":      `matches configured pattern "ens*"`,
		"use ens1f0v7":       "named in the configured device list",
		"use ens2f0npf0vf1":  "named in the configured device list",
		"skip ens1f0v6":      `matches configured pattern "ens*", but it is an SR-IOV VF 6 (0000:3b:01.6) of PF ens1f0; VFs are used only when named exactly`,
		"skip ens2f0npf0vf0": `matches configured pattern "ens*", but it is a switchdev representor of pf0vf0 (VF 0000:af:00.2); representors are used only when named exactly`,
		"skip lo":            "not in the configured device list (ens*, ens2f0npf0vf1, ens1f0v7, eth9)",
		"skip eth9":          `configured device "eth9" matches no device on this node`,
	})
	if strings.Join(st.Missing, ",") != "eth9" {
		t.Errorf("missing %v", st.Missing)
	}
	wantPlan(t, st, "ens2f0npf0vf1", "generic", nil, []string{
		"ens2f0npf0vf1 is a switchdev representor (pf0vf1) and representors have no native XDP: using generic XDP (slower)",
	})
	wantPlan(t, st, "ens1f0v7", "native", nil, []string{
		"driver iavf is not in Strait's list of drivers with native XDP: trying native XDP, falling back to generic if the kernel refuses",
	})
}

func TestLayoutBond(t *testing.T) {
	l := layouts.BondedNICs(t)
	st := inspect(t, l, nodeinfo.Config{NodeAddresses: l.NodeAddresses})
	golden(t, "bond", st.Text())
	wantDecisions(t, st, map[string]string{
		"use bond0":       "carries node address 192.168.10.21 and the IPv4 default route via 192.168.10.1",
		"skip eno1":       "slave of bond0: XDP attaches to the bond, which runs the program on its slaves",
		"skip eno2":       "slave of bond0: XDP attaches to the bond, which runs the program on its slaves",
		"skip cni0":       "carries 10.244.1.1/24 but no node address or default route",
		"skip vethc0ffee": "carries no node address or default route",
	})
	wantPlan(t, st, "bond0", "native", []string{
		"LRO is on on slave eno2 of bond0 and native XDP needs it off: disable LRO: ethtool -K eno2 lro off",
	}, nil)
	if len(st.IRQ.Devices) != 2 || st.IRQ.Devices[0].Via != "bond0" || st.IRQ.Devices[1].QueueIRQs != 4 {
		t.Errorf("IRQ report should cover both slaves: %+v", st.IRQ.Devices)
	}

	// Naming a slave puts XDP on the bond.
	st = inspect(t, l, nodeinfo.Config{Devices: []string{"eno1"}})
	wantDecisions(t, st, map[string]string{
		"skip eno1": "named in the configured device list, but it is a slave of bond0: XDP must attach to the bond itself, so bond0 is used instead",
		"use bond0": "bond of configured slave eno1",
	})
}

func TestLayoutVLAN(t *testing.T) {
	l := layouts.VLANOnPF(t)
	st := inspect(t, l, nodeinfo.Config{NodeAddresses: l.NodeAddresses})
	golden(t, "vlan", st.Text())
	wantDecisions(t, st, map[string]string{
		"use ens3f0":      "lower device of VLAN 100 (ens3f0.100), which carries node address 172.16.100.11 and the IPv4 default route via 172.16.100.1",
		"skip ens3f0.100": "carries node address 172.16.100.11 and the IPv4 default route via 172.16.100.1; XDP attaches to its lower device ens3f0 instead: VLAN devices have no native XDP and VLAN 100's frames arrive through ens3f0",
		"skip ens3f1":     "carries no node address or default route",
	})
	wantPlan(t, st, "ens3f0", "native", nil, []string{
		"VLAN tag stripping is on on ens3f0: native XDP sees the frames of ens3f0.100 (VLAN 100) without their 802.1Q tag, like untagged traffic; turn it off so the datapath sees the tag: ethtool -K ens3f0 rxvlan off",
	})

	// Naming the VLAN device itself: generic, with the way to native.
	st = inspect(t, l, nodeinfo.Config{Devices: []string{"ens3f0.100"}})
	wantPlan(t, st, "ens3f0.100", "generic", nil, []string{
		"VLAN devices have no native XDP (attach to the lower device ens3f0 for native XDP): using generic XDP (slower)",
	})
}

func TestLayoutVirtioVM(t *testing.T) {
	l := layouts.VirtioVM(t)
	st := inspect(t, l, nodeinfo.Config{NodeAddresses: l.NodeAddresses, PlanPinning: true})
	golden(t, "virtio-vm", st.Text())
	wantDecisions(t, st, map[string]string{
		"use eth0":     "carries node address 192.0.2.10 and the IPv4 default route via 192.0.2.1",
		"skip docker0": "carries 172.17.0.1/16 but no node address or default route",
	})
	eth0 := st.Devices[1]
	if eth0.Name != "eth0" || eth0.PCIAddress != "0000:00:03.0" || eth0.BusDevice != "virtio0" || eth0.NUMANode != -1 || eth0.RXQueues != 1 {
		t.Errorf("eth0 discovered as %+v", eth0)
	}
	wantPlan(t, st, "eth0", "native", nil, []string{
		"1 RX queue for 2 CPUs: one CPU runs XDP for every packet of this device",
		"virtio_net needs 3 queue pairs for lockless XDP_TX (the 1 in use plus one per CPU); with fewer, XDP_TX and redirect run in a slower locked mode (raise the VM's queue count)",
	})
	if r := st.IRQ.Devices[0]; r.QueueIRQs != 2 || len(r.IRQs) != 3 || len(r.Warnings) != 0 {
		t.Errorf("virtio IRQs: %+v", r)
	}
}

func TestStatusJSONRoundTrip(t *testing.T) {
	l := layouts.TwoSocketSRIOV(t)
	st := inspect(t, l, nodeinfo.Config{NodeAddresses: l.NodeAddresses, PlanPinning: true})
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back nodeinfo.Status
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Plans, st.Plans) || !reflect.DeepEqual(back.Decisions, st.Decisions) ||
		back.Pinning.CPUs.String() != "8-15" || back.IRQ.Devices[1].QueueCPUs.String() != "0-5,22-23" {
		t.Errorf("round trip lost data:\n%s", b)
	}
	if !strings.Contains(string(b), `"cpus":"8-15"`) {
		t.Errorf("CPU sets should marshal as cpulists")
	}
}

func wantDecisions(t *testing.T, st nodeinfo.Status, want map[string]string) {
	t.Helper()
	for key, reason := range want {
		verb, dev, _ := strings.Cut(key, " ")
		d, ok := st.Decision(dev)
		if !ok {
			t.Errorf("no decision for %s", dev)
			continue
		}
		if d.Use != (verb == "use") || d.Reason != reason {
			t.Errorf("decision for %s:\n got %s\nwant %s %s: %s", dev, d, verb, dev, reason)
		}
	}
}

func wantPlan(t *testing.T, st nodeinfo.Status, dev, mode string, errs, warns []string) {
	t.Helper()
	p, ok := st.Plan(dev)
	if !ok {
		t.Fatalf("no plan for %s", dev)
	}
	if string(p.Mode) != mode || !reflect.DeepEqual(p.Errors, errs) || !reflect.DeepEqual(p.Warnings, warns) {
		t.Errorf("plan for %s:\n got mode %s errors %q warnings %q\nwant mode %s errors %q warnings %q", dev, p.Mode, p.Errors, p.Warnings, mode, errs, warns)
	}
}

func wantStrings(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}
