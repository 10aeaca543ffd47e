package xdpplan

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/straitlb/strait/nodeinfo/netdev"
)

// Mode is how an XDP program runs on a device.
type Mode string

// Modes.
const (
	ModeNative  Mode = "native"
	ModeGeneric Mode = "generic"
)

// Options tune planning.
type Options struct {
	// NativeOnly turns every reason to use generic XDP into an error.
	NativeOnly bool `json:"nativeOnly,omitempty"`
	// Frags says the program is multi-buffer aware (SEC("xdp.frags")), so
	// single-buffer MTU limits do not apply to drivers with multi-buffer
	// support. Strait's program is not.
	Frags bool `json:"frags,omitempty"`
	// Kernel is the kernel release (uname -r); "" assumes a recent kernel.
	Kernel string `json:"kernel,omitempty"`
	// CPUs is the number of online CPUs; 0 when unknown.
	CPUs int `json:"cpus,omitempty"`
}

// Plan is the attach plan for one device.
type Plan struct {
	Device string `json:"device"`
	Driver string `json:"driver,omitempty"`
	// Mode is the mode to try first. With ModeNative the loader may still
	// fall back to generic unless NativeOnly is set.
	Mode     Mode     `json:"mode"`
	Warnings []string `json:"warnings,omitempty"`
	// Errors are conditions to fix before attaching; a plan with errors
	// must not be attached.
	Errors []string `json:"errors,omitempty"`
}

// OK reports whether the plan has no errors.
func (p Plan) OK() bool { return len(p.Errors) == 0 }

// String renders the plan for a log line.
func (p Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s XDP", p.Device, p.Mode)
	if p.Driver != "" {
		fmt.Fprintf(&b, " (driver %s)", p.Driver)
	}
	for _, e := range p.Errors {
		b.WriteString("; ERROR: " + e)
	}
	for _, w := range p.Warnings {
		b.WriteString("; warning: " + w)
	}
	return b.String()
}

// PlanAll plans each chosen device. Devices not found get a plan with an
// error.
func PlanAll(devs []netdev.Device, chosen []string, opts Options) []Plan {
	byName := netdev.ByName(devs)
	out := make([]Plan, 0, len(chosen))
	for _, name := range chosen {
		d, ok := byName[name]
		if !ok {
			out = append(out, Plan{Device: name, Mode: ModeNative, Errors: []string{"device not found"}})
			continue
		}
		out = append(out, PlanDevice(*d, byName, opts))
	}
	return out
}

// DriverOf returns the driver name planning uses for d: the sysfs driver,
// or the driver implied by the link kind.
func DriverOf(d *netdev.Device) string {
	if d.Driver != "" {
		return d.Driver
	}
	if drv, ok := kindDriver[d.Kind]; ok {
		return drv
	}
	return ""
}

// Info returns the table entry for d's driver and whether it is known.
func Info(d *netdev.Device) (DriverInfo, bool) {
	info, ok := Drivers[DriverOf(d)]
	return info, ok
}

// MaxMTU returns the single-buffer native XDP MTU limit for d's driver.
func MaxMTU(d *netdev.Device) int {
	if info, ok := Info(d); ok && info.MaxMTU > 0 {
		return info.MaxMTU
	}
	return DefaultMaxMTU
}

type planner struct {
	p      Plan
	opts   Options
	byName map[string]*netdev.Device
}

func (pl *planner) warn(format string, args ...any) {
	pl.p.Warnings = append(pl.p.Warnings, fmt.Sprintf(format, args...))
}

func (pl *planner) fail(format string, args ...any) {
	pl.p.Errors = append(pl.p.Errors, fmt.Sprintf(format, args...))
}

// generic records a reason native XDP is out: an error in native-only
// mode, otherwise a switch to generic XDP with a warning.
func (pl *planner) generic(reason string) {
	if pl.opts.NativeOnly {
		pl.fail("native-only mode: %s", reason)
		return
	}
	pl.p.Mode = ModeGeneric
	pl.warn("%s: using generic XDP (slower)", reason)
}

// PlanDevice plans one device; byName resolves bond slaves and masters.
func PlanDevice(d netdev.Device, byName map[string]*netdev.Device, opts Options) Plan {
	pl := &planner{p: Plan{Device: d.Name, Driver: DriverOf(&d), Mode: ModeNative}, opts: opts, byName: byName}
	drv := pl.p.Driver
	info, known := Info(&d)

	switch {
	case d.Kind == netdev.KindLoopback:
		pl.fail("%s is the loopback device: XDP there sees no node traffic", d.Name)
		return pl.p
	case d.Master != "" && byName[d.Master] != nil && byName[d.Master].Kind == "bond":
		pl.fail("%s is a slave of %s: XDP must attach to the bond %s itself (the bond installs the program on its slaves)", d.Name, d.Master, d.Master)
		return pl.p
	case d.Kind == "bond":
		pl.planBond(&d)
	case d.Role == netdev.RoleRepresentor:
		pl.generic(fmt.Sprintf("%s is a switchdev representor (%s) and representors have no native XDP", d.Name, d.Switch.Represents))
	case known && !info.Native:
		reason := fmt.Sprintf("%s have no native XDP", info.What)
		if low := lowerOf(&d); low != "" {
			reason += fmt.Sprintf(" (attach to the lower device %s for native XDP)", low)
		}
		pl.generic(reason)
	case !known:
		what := "driver " + drv
		if drv == "" {
			what = "its driver (unknown)"
		}
		if opts.NativeOnly {
			pl.warn("%s is not in Strait's list of drivers with native XDP: native-only mode fails if the kernel refuses native XDP", what)
		} else {
			pl.warn("%s is not in Strait's list of drivers with native XDP: trying native XDP, falling back to generic if the kernel refuses", what)
		}
	}

	if pl.p.Mode == ModeNative && d.Kind != "bond" {
		pl.checkMTU(&d, "")
	}
	pl.checkOffloads(&d)

	pl.checkVLANStrip(&d)
	if d.Switch != nil && d.Switch.Uplink {
		pl.warn("switchdev uplink %s: traffic the eswitch offloads between VFs and the wire bypasses XDP here; only traffic the eswitch sends to the host is seen", d.Switch.PortName)
	}
	if d.XDP != nil {
		pl.warn("an XDP program (id %d, %s) is already attached: Strait replaces only its own program", d.XDP.ProgID, d.XDP.Mode)
	}
	if d.OperState != "" && d.OperState != "up" && d.OperState != "unknown" {
		pl.warn("operstate is %s", d.OperState)
	}
	if opts.CPUs > 1 && d.RXQueues == 1 && d.Kind != "bond" && !d.Virtual && d.Role != netdev.RoleRepresentor {
		pl.warn("1 RX queue for %d CPUs: one CPU runs XDP for every packet of this device", opts.CPUs)
	}
	if drv == "virtio_net" && opts.CPUs > 0 && pl.p.Mode == ModeNative {
		pl.warn("virtio_net needs %d queue pairs for lockless XDP_TX (the %d in use plus one per CPU); with fewer, XDP_TX and redirect run in a slower locked mode (raise the VM's queue count)", d.RXQueues+opts.CPUs, d.RXQueues)
	}
	return pl.p
}

// MTUSubject returns the MTU a driver checks for native XDP on d and whose
// it is: d's own, or for a veth its peer's.
func MTUSubject(d *netdev.Device) (mtu int, whose string) {
	if DriverOf(d) == "veth" && d.Peer != "" {
		return d.PeerMTU, "peer " + d.Peer
	}
	return d.MTU, d.Name
}

// checkMTU checks d's MTU against its driver's single-buffer native limit.
// via names the bond when d is a slave.
func (pl *planner) checkMTU(d *netdev.Device, via string) {
	info, known := Info(d)
	mtu, whose := MTUSubject(d)
	if mtu <= 0 || (pl.opts.Frags && info.Frags) {
		return
	}
	limit := MaxMTU(d)
	if mtu <= limit {
		return
	}
	drv := DriverOf(d)
	who := whose
	if via != "" {
		who = fmt.Sprintf("slave %s of %s", d.Name, via)
	}
	fix := fmt.Sprintf("lower it (ip link set dev %s mtu %d)", strings.TrimPrefix(whose, "peer "), limit)
	if via != "" {
		fix = fmt.Sprintf("lower the bond's MTU (ip link set dev %s mtu %d)", via, limit)
	}
	if !known {
		pl.warn("MTU %d on %s is above %d, the single-buffer native XDP limit of most drivers: driver %s may refuse native XDP; %s", mtu, who, limit, drv, fix)
		return
	}
	pl.generic(fmt.Sprintf("MTU %d on %s is above %d, the largest MTU %s accepts for single-buffer native XDP; %s for native XDP", mtu, who, limit, drv, fix))
}

func (pl *planner) checkOffloads(d *netdev.Device) {
	pl.checkOffloadsOf(d, d.Name)
	if d.Bond != nil {
		for _, s := range d.Bond.Slaves {
			if sd := pl.byName[s]; sd != nil {
				pl.checkOffloadsOf(sd, fmt.Sprintf("slave %s of %s", s, d.Name))
			}
		}
	}
}

func (pl *planner) checkOffloadsOf(d *netdev.Device, who string) {
	if d.Features == nil {
		if d.FeaturesError != "" && !d.Virtual {
			pl.warn("could not read offload features of %s (%s): make sure LRO is off (ethtool -k %s)", who, d.FeaturesError, d.Name)
		}
		return
	}
	if on, _ := d.Feature(netdev.FeatureLRO); on {
		if pl.p.Mode == ModeNative {
			pl.fail("LRO is on on %s and native XDP needs it off: disable LRO: ethtool -K %s lro off", who, d.Name)
		} else {
			pl.warn("LRO is on on %s: the kernel turns it off when generic XDP attaches; to keep it off across driver resets: ethtool -K %s lro off", who, d.Name)
		}
	}
	if on, _ := d.Feature(netdev.FeatureGROHW); on && pl.p.Mode == ModeNative {
		switch DriverOf(d) {
		case "mlx5_core":
			pl.fail("hardware GRO is on on %s and mlx5_core refuses native XDP with it: ethtool -K %s rx-gro-hw off", who, d.Name)
		case "virtio_net":
			pl.warn("hardware GRO (guest offloads) is on on %s: virtio_net turns it off when native XDP attaches, or refuses native XDP if the hypervisor does not let the guest control offloads (then generic XDP is used)", who)
		}
	}
}

// checkVLANStrip warns when d carries VLANs whose tag the NIC strips before
// XDP runs: the program then cannot tell VLAN traffic from untagged traffic.
func (pl *planner) checkVLANStrip(d *netdev.Device) {
	if pl.p.Mode != ModeNative {
		return
	}
	var vlans []string
	for _, u := range d.Uppers {
		if ud := pl.byName[u]; ud != nil && ud.VLAN != nil {
			vlans = append(vlans, fmt.Sprintf("%s (VLAN %d)", u, ud.VLAN.ID))
		}
	}
	if len(vlans) == 0 {
		return
	}
	if on, _ := d.Feature(netdev.FeatureVLANStrip); on {
		pl.warn("VLAN tag stripping is on on %s: native XDP sees the frames of %s without their 802.1Q tag, like untagged traffic; turn it off so the datapath sees the tag: ethtool -K %s rxvlan off", d.Name, strings.Join(vlans, ", "), d.Name)
	}
}

// planBond applies the bonding driver's rules: native XDP since Linux 5.15,
// in balance-rr, active-backup, and balance-xor or 802.3ad unless the
// transmit hash is vlan+srcmac, and only when every slave has native XDP.
func (pl *planner) planBond(d *netdev.Device) {
	if maj, min, ok := KernelVersion(pl.opts.Kernel); ok && (maj < 5 || (maj == 5 && min < 15)) {
		pl.generic(fmt.Sprintf("bonds have native XDP only since Linux 5.15 and this kernel is %s", pl.opts.Kernel))
		return
	}
	if d.Bond == nil {
		return
	}
	switch d.Bond.Mode {
	case "balance-rr", "active-backup", "":
	case "balance-xor", "802.3ad":
		if d.Bond.XmitHashPolicy == "vlan+srcmac" {
			pl.generic(fmt.Sprintf("bond mode %s with xmit_hash_policy vlan+srcmac has no native XDP", d.Bond.Mode))
			return
		}
	default:
		pl.generic(fmt.Sprintf("bond mode %s has no native XDP (native needs balance-rr, active-backup, balance-xor or 802.3ad)", d.Bond.Mode))
		return
	}
	if len(d.Bond.Slaves) == 0 {
		pl.warn("bond %s has no slaves yet: each slave added later must support native XDP", d.Name)
		return
	}
	var noNative []string
	for _, s := range d.Bond.Slaves {
		sd := pl.byName[s]
		if sd == nil {
			continue
		}
		info, known := Info(sd)
		switch {
		case known && !info.Native:
			noNative = append(noNative, fmt.Sprintf("%s (%s)", s, DriverOf(sd)))
		case !known:
			pl.warn("slave %s has driver %s, which is not in Strait's list of drivers with native XDP: the bond's native XDP fails if it refuses", s, DriverOf(sd))
		}
		if sd.XDP != nil {
			pl.fail("slave %s runs its own XDP program (id %d): the bond cannot install its program there; detach it (ip link set dev %s xdp off)", s, sd.XDP.ProgID, s)
		}
	}
	if len(noNative) > 0 {
		pl.generic(fmt.Sprintf("bond %s has slaves without native XDP: %s", d.Name, strings.Join(noNative, ", ")))
		return
	}
	for _, s := range d.Bond.Slaves {
		if sd := pl.byName[s]; sd != nil {
			pl.checkMTU(sd, d.Name)
		}
	}
}

func lowerOf(d *netdev.Device) string {
	if d.VLAN != nil && d.VLAN.Lower != "" {
		return d.VLAN.Lower
	}
	if (d.Kind == "macvlan" || d.Kind == "ipvlan" || d.Kind == "vlan") && len(d.Lowers) == 1 {
		return d.Lowers[0]
	}
	return ""
}

var kernelRE = regexp.MustCompile(`^(\d+)\.(\d+)`)

// KernelVersion parses the major and minor numbers of a kernel release such
// as "6.8.0-45-generic".
func KernelVersion(release string) (major, minor int, ok bool) {
	m := kernelRE.FindStringSubmatch(release)
	if m == nil {
		return 0, 0, false
	}
	major, _ = strconv.Atoi(m[1])
	minor, _ = strconv.Atoi(m[2])
	return major, minor, true
}
