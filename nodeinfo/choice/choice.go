package choice

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/straitlb/strait/nodeinfo/netdev"
)

// Config says which devices to use.
type Config struct {
	// Devices lists device names or glob patterns (path.Match syntax, e.g.
	// "ens*"). Empty means automatic choice.
	Devices []string `json:"devices,omitempty"`
	// NodeAddresses are the node's own addresses (the Node object's
	// InternalIP and ExternalIP). Devices carrying them are used.
	NodeAddresses []netip.Addr `json:"nodeAddresses,omitempty"`
}

// Decision is the verdict on one device, or on a configured entry that
// matched nothing.
type Decision struct {
	Device string   `json:"device"`
	Use    bool     `json:"use"`
	Reason string   `json:"reason"`
	Notes  []string `json:"notes,omitempty"`
}

// String renders the decision for a log line.
func (d Decision) String() string {
	verb := "skip"
	if d.Use {
		verb = "use"
	}
	s := fmt.Sprintf("%s %s: %s", verb, d.Device, d.Reason)
	for _, n := range d.Notes {
		s += " [" + n + "]"
	}
	return s
}

// Result is the outcome of Choose.
type Result struct {
	// Decisions has one entry per device, in device order, then one per
	// configured entry that matched nothing.
	Decisions []Decision `json:"decisions"`
	// Chosen lists the devices to attach to, sorted.
	Chosen []string `json:"chosen"`
	// Missing lists configured entries that matched no device.
	Missing []string `json:"missing,omitempty"`
}

// Decision returns the decision for a device.
func (r Result) Decision(dev string) (Decision, bool) {
	for _, d := range r.Decisions {
		if d.Device == dev {
			return d, true
		}
	}
	return Decision{}, false
}

type chooser struct {
	cfg    Config
	devs   []netdev.Device
	byName map[string]*netdev.Device
	use    map[string][]string // attach point -> reasons
	skip   map[string]string   // device -> reason, when set by a rule
}

// Choose decides which devices to use.
func Choose(devs []netdev.Device, cfg Config) Result {
	c := &chooser{cfg: cfg, devs: devs, byName: netdev.ByName(devs), use: map[string][]string{}, skip: map[string]string{}}
	var missing []string
	if len(cfg.Devices) > 0 {
		missing = c.configured()
	} else {
		c.automatic()
	}
	var r Result
	for i := range devs {
		d := &devs[i]
		dec := Decision{Device: d.Name}
		if reasons, ok := c.use[d.Name]; ok {
			dec.Use = true
			dec.Reason = strings.Join(reasons, "; ")
			r.Chosen = append(r.Chosen, d.Name)
		} else if why, ok := c.skip[d.Name]; ok {
			dec.Reason = why
		} else {
			dec.Reason = c.skipReason(d)
		}
		dec.Notes = notes(d)
		r.Decisions = append(r.Decisions, dec)
	}
	for _, m := range missing {
		r.Decisions = append(r.Decisions, Decision{Device: m, Reason: fmt.Sprintf("configured device %q matches no device on this node", m)})
	}
	r.Missing = missing
	sort.Strings(r.Chosen)
	return r
}

func (c *chooser) add(dev, reason string) {
	if !slices.Contains(c.use[dev], reason) {
		c.use[dev] = append(c.use[dev], reason)
	}
}

// automatic uses the devices carrying node addresses or default routes.
func (c *chooser) automatic() {
	for i := range c.devs {
		d := &c.devs[i]
		why := c.anchorReason(d)
		if why == "" || d.Kind == netdev.KindLoopback {
			continue
		}
		c.resolve(d, why, map[string]bool{})
	}
}

// resolve finds where XDP attaches for traffic of d: d itself, or the
// lower device(s) of a VLAN, macvlan or bridge, or the bond of a slave.
// why says why d matters; redirected devices get a skip reason.
func (c *chooser) resolve(d *netdev.Device, why string, seen map[string]bool) {
	if seen[d.Name] {
		return
	}
	seen[d.Name] = true
	switch {
	case d.Kind == "vlan" && c.lower(d) != nil:
		low := c.lower(d)
		c.skip[d.Name] = fmt.Sprintf("%s; XDP attaches to its lower device %s instead: VLAN devices have no native XDP and VLAN %s's frames arrive through %s", why, low.Name, vlanID(d), low.Name)
		c.resolve(low, fmt.Sprintf("lower device of VLAN %s (%s), which %s", vlanID(d), d.Name, why), seen)
	case (d.Kind == "macvlan" || d.Kind == "ipvlan") && c.lower(d) != nil:
		low := c.lower(d)
		c.skip[d.Name] = fmt.Sprintf("%s; XDP attaches to its lower device %s instead: %s devices have no native XDP", why, low.Name, d.Kind)
		c.resolve(low, fmt.Sprintf("lower device of %s %s, which %s", d.Kind, d.Name, why), seen)
	case d.Kind == "bridge":
		var ports []*netdev.Device
		for _, p := range d.Ports {
			if pd := c.byName[p]; pd != nil && (!pd.Virtual || pd.Kind == "bond" || pd.Kind == "vlan") {
				ports = append(ports, pd)
			}
		}
		if len(ports) == 0 {
			c.add(d.Name, why+"; the bridge has no physical port, so XDP attaches to the bridge itself")
			return
		}
		names := make([]string, len(ports))
		for i, p := range ports {
			names[i] = p.Name
		}
		c.skip[d.Name] = fmt.Sprintf("%s; XDP attaches to its physical ports %s instead: a bridge has no native XDP", why, strings.Join(names, ", "))
		for _, p := range ports {
			c.resolve(p, fmt.Sprintf("port of bridge %s, which %s", d.Name, why), seen)
		}
	case d.Master != "" && c.byName[d.Master] != nil && c.byName[d.Master].Kind == "bond":
		m := c.byName[d.Master]
		c.skip[d.Name] = fmt.Sprintf("%s; it is a slave of %s, so XDP attaches to the bond", why, m.Name)
		c.resolve(m, fmt.Sprintf("bond of %s, which %s", d.Name, why), seen)
	default:
		c.add(d.Name, why)
	}
}

func (c *chooser) lower(d *netdev.Device) *netdev.Device {
	if d.VLAN != nil && d.VLAN.Lower != "" {
		if l := c.byName[d.VLAN.Lower]; l != nil {
			return l
		}
	}
	if len(d.Lowers) == 1 {
		return c.byName[d.Lowers[0]]
	}
	return nil
}

func vlanID(d *netdev.Device) string {
	if d.VLAN != nil && d.VLAN.ID > 0 {
		return fmt.Sprint(d.VLAN.ID)
	}
	return "?"
}

// anchorReason says why d matters on its own (node address, default
// route), or "".
func (c *chooser) anchorReason(d *netdev.Device) string {
	var items []string
	var addrs []string
	for _, a := range c.cfg.NodeAddresses {
		if d.Carries(a) {
			addrs = append(addrs, a.Unmap().String())
		}
	}
	switch len(addrs) {
	case 0:
	case 1:
		items = append(items, "node address "+addrs[0])
	default:
		items = append(items, "node addresses "+strings.Join(addrs, ", "))
	}
	for _, r := range d.DefaultRoutes {
		fam := "IPv4"
		if r.Dst.Addr().Is6() {
			fam = "IPv6"
		}
		s := "the " + fam + " default route"
		if r.Gateway.IsValid() {
			s += " via " + r.Gateway.String()
		}
		items = append(items, s)
	}
	if len(items) == 0 {
		return ""
	}
	return "carries " + joinAnd(items)
}

// joinAnd joins "a", "b" and "c" as "a; b and c" when items contain
// commas, else "a, b and c".
func joinAnd(items []string) string {
	if len(items) == 1 {
		return items[0]
	}
	sep := ", "
	for _, it := range items {
		if strings.Contains(it, ",") {
			sep = "; "
		}
	}
	return strings.Join(items[:len(items)-1], sep) + " and " + items[len(items)-1]
}

// configured uses the devices named or matched by cfg.Devices and returns
// the entries that matched nothing.
func (c *chooser) configured() []string {
	matched := map[string]bool{}
	for i := range c.devs {
		d := &c.devs[i]
		exact, pattern := c.match(d.Name)
		if !exact && pattern == "" {
			continue
		}
		if exact {
			matched[d.Name] = true
		} else {
			matched[pattern] = true
		}
		how := "named in the configured device list"
		if !exact {
			how = fmt.Sprintf("matches configured pattern %q", pattern)
		}
		switch {
		case d.Kind == netdev.KindLoopback:
			c.skip[d.Name] = how + ", but it is the loopback device"
		case d.Master != "" && c.byName[d.Master] != nil && c.byName[d.Master].Kind == "bond":
			c.skip[d.Name] = fmt.Sprintf("%s, but it is a slave of %s: XDP must attach to the bond itself, so %s is used instead", how, d.Master, d.Master)
			c.add(d.Master, fmt.Sprintf("bond of configured slave %s", d.Name))
		case !exact && d.Role == netdev.RoleVF:
			c.skip[d.Name] = fmt.Sprintf("%s, but it is an %s; VFs are used only when named exactly", how, vfWhat(d))
		case !exact && d.Role == netdev.RoleRepresentor:
			c.skip[d.Name] = fmt.Sprintf("%s, but it is a %s; representors are used only when named exactly", how, repWhat(d, c.byName))
		default:
			c.add(d.Name, how)
		}
	}
	var missing []string
	for _, p := range c.cfg.Devices {
		if !matched[p] {
			missing = append(missing, p)
		}
	}
	return missing
}

// match reports whether name is listed exactly, or else the first pattern
// that matches it.
func (c *chooser) match(name string) (exact bool, pattern string) {
	for _, p := range c.cfg.Devices {
		if p == name {
			return true, ""
		}
	}
	for _, p := range c.cfg.Devices {
		if ok, _ := filepath.Match(p, name); ok && strings.ContainsAny(p, "*?[") {
			return false, p
		}
	}
	return false, ""
}

func (c *chooser) skipReason(d *netdev.Device) string {
	auto := len(c.cfg.Devices) == 0
	if !auto {
		return fmt.Sprintf("not in the configured device list (%s)", strings.Join(c.cfg.Devices, ", "))
	}
	switch {
	case d.Kind == netdev.KindLoopback:
		return "loopback device"
	case d.Master != "" && c.byName[d.Master] != nil && c.byName[d.Master].Kind == "bond":
		if _, used := c.use[d.Master]; used {
			return fmt.Sprintf("slave of %s: XDP attaches to the bond, which runs the program on its slaves", d.Master)
		}
		return fmt.Sprintf("slave of %s, which is not used", d.Master)
	case d.Role == netdev.RoleVF:
		return fmt.Sprintf("%s without node address or default route: VFs are normally handed to workloads; name it in the device list to use it", vfWhat(d))
	case d.Role == netdev.RoleRepresentor:
		return fmt.Sprintf("%s: it carries only that function's slow-path traffic; name it in the device list to use it", repWhat(d, c.byName))
	}
	var global []string
	for _, p := range d.Addrs {
		if netdev.IsNodeAddr(p.Addr()) {
			global = append(global, p.String())
		}
	}
	if len(global) > 0 {
		return fmt.Sprintf("carries %s but no node address or default route", strings.Join(global, ", "))
	}
	return "carries no node address or default route"
}

func vfWhat(d *netdev.Device) string {
	s := "SR-IOV VF"
	if d.SRIOV != nil {
		if d.SRIOV.VFIndex >= 0 {
			s += fmt.Sprintf(" %d", d.SRIOV.VFIndex)
		}
		s += fmt.Sprintf(" (%s)", d.PCIAddress)
		if len(d.SRIOV.PFNetdevs) > 0 {
			s += " of PF " + strings.Join(d.SRIOV.PFNetdevs, "/")
		} else {
			s += " of PF " + d.SRIOV.PF
		}
	}
	return s
}

func repWhat(d *netdev.Device, byName map[string]*netdev.Device) string {
	sw := d.Switch
	s := "switchdev representor of " + sw.Represents
	if sw.RepresentedPCI != "" {
		s += " (VF " + sw.RepresentedPCI
		for _, o := range byName {
			if o.PCIAddress == sw.RepresentedPCI && o.Role == netdev.RoleVF {
				s += ", netdev " + o.Name
			}
		}
		s += ")"
	}
	return s
}

// notes adds facts worth logging next to the decision.
func notes(d *netdev.Device) []string {
	var out []string
	if d.Role == netdev.RolePF && d.SRIOV != nil {
		s := d.SRIOV
		byDriver := map[string]int{}
		var hostNetdevs []string
		for _, vf := range s.VFs {
			byDriver[vf.Driver]++
			hostNetdevs = append(hostNetdevs, vf.Netdevs...)
		}
		drivers := make([]string, 0, len(byDriver))
		for drv, n := range byDriver {
			if drv == "" {
				drivers = append(drivers, fmt.Sprintf("%d unbound", n))
			} else {
				drivers = append(drivers, fmt.Sprintf("%d on %s", n, drv))
			}
		}
		sort.Strings(drivers)
		n := fmt.Sprintf("SR-IOV PF with %d of %d VFs enabled", s.NumVFs, s.TotalVFs)
		if len(drivers) > 0 {
			n += " (" + strings.Join(drivers, ", ") + ")"
		}
		if len(hostNetdevs) > 0 {
			n += "; VF netdevs in this namespace: " + strings.Join(hostNetdevs, ", ")
		}
		if missing := s.NumVFs - len(hostNetdevs); missing > 0 {
			n += fmt.Sprintf("; %d VFs have no netdev here (vfio-pci, unbound or moved to a pod)", missing)
		}
		out = append(out, n)
	}
	if d.Switch != nil && d.Switch.Uplink {
		out = append(out, "switchdev uplink "+d.Switch.PortName+" of switch "+d.Switch.SwitchID)
	}
	return out
}
