package xdpplan

import (
	"errors"
	"fmt"
	"strings"

	"github.com/straitlb/strait/nodeinfo/netdev"
	"golang.org/x/sys/unix"
)

// ExplainAttachError turns the kernel's answer to attaching XDP in mode to
// d into a message naming the device, its driver and the likely reason,
// with what to do. cpus is the number of online CPUs (0 when unknown). It
// returns "" for a nil error.
func ExplainAttachError(d netdev.Device, mode Mode, cpus int, err error) string {
	if err == nil {
		return ""
	}
	drv := DriverOf(&d)
	if drv == "" {
		drv = "unknown"
	}
	who := fmt.Sprintf("%s XDP on %s (driver %s) was refused", mode, d.Name, drv)
	var why []string
	switch {
	case errors.Is(err, unix.EOPNOTSUPP):
		if mode == ModeNative {
			why = append(why, "the driver does not implement native XDP; generic XDP works on any device (slower)")
			if d.Kind == "bond" {
				why = append(why, "a bond has native XDP only when every slave has it, in balance-rr, active-backup, balance-xor or 802.3ad mode, on Linux 5.15 or later")
			}
		} else {
			why = append(why, "the device does not support this XDP mode")
		}
	case errors.Is(err, unix.EEXIST):
		why = append(why, fmt.Sprintf("another XDP program is already attached, in another mode or by another tool, or an upper device (a bond) runs one; see `ip -d link show dev %s` and detach it (ip link set dev %s xdp off)", d.Name, d.Name))
	case errors.Is(err, unix.EBUSY):
		why = append(why, fmt.Sprintf("the device is busy: an XDP program attached through netlink, not bpf_link, or an AF_XDP socket holds it; detach it (ip link set dev %s xdp off)", d.Name))
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ERANGE):
		why = append(why, likelyRefusals(&d)...)
		if len(why) == 0 {
			why = append(why, "the driver rejected the configuration; its reason is in the kernel log (dmesg)")
		} else {
			why = append(why, "the driver's own message, if it logs one, is in the kernel log (dmesg)")
		}
	case errors.Is(err, unix.ENOMEM), errors.Is(err, unix.ENOSPC):
		n := "one per CPU"
		if cpus > 0 {
			n = fmt.Sprintf("one per CPU, %d here", cpus)
		}
		why = append(why, fmt.Sprintf("the driver could not set up its XDP transmit queues (%s); reduce the channel count (ethtool -L %s combined N) or free memory", n, d.Name))
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		why = append(why, "missing privileges: attaching XDP needs CAP_NET_ADMIN and CAP_BPF (or CAP_SYS_ADMIN)")
	case errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
		why = append(why, "the device disappeared")
	default:
		why = append(why, likelyRefusals(&d)...)
	}
	return fmt.Sprintf("%s: %s (kernel: %v)", who, strings.Join(why, "; "), err)
}

// likelyRefusals lists the configuration problems drivers commonly reject
// native XDP for.
func likelyRefusals(d *netdev.Device) []string {
	var out []string
	mtu, whose := MTUSubject(d)
	if limit := MaxMTU(d); mtu > limit {
		out = append(out, fmt.Sprintf("MTU %d on %s is above %d, the largest MTU %s accepts for single-buffer XDP (ip link set dev %s mtu %d)", mtu, whose, limit, DriverOf(d), strings.TrimPrefix(whose, "peer "), limit))
	}
	if on, _ := d.Feature(netdev.FeatureLRO); on {
		out = append(out, fmt.Sprintf("LRO is on (ethtool -K %s lro off)", d.Name))
	}
	if on, _ := d.Feature(netdev.FeatureGROHW); on {
		out = append(out, fmt.Sprintf("hardware GRO is on (ethtool -K %s rx-gro-hw off)", d.Name))
	}
	return out
}
