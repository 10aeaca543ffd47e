package loader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"go.uber.org/zap"
)

// XDPMode says how an XDP program runs on a device.
type XDPMode string

// XDP modes.
const (
	XDPNative  XDPMode = "native"
	XDPGeneric XDPMode = "generic"
)

// Attached describes one attachment.
type Attached struct {
	Device  string
	Mode    XDPMode
	Updated bool // an existing pinned link was updated in place
}

func (d *Datapath) linkPath(kind, dev string) string {
	return filepath.Join(d.pinDir, "links", kind+"_"+dev)
}

// AttachXDP attaches the XDP program to dev, or updates Strait's existing
// attachment in place. With nativeOnly it fails instead of falling back to
// generic mode.
func (d *Datapath) AttachXDP(dev string, nativeOnly bool) (Attached, error) {
	a := Attached{Device: dev}
	nl, err := netlink.LinkByName(dev)
	if err != nil {
		return a, fmt.Errorf("find device %s: %w", dev, err)
	}
	path := d.linkPath("xdp", dev)
	if l, err := link.LoadPinnedLink(path, nil); err == nil {
		defer l.Close()
		if err := l.Update(d.objs.StraitXdp); err != nil {
			return a, fmt.Errorf("update XDP program on %s in place: %w", dev, err)
		}
		a.Updated = true
		a.Mode = modeOf(nl)
		d.log.Info("updated XDP program in place", zap.String("device", dev), zap.String("mode", string(a.Mode)))
		return a, nil
	}
	if x := nl.Attrs().Xdp; x != nil && x.Attached {
		return a, fmt.Errorf("device %s already runs XDP program id %d that Strait does not own; refusing to replace it", dev, x.ProgId)
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: d.objs.StraitXdp, Interface: nl.Attrs().Index, Flags: link.XDPDriverMode})
	a.Mode = XDPNative
	if err != nil {
		if nativeOnly {
			return a, fmt.Errorf("attach native XDP to %s (driver %s): %w", dev, nl.Type(), err)
		}
		d.log.Warn("native XDP refused, falling back to generic XDP", zap.String("device", dev),
			zap.String("linkType", nl.Type()), zap.Error(err))
		l, err = link.AttachXDP(link.XDPOptions{Program: d.objs.StraitXdp, Interface: nl.Attrs().Index, Flags: link.XDPGenericMode})
		a.Mode = XDPGeneric
		if err != nil {
			return a, fmt.Errorf("attach generic XDP to %s: %w", dev, err)
		}
	}
	defer l.Close()
	if err := l.Pin(path); err != nil {
		_ = l.Detach()
		return a, fmt.Errorf("pin XDP link of %s: %w", dev, err)
	}
	d.log.Info("attached XDP program", zap.String("device", dev), zap.String("mode", string(a.Mode)))
	return a, nil
}

func modeOf(nl netlink.Link) XDPMode {
	if x := nl.Attrs().Xdp; x != nil && x.AttachMode == 2 { // XDP_ATTACHED_SKB
		return XDPGeneric
	}
	return XDPNative
}

// AttachTCEgress attaches the reverse-NAT program to dev's egress with
// tcx, or updates Strait's existing attachment in place.
func (d *Datapath) AttachTCEgress(dev string) (Attached, error) {
	a := Attached{Device: dev}
	nl, err := netlink.LinkByName(dev)
	if err != nil {
		return a, fmt.Errorf("find device %s: %w", dev, err)
	}
	path := d.linkPath("tcx_egress", dev)
	if l, err := link.LoadPinnedLink(path, nil); err == nil {
		defer l.Close()
		if err := l.Update(d.objs.StraitTcEgress); err != nil {
			return a, fmt.Errorf("update tc program on %s in place: %w", dev, err)
		}
		a.Updated = true
		return a, nil
	}
	l, err := link.AttachTCX(link.TCXOptions{Interface: nl.Attrs().Index, Program: d.objs.StraitTcEgress, Attach: ebpf.AttachTCXEgress})
	if err != nil {
		return a, fmt.Errorf("attach tcx egress to %s: %w", dev, err)
	}
	defer l.Close()
	if err := l.Pin(path); err != nil {
		_ = l.Detach()
		return a, fmt.Errorf("pin tcx link of %s: %w", dev, err)
	}
	d.log.Info("attached tc egress program", zap.String("device", dev))
	return a, nil
}

// Detach removes Strait's programs from dev.
func (d *Datapath) Detach(dev string) error {
	var errs []error
	for _, kind := range []string{"xdp", "tcx_egress"} {
		if err := detachPinned(d.linkPath(kind, dev)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func detachPinned(path string) error {
	l, err := link.LoadPinnedLink(path, nil)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return err
		}
		_ = os.Remove(path)
		return fmt.Errorf("open pinned link %s: %w", path, err)
	}
	defer l.Close()
	_ = l.Unpin()
	if err := l.Detach(); err != nil {
		return fmt.Errorf("detach %s: %w", path, err)
	}
	return nil
}
