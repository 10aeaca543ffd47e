package datapath

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap"

	"github.com/straitlb/strait/dataplane/lbmap"
	"github.com/straitlb/strait/dataplane/loader"
	"github.com/straitlb/strait/dataplane/neigh"
	"github.com/straitlb/strait/dataplane/program"
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
	d := &Datapath{log: log, dp: dp, neigh: neigh.New(log)}
	cfg.Program.Capacities = cfg.Capacities
	d.prog, err = program.New(log, dp.Maps, cfg.Program)
	if err != nil {
		dp.Close()
		return nil, err
	}
	var ifaces []program.Iface
	for _, name := range cfg.Devices {
		dev, err := describe(name)
		if err != nil {
			dp.Close()
			return nil, err
		}
		ifaces = append(ifaces, program.Iface{Index: dev.Index, SNATAddr: model.BackendKey{Addr: dev.SNATAddr}})
		// Program the device settings before the programs see traffic.
		if err := d.prog.SetIfaces(ifaces); err != nil {
			dp.Close()
			return nil, err
		}
		a, err := dp.AttachXDP(name, cfg.NativeOnly)
		if err != nil {
			dp.Close()
			return nil, err
		}
		dev.Mode, dev.Updated = a.Mode, a.Updated
		if _, err := dp.AttachTCEgress(name); err != nil {
			dp.Close()
			return nil, err
		}
		d.devices = append(d.devices, dev)
	}
	return d, nil
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
func (d *Datapath) Devices() []Device { return d.devices }

// Loader exposes the loaded objects (counters, the CLI, tests).
func (d *Datapath) Loader() *loader.Datapath { return d.dp }

// Apply programs state and keeps managed neighbour entries for the next
// hops of its remote backends.
func (d *Datapath) Apply(state model.State) (program.Result, error) {
	res, err := d.prog.Apply(state)
	var remote []netip.Addr
	seen := make(map[netip.Addr]bool)
	for _, s := range state.Services {
		for _, b := range s.Backends {
			if !b.Local && !seen[b.Addr] {
				seen[b.Addr] = true
				remote = append(remote, b.Addr)
			}
		}
	}
	if nerr := d.neigh.Sync(context.Background(), remote); nerr != nil {
		d.log.Warn("neighbour entries for remote backends not fully programmed", zap.Error(nerr))
	}
	return res, err
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
	if err := d.dp.Remove(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
