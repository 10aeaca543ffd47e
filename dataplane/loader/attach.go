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
	"golang.org/x/sys/unix"
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

// AttachTCPod attaches the east-west program to the ingress of a pod's
// host-side device (packets from the pod) with tcx, or updates Strait's
// existing attachment in place.
func (d *Datapath) AttachTCPod(dev string) (Attached, error) {
	a := Attached{Device: dev}
	nl, err := netlink.LinkByName(dev)
	if err != nil {
		return a, fmt.Errorf("find device %s: %w", dev, err)
	}
	path := d.linkPath("tcx_pod", dev)
	if l, err := link.LoadPinnedLink(path, nil); err == nil {
		defer l.Close()
		if err := l.Update(d.objs.StraitTcPod); err != nil {
			return a, fmt.Errorf("update pod program on %s in place: %w", dev, err)
		}
		a.Updated = true
		return a, nil
	}
	l, err := link.AttachTCX(link.TCXOptions{Interface: nl.Attrs().Index, Program: d.objs.StraitTcPod, Attach: ebpf.AttachTCXIngress})
	if err != nil {
		return a, fmt.Errorf("attach tcx ingress to %s: %w", dev, err)
	}
	defer l.Close()
	if err := l.Pin(path); err != nil {
		_ = l.Detach()
		return a, fmt.Errorf("pin tcx link of %s: %w", dev, err)
	}
	d.log.Debug("attached pod program", zap.String("device", dev))
	return a, nil
}

// DetachTCPod removes the pod program from dev (a pod that went away takes
// its device and the attachment with it; this removes the pin).
func (d *Datapath) DetachTCPod(dev string) error {
	err := detachPinned(d.linkPath("tcx_pod", dev))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// TCPodDevices lists the devices with a pinned pod-program attachment.
func (d *Datapath) TCPodDevices() []string {
	paths, _ := filepath.Glob(filepath.Join(d.pinDir, "links", "tcx_pod_*"))
	var out []string
	for _, p := range paths {
		out = append(out, filepath.Base(p)[len("tcx_pod_"):])
	}
	return out
}

// cgroupHooks are the socket-level programs and where they attach.
func (d *Datapath) cgroupHooks() []struct {
	name string
	prog *ebpf.Program
	typ  ebpf.AttachType
} {
	return []struct {
		name string
		prog *ebpf.Program
		typ  ebpf.AttachType
	}{
		{"connect4", d.objs.StraitConnect4, ebpf.AttachCGroupInet4Connect},
		{"sendmsg4", d.objs.StraitSendmsg4, ebpf.AttachCGroupUDP4Sendmsg},
		{"recvmsg4", d.objs.StraitRecvmsg4, ebpf.AttachCGroupUDP4Recvmsg},
		{"getpeername4", d.objs.StraitGetpeername4, ebpf.AttachCgroupInet4GetPeername},
	}
}

// AttachCgroup attaches the socket-level programs (connect4, sendmsg4,
// recvmsg4, getpeername4) to the cgroup v2 directory cgroupPath, normally
// the root of the hierarchy, with multi-attach bpf_links pinned under the
// pin directory; an existing attachment is updated in place. Programs of
// other owners on the same cgroup keep running.
func (d *Datapath) AttachCgroup(cgroupPath string) (updated bool, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(cgroupPath, &st); err != nil {
		return false, fmt.Errorf("cgroup %s: %w", cgroupPath, err)
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		return false, fmt.Errorf("%s is not on a cgroup v2 file system", cgroupPath)
	}
	for _, h := range d.cgroupHooks() {
		path := d.linkPath("cgroup", h.name)
		if l, err := link.LoadPinnedLink(path, nil); err == nil {
			uerr := l.Update(h.prog)
			l.Close()
			if uerr != nil {
				return false, fmt.Errorf("update %s program in place: %w", h.name, uerr)
			}
			updated = true
			continue
		}
		l, err := link.AttachCgroup(link.CgroupOptions{Path: cgroupPath, Attach: h.typ, Program: h.prog})
		if err != nil {
			return false, fmt.Errorf("attach %s to cgroup %s: %w", h.name, cgroupPath, err)
		}
		perr := l.Pin(path)
		if perr != nil {
			_ = l.Close()
			return false, fmt.Errorf("pin %s link: %w", h.name, perr)
		}
		l.Close()
	}
	if !updated {
		d.log.Info("attached socket-level programs", zap.String("cgroup", cgroupPath))
	}
	return updated, nil
}

// DetachCgroup removes the socket-level programs (socket-level balancing
// turned off by configuration).
func (d *Datapath) DetachCgroup() error {
	var errs []error
	for _, h := range d.cgroupHooks() {
		if err := detachPinned(d.linkPath("cgroup", h.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Detach removes Strait's programs from dev.
func (d *Datapath) Detach(dev string) error {
	var errs []error
	for _, kind := range []string{"xdp", "tcx_egress", "tcx_pod"} {
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
