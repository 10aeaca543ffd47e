package netdev

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Ethtool supplies what only the ethtool interface knows: the driver name
// of virtual devices (veth, bridge, macvlan, ...) and offload features.
type Ethtool interface {
	// Driver returns the driver name as `ethtool -i` shows it.
	Driver(dev string) (string, error)
	// Features maps kernel feature names (e.g. "rx-lro", "rx-gro-hw") to
	// their active state.
	Features(dev string) (map[string]bool, error)
}

// StaticEthtool answers from maps (tests). Missing devices give an error.
type StaticEthtool struct {
	Drivers     map[string]string
	FeatureSets map[string]map[string]bool
}

// Driver returns the fixed driver name.
func (s StaticEthtool) Driver(dev string) (string, error) {
	if d, ok := s.Drivers[dev]; ok {
		return d, nil
	}
	return "", fmt.Errorf("%s: no driver information", dev)
}

// Features returns the fixed features.
func (s StaticEthtool) Features(dev string) (map[string]bool, error) {
	if f, ok := s.FeatureSets[dev]; ok {
		return f, nil
	}
	return nil, fmt.Errorf("%s: no feature information", dev)
}

// EthtoolIoctl implements Ethtool with the SIOCETHTOOL ioctl on a socket of
// the network namespace it was created in.
type EthtoolIoctl struct {
	mu sync.Mutex
	fd int
}

// NewEthtoolIoctl opens the socket in the calling thread's network
// namespace. Close it when done.
func NewEthtoolIoctl() (*EthtoolIoctl, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("open socket for ethtool: %w", err)
	}
	return &EthtoolIoctl{fd: fd}, nil
}

// Close closes the socket.
func (e *EthtoolIoctl) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fd < 0 {
		return nil
	}
	err := unix.Close(e.fd)
	e.fd = -1
	return err
}

// Driver uses ETHTOOL_GDRVINFO.
func (e *EthtoolIoctl) Driver(dev string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	info, err := unix.IoctlGetEthtoolDrvinfo(e.fd, dev)
	if err != nil {
		return "", fmt.Errorf("ETHTOOL_GDRVINFO on %s: %w", dev, err)
	}
	return unix.ByteSliceToString(info.Driver[:]), nil
}

const (
	ethSSFeatures = 4  // ETH_SS_FEATURES
	ethGStringLen = 32 // ETH_GSTRING_LEN
)

// ifreqData is struct ifreq with ifr_data set (see x/sys/unix).
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

func (e *EthtoolIoctl) ioctl(dev string, buf []byte) error {
	if len(dev) >= unix.IFNAMSIZ {
		return fmt.Errorf("device name %q too long", dev)
	}
	var ifr ifreqData
	copy(ifr.name[:], dev)
	ifr.data = unsafe.Pointer(&buf[0])
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(e.fd), uintptr(unix.SIOCETHTOOL), uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(buf)
	runtime.KeepAlive(&ifr)
	if errno != 0 {
		return errno
	}
	return nil
}

// Features uses ETHTOOL_GSSET_INFO and ETHTOOL_GSTRINGS for the feature
// names and ETHTOOL_GFEATURES for their active state.
func (e *EthtoolIoctl) Features(dev string) (map[string]bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ne := binary.NativeEndian

	// struct ethtool_sset_info { u32 cmd; u32 reserved; u64 sset_mask; u32 data[1]; }
	info := make([]byte, 24)
	ne.PutUint32(info[0:], unix.ETHTOOL_GSSET_INFO)
	ne.PutUint64(info[8:], 1<<ethSSFeatures)
	if err := e.ioctl(dev, info); err != nil {
		return nil, fmt.Errorf("ETHTOOL_GSSET_INFO on %s: %w", dev, err)
	}
	if ne.Uint64(info[8:])&(1<<ethSSFeatures) == 0 {
		return nil, fmt.Errorf("%s: kernel reports no feature strings", dev)
	}
	n := int(ne.Uint32(info[16:]))
	if n <= 0 || n > 4096 {
		return nil, fmt.Errorf("%s: implausible feature count %d", dev, n)
	}

	// struct ethtool_gstrings { u32 cmd; u32 string_set; u32 len; u8 data[]; }
	strs := make([]byte, 12+n*ethGStringLen)
	ne.PutUint32(strs[0:], unix.ETHTOOL_GSTRINGS)
	ne.PutUint32(strs[4:], ethSSFeatures)
	ne.PutUint32(strs[8:], uint32(n))
	if err := e.ioctl(dev, strs); err != nil {
		return nil, fmt.Errorf("ETHTOOL_GSTRINGS on %s: %w", dev, err)
	}

	// struct ethtool_gfeatures { u32 cmd; u32 size; struct { u32 available,
	// requested, active, never_changed; } features[]; }
	blocks := (n + 31) / 32
	feats := make([]byte, 8+blocks*16)
	ne.PutUint32(feats[0:], unix.ETHTOOL_GFEATURES)
	ne.PutUint32(feats[4:], uint32(blocks))
	if err := e.ioctl(dev, feats); err != nil {
		return nil, fmt.Errorf("ETHTOOL_GFEATURES on %s: %w", dev, err)
	}
	out := make(map[string]bool, n)
	for i := range n {
		name := unix.ByteSliceToString(strs[12+i*ethGStringLen : 12+(i+1)*ethGStringLen])
		if name == "" {
			continue
		}
		active := ne.Uint32(feats[8+(i/32)*16+8:])
		out[name] = active&(1<<(i%32)) != 0
	}
	return out, nil
}
