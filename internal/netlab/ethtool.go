package netlab

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ethtoolValueReq is struct ethtool_value.
type ethtoolValueReq struct {
	cmd  uint32
	data uint32
}

// ifreqData is struct ifreq with ifr_data set (40 bytes on 64-bit).
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

// ethtoolValue issues a legacy SIOCETHTOOL command that takes a struct
// ethtool_value, in the calling thread's network namespace, and returns the
// data the kernel wrote back.
func ethtoolValue(dev string, cmd, data uint32) (uint32, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	v := &ethtoolValueReq{cmd: cmd, data: data}
	var ifr ifreqData
	copy(ifr.name[:unix.IFNAMSIZ-1], dev)
	ifr.data = unsafe.Pointer(v)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(v)
	if errno != 0 {
		return 0, errno
	}
	return v.data, nil
}
