package datapath

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/straitlb/strait/dataplane/lbmap"
	"github.com/straitlb/strait/dataplane/loader"
	"github.com/straitlb/strait/dataplane/neigh"
	"github.com/straitlb/strait/dataplane/program"
	"github.com/straitlb/strait/dataplane/stats"
	"github.com/straitlb/strait/model"
)

// Config describes one node's datapath.
type Config struct {
	PinDir string
	// Devices are the uplinks that XDP and tc attach to.
	Devices []string
	// NativeOnly fails instead of falling back to generic XDP.
	NativeOnly bool
	Capacities lbmap.Capacities
	Program    program.Config

	// SocketLB turns on socket-level balancing: connect4, sendmsg4,
	// recvmsg4 and getpeername4 programs on the cgroup CgroupPath. When
	// false, any attachment left from an earlier run is removed and the
	// per-packet path (PodDevices, uplink egress) balances everything.
	SocketLB bool
	// CgroupPath is a cgroup v2 directory the socket programs attach to;
	// every process in it and below is balanced at socket level. Empty:
	// the root of the cgroup v2 hierarchy (found in /proc/self/mountinfo,
	// or mounted at /run/strait/cgroup2 when none is mounted).
	CgroupPath string
	// PodDevices are the pods' host-side devices that carry the
	// per-packet east-west program (tcx ingress): names or
	// filepath.Match patterns such as "veth*" or "lxc*". Devices are
	// matched at Open and again on every Apply, so new pods' devices are
	// picked up by the next sync.
	PodDevices []string
}

// Device is an attached uplink.
type Device struct {
	Name     string
	Index    int
	SNATAddr netip.Addr
	Mode     loader.XDPMode
	Updated  bool
}

// Datapath is a running node datapath.
type Datapath struct {
	log     *zap.Logger
	dp      *loader.Datapath
	prog    *program.Programmer
	neigh   *neigh.Manager
	devices []Device

	cgroup      string
	podPatterns []string
	podAttached map[string]int // device -> ifindex attached this run
	nativeOnly  bool

	// remote holds each service's remote backend addresses and
	// remoteRefs how many services list each: the neighbour targets.
	remote     map[model.ServiceName][]netip.Addr
	remoteRefs map[netip.Addr]int

	// mu serialises Apply and SetDevices: both program the maps.
	mu sync.Mutex
}

// SetDevices makes the uplinks exactly names: new ones are attached (their
// settings programmed first), departed ones detached. Used when devices
// appear, disappear or change while the agent runs.
func (d *Datapath) SetDevices(names []string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.setDevices(names)
}

func (d *Datapath) setDevices(names []string) error {
	if len(names) == 0 {
		return errors.New("set devices: none")
	}
	want := make(map[string]bool, len(names))
	var devs []Device
	var ifaces []program.Iface
	for _, name := range names {
		want[name] = true
		dev, err := describe(name)
		if err != nil {
			return err
		}
		devs = append(devs, dev)
		ifaces = append(ifaces, program.Iface{Index: dev.Index, SNATAddr: model.BackendKey{Addr: dev.SNATAddr}})
	}
	// Program the device settings before the programs see traffic.
	if err := d.prog.SetIfaces(ifaces); err != nil {
		return err
	}
	var errs []error
	var attached []Device
	for _, dev := range devs {
		a, err := d.dp.AttachXDP(dev.Name, d.nativeOnly)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		dev.Mode, dev.Updated = a.Mode, a.Updated
		if _, err := d.dp.AttachTCEgress(dev.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		attached = append(attached, dev)
	}
	for _, old := range d.devices {
		if !want[old.Name] {
			if err := d.dp.Detach(old.Name); err != nil {
				errs = append(errs, err)
			}
			d.log.Info("detached from device", zap.String("device", old.Name))
		}
	}
	d.devices = attached
	return errors.Join(errs...)
}

// Open loads the datapath, attaches it to every device (updating Strait's
// own attachments in place after a restart) and restores programmer state
// from the pinned maps.
func Open(log *zap.Logger, cfg Config) (*Datapath, error) {
	if len(cfg.Devices) == 0 {
		return nil, errors.New("open datapath: no devices configured")
	}
	dp, err := loader.Load(log, loader.Options{PinDir: cfg.PinDir, Capacities: cfg.Capacities})
	if err != nil {
		return nil, err
	}
	d := &Datapath{log: log, dp: dp, neigh: neigh.New(log), podAttached: make(map[string]int),
		remote: make(map[model.ServiceName][]netip.Addr), remoteRefs: make(map[netip.Addr]int)}
	cfg.Program.Capacities = cfg.Capacities
	d.prog, err = program.New(log, dp.Maps, cfg.Program)
	if err != nil {
		dp.Close()
		return nil, err
	}
	d.nativeOnly = cfg.NativeOnly
	if err := d.setDevices(cfg.Devices); err != nil {
		dp.Close()
		return nil, err
	}
	d.podPatterns = cfg.PodDevices
	if err := d.SyncPodDevices(); err != nil {
		dp.Close()
		return nil, err
	}
	if cfg.SocketLB {
		path := cfg.CgroupPath
		if path == "" {
			if path, err = CgroupRoot(); err != nil {
				dp.Close()
				return nil, err
			}
		}
		if _, err := dp.AttachCgroup(path); err != nil {
			dp.Close()
			return nil, err
		}
		d.cgroup = path
	} else if err := dp.DetachCgroup(); err != nil {
		dp.Close()
		return nil, err
	}
	return d, nil
}

// Cgroup is the cgroup the socket-level programs are attached to, or ""
// when socket-level balancing is off.
func (d *Datapath) Cgroup() string { return d.cgroup }

// PodDevices lists the devices the per-packet east-west program is on.
func (d *Datapath) PodDevices() []string { return d.dp.TCPodDevices() }

// SyncPodDevices attaches the east-west program to every device matching
// Config.PodDevices that lacks it and drops the pins of devices that went
// away. Apply calls it; the agent may also call it when links appear.
func (d *Datapath) SyncPodDevices() error {
	if len(d.podPatterns) == 0 {
		return nil
	}
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("list devices: %w", err)
	}
	present := make(map[string]bool)
	var errs []error
	for _, l := range links {
		name := l.Attrs().Name
		if !matchAny(d.podPatterns, name) {
			continue
		}
		present[name] = true
		if d.podAttached[name] == l.Attrs().Index {
			continue
		}
		if _, err := d.dp.AttachTCPod(name); err != nil {
			errs = append(errs, err)
			continue
		}
		d.podAttached[name] = l.Attrs().Index
	}
	for _, name := range d.dp.TCPodDevices() {
		if !present[name] {
			// The device is gone and its attachment with it.
			if err := d.dp.DetachTCPod(name); err != nil {
				d.log.Debug("removing pin of a departed pod device", zap.String("device", name), zap.Error(err))
			}
			delete(d.podAttached, name)
		}
	}
	return errors.Join(errs...)
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := filepath.Match(p, name); ok {
			return true
		}
	}
	return false
}

// CgroupRoot finds the root of the cgroup v2 hierarchy: the first cgroup2
// mount in /proc/self/mountinfo, else a new mount at /run/strait/cgroup2.
func CgroupRoot() (string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("read mountinfo: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		// ... root mountpoint options ... - fstype source superopts
		l, r, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		lf, rf := strings.Fields(l), strings.Fields(r)
		if len(lf) >= 5 && len(rf) >= 1 && rf[0] == "cgroup2" && lf[3] == "/" {
			return lf[4], nil
		}
	}
	dir := "/run/strait/cgroup2"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create cgroup2 mount point: %w", err)
	}
	if err := unix.Mount("cgroup2", dir, "cgroup2", 0, ""); err != nil {
		return "", fmt.Errorf("mount cgroup2 at %s: %w", dir, err)
	}
	return dir, nil
}

// describe finds a device's index and its first IPv4 address, used as the
// SNAT source towards remote backends.
func describe(name string) (Device, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return Device{}, fmt.Errorf("find device %s: %w", name, err)
	}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return Device{}, fmt.Errorf("list addresses of %s: %w", name, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && ip.IsGlobalUnicast() {
			return Device{Name: name, Index: l.Attrs().Index, SNATAddr: ip}, nil
		}
	}
	return Device{}, fmt.Errorf("device %s has no IPv4 address to use as SNAT source", name)
}

// Devices lists the attached uplinks.
func (d *Datapath) Devices() []Device {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Device(nil), d.devices...)
}

// Collector exports the datapath's counters to Prometheus.
func (d *Datapath) Collector() *stats.Collector {
	return stats.New(d.log, &d.dp.Objects().StraitMaps, d.prog.ServiceName)
}

// Loader exposes the loaded objects (counters, the CLI, tests).
func (d *Datapath) Loader() *loader.Datapath { return d.dp }

// Apply programs state and keeps managed neighbour entries for the next
// hops of its remote backends.
func (d *Datapath) Apply(state model.State) (program.Result, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.syncPodDevices()
	res, err := d.prog.Apply(state)
	clear(d.remote)
	clear(d.remoteRefs)
	for i := range state.Services {
		d.trackRemote(&state.Services[i])
	}
	d.syncNeighbours()
	return res, err
}

// ApplyChanges is Apply when only the services named in changed differ
// from the previous state (see program.Programmer.ApplyChanges).
func (d *Datapath) ApplyChanges(state model.State, changed []model.ServiceName) (program.Result, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.syncPodDevices()
	res, err := d.prog.ApplyChanges(state, changed)
	moved := false
	for _, name := range changed {
		for _, a := range d.remote[name] {
			if d.remoteRefs[a]--; d.remoteRefs[a] == 0 {
				delete(d.remoteRefs, a)
				moved = true
			}
		}
		delete(d.remote, name)
		i, ok := slices.BinarySearchFunc(state.Services, name, func(s model.Service, n model.ServiceName) int { return s.Name.Compare(n) })
		if ok && d.trackRemote(&state.Services[i]) {
			moved = true
		}
	}
	if moved {
		d.syncNeighbours()
	}
	return res, err
}

// trackRemote records svc's remote backend addresses and reports whether
// one is new.
func (d *Datapath) trackRemote(svc *model.Service) bool {
	added := false
	var addrs []netip.Addr
	for _, b := range svc.Backends {
		if b.Local || slices.Contains(addrs, b.Addr) {
			continue
		}
		addrs = append(addrs, b.Addr)
		if d.remoteRefs[b.Addr]++; d.remoteRefs[b.Addr] == 1 {
			added = true
		}
	}
	if len(addrs) > 0 {
		d.remote[svc.Name] = addrs
	}
	return added
}

func (d *Datapath) syncPodDevices() {
	if perr := d.SyncPodDevices(); perr != nil {
		d.log.Warn("east-west program not attached to every pod device", zap.Error(perr))
	}
}

func (d *Datapath) syncNeighbours() {
	remote := slices.Collect(maps.Keys(d.remoteRefs))
	slices.SortFunc(remote, netip.Addr.Compare)
	if nerr := d.neigh.Sync(context.Background(), remote); nerr != nil {
		d.log.Warn("neighbour entries for remote backends not fully programmed", zap.Error(nerr))
	}
}

// Close releases this process's handles; the pinned datapath keeps
// forwarding.
func (d *Datapath) Close() error { return d.dp.Close() }

// Remove detaches and unpins everything: forwarding stops.
func (d *Datapath) Remove() error {
	var errs []error
	for _, dev := range d.devices {
		if err := d.dp.Detach(dev.Name); err != nil {
			errs = append(errs, err)
		}
	}
	// Pod devices and the cgroup hooks: dp.Remove detaches every pinned
	// link left.
	if err := d.dp.Remove(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
