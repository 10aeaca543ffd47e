package netdev_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/straitlb/strait/nodeinfo/hostfs"
	"github.com/straitlb/strait/nodeinfo/internal/layouts"
	"github.com/straitlb/strait/nodeinfo/netdev"
)

func discover(t *testing.T, l *layouts.Layout) map[string]*netdev.Device {
	t.Helper()
	devs, err := netdev.Discover(l.Source())
	if err != nil {
		t.Fatal(err)
	}
	return netdev.ByName(devs)
}

func TestDiscoverSRIOV(t *testing.T) {
	l := layouts.TwoSocketSRIOV(t)
	d := discover(t, l)

	pf := d["ens1f0"]
	if pf.Driver != "ice" || pf.PCIAddress != "0000:3b:00.0" || pf.Role != netdev.RolePF || pf.NUMANode != 0 ||
		pf.RXQueues != 8 || pf.MTU != 1500 || pf.OperState != "up" || pf.Kind != netdev.KindPhysical || pf.Index != 2 {
		t.Errorf("ens1f0: %+v", pf)
	}
	if pf.SRIOV.NumVFs != 8 || pf.SRIOV.TotalVFs != 128 || len(pf.SRIOV.VFs) != 8 {
		t.Fatalf("ens1f0 SR-IOV: %+v", pf.SRIOV)
	}
	if vf := pf.SRIOV.VFs[0]; vf.PCIAddress != "0000:3b:01.0" || vf.Driver != "vfio-pci" || len(vf.Netdevs) != 0 {
		t.Errorf("VF 0: %+v", vf)
	}
	if vf := pf.SRIOV.VFs[7]; vf.Driver != "iavf" || !slices.Equal(vf.Netdevs, []string{"ens1f0v7"}) {
		t.Errorf("VF 7: %+v", vf)
	}
	if len(pf.DefaultRoutes) != 2 || pf.DefaultRoutes[0].String() != "default via 10.0.0.1 dev ens1f0" {
		t.Errorf("default routes: %v", pf.DefaultRoutes)
	}

	vf := d["ens1f0v7"]
	if vf.Role != netdev.RoleVF || vf.SRIOV.PF != "0000:3b:00.0" || vf.SRIOV.VFIndex != 7 || !slices.Equal(vf.SRIOV.PFNetdevs, []string{"ens1f0"}) || vf.Driver != "iavf" {
		t.Errorf("ens1f0v7: %+v %+v", vf, vf.SRIOV)
	}

	up := d["ens2f0np0"]
	if up.Role != netdev.RolePF || up.Switch == nil || !up.Switch.Uplink || up.Switch.SwitchID != "b8cef60300a1b2c3" || up.NUMANode != 1 || up.MTU != 9000 {
		t.Errorf("ens2f0np0: %+v %+v", up, up.Switch)
	}
	if drivers := vfDrivers(up); drivers != "mlx5_core,mlx5_core,mlx5_core,mlx5_core,vfio-pci,vfio-pci,mlx5_core," {
		t.Errorf("mlx5 VF drivers %q", drivers)
	}

	rep := d["ens2f0npf0vf6"]
	if rep.Role != netdev.RoleRepresentor || rep.SRIOV != nil || rep.Switch.Represents != "pf0vf6" || rep.Switch.PFNum != 0 ||
		rep.Switch.VFNum != 6 || rep.Switch.RepresentedPCI != "0000:af:01.0" || rep.PCIAddress != "0000:af:00.0" {
		t.Errorf("representor: %+v %+v", rep, rep.Switch)
	}
	// The VF's PF netdevs exclude the representors sharing the PF's PCI function.
	if v := d["ens2f0v6"]; !slices.Equal(v.SRIOV.PFNetdevs, []string{"ens2f0np0"}) {
		t.Errorf("ens2f0v6 PF netdevs %v", v.SRIOV.PFNetdevs)
	}
	if lo := d["lo"]; lo.Kind != netdev.KindLoopback || !lo.Virtual || lo.NUMANode != -1 {
		t.Errorf("lo: %+v", lo)
	}
}

func vfDrivers(d *netdev.Device) string {
	var s []string
	for _, vf := range d.SRIOV.VFs {
		s = append(s, vf.Driver)
	}
	return strings.Join(s, ",")
}

func TestDiscoverBondAndBridge(t *testing.T) {
	d := discover(t, layouts.BondedNICs(t))
	b := d["bond0"]
	if b.Kind != "bond" || b.Bond == nil || b.Bond.Mode != "802.3ad" || b.Bond.XmitHashPolicy != "layer3+4" ||
		!slices.Equal(b.Bond.Slaves, []string{"eno1", "eno2"}) || !slices.Equal(b.Lowers, []string{"eno1", "eno2"}) || b.Driver != "bonding" {
		t.Errorf("bond0: %+v %+v", b, b.Bond)
	}
	if e := d["eno2"]; e.Master != "bond0" || !slices.Equal(e.Uppers, []string{"bond0"}) {
		t.Errorf("eno2: %+v", e)
	}
	if on, known := d["eno2"].Feature(netdev.FeatureLRO); !on || !known {
		t.Errorf("eno2 LRO should be on")
	}
	if br := d["cni0"]; br.Kind != "bridge" || !slices.Equal(br.Ports, []string{"vethc0ffee"}) {
		t.Errorf("cni0: %+v", br)
	}
}

func TestDiscoverVLAN(t *testing.T) {
	d := discover(t, layouts.VLANOnPF(t))
	v := d["ens3f0.100"]
	if v.Kind != "vlan" || v.VLAN == nil || v.VLAN.ID != 100 || v.VLAN.Lower != "ens3f0" || !v.Virtual {
		t.Errorf("ens3f0.100: %+v %+v", v, v.VLAN)
	}
	if !slices.Equal(d["ens3f0"].Uppers, []string{"ens3f0.100"}) {
		t.Errorf("ens3f0 uppers %v", d["ens3f0"].Uppers)
	}
	if d["ens3f1"].OperState != "down" {
		t.Errorf("ens3f1 should be down")
	}
}

func TestDiscoverSysfsOnly(t *testing.T) {
	// Without netlink and ethtool, sysfs alone still tells kinds, drivers
	// of hardware, VLANs (uevent + lower link) and bonds.
	l := layouts.VLANOnPF(t)
	devs, err := netdev.Discover(netdev.Source{FS: l.FS()})
	if err != nil {
		t.Fatal(err)
	}
	d := netdev.ByName(devs)
	if d["ens3f0.100"].Kind != "vlan" || d["ens3f0.100"].VLAN.ID != 100 || d["ens3f0"].Driver != "i40e" || d["ens3f0"].Features != nil {
		t.Errorf("sysfs-only discovery: %+v", d["ens3f0.100"])
	}
	// /proc/net/vlan/config missing: the VLAN is still found via uevent.
	fs := hostfs.FS{Sys: l.FS().Sys, Proc: t.TempDir()}
	devs, _ = netdev.Discover(netdev.Source{FS: fs})
	if v := netdev.ByName(devs)["ens3f0.100"]; v.VLAN == nil || v.VLAN.Lower != "ens3f0" || v.VLAN.ID != 0 {
		t.Errorf("VLAN without /proc/net/vlan: %+v", v.VLAN)
	}
}

func TestDiscoverVirtio(t *testing.T) {
	d := discover(t, layouts.VirtioVM(t))
	e := d["eth0"]
	if e.Driver != "virtio_net" || e.PCIAddress != "0000:00:03.0" || e.BusDevice != "virtio0" || e.NUMANode != -1 || e.Role != netdev.RoleNone {
		t.Errorf("eth0: %+v", e)
	}
	if !e.Carries(netip.MustParseAddr("192.0.2.10")) || !e.HasGlobalAddr() {
		t.Errorf("eth0 addresses %v", e.Addrs)
	}
}

func TestIsPCIAddress(t *testing.T) {
	for s, want := range map[string]bool{"0000:3b:00.0": true, "10000:00:01.7": true, "virtio0": false, "0000:3b:00": false, "pci0000:00": false} {
		if netdev.IsPCIAddress(s) != want {
			t.Errorf("IsPCIAddress(%q) != %v", s, want)
		}
	}
}

func TestEthtoolIoctlOnLoopback(t *testing.T) {
	// Reading features and the driver name needs no privilege.
	e, err := netdev.NewEthtoolIoctl()
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	f, err := e.Features("lo")
	if err != nil {
		t.Fatal(err)
	}
	if on, ok := f[netdev.FeatureLRO]; !ok || on {
		t.Errorf("lo: rx-lro = %v, %v; want present and off", on, ok)
	}
	if on, ok := f["loopback"]; !ok || !on {
		t.Errorf("lo: feature loopback = %v, %v; want on", on, ok)
	}
	if _, err := e.Features("nonexistent0"); err == nil {
		t.Errorf("features of a missing device should fail")
	}
}
