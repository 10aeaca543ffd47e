package testrun

import (
	"fmt"
	"runtime"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netns"
)

// XDP verdicts.
const (
	XDPAborted  = 0
	XDPDrop     = 1
	XDPPass     = 2
	XDPTX       = 3
	XDPRedirect = 4
)

// TCXNext is tcx's "continue" (-1) as the test run reports it.
const TCXNext = 0xffffffff

// XDPMd is struct xdp_md, the XDP test-run context.
type XDPMd struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// NS is a network namespace that code can be run in.
type NS struct {
	h netns.NsHandle
}

// NewNS creates an unnamed network namespace.
func NewNS() (*NS, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("get current netns: %w", err)
	}
	defer orig.Close()
	h, err := netns.New()
	if err != nil {
		return nil, fmt.Errorf("create netns: %w", err)
	}
	if err := netns.Set(orig); err != nil {
		// The thread is stuck in the new namespace: let it die with the
		// goroutine rather than reuse it.
		runtime.LockOSThread()
		return nil, fmt.Errorf("return to original netns: %w", err)
	}
	return &NS{h: h}, nil
}

// Do runs fn on a thread inside the namespace.
func (n *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(n.h); err != nil {
			errc <- fmt.Errorf("enter netns: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: it exits with this goroutine.
			errc <- fmt.Errorf("leave netns: %w", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Close releases the namespace; it disappears with its last user.
func (n *NS) Close() error { return n.h.Close() }

// RunXDP runs an XDP program once on frame as if received on ifindex (0:
// no device). It must run inside the namespace that owns ifindex.
func RunXDP(prog *ebpf.Program, frame []byte, ifindex int) (uint32, []byte, error) {
	opts := ebpf.RunOptions{
		Data:    frame,
		DataOut: make([]byte, len(frame)+512),
	}
	if ifindex != 0 {
		opts.Context = XDPMd{DataEnd: uint32(len(frame)), IngressIfindex: uint32(ifindex)}
	}
	ret, err := prog.Run(&opts)
	if err != nil {
		return 0, nil, fmt.Errorf("run XDP program: %w", err)
	}
	return ret, opts.DataOut, nil
}

// RunTC runs a tc program once on frame.
func RunTC(prog *ebpf.Program, frame []byte) (uint32, []byte, error) {
	opts := ebpf.RunOptions{
		Data:    frame,
		DataOut: make([]byte, len(frame)+512),
	}
	ret, err := prog.Run(&opts)
	if err != nil {
		return 0, nil, fmt.Errorf("run tc program: %w", err)
	}
	return ret, opts.DataOut, nil
}

// TC verdicts other than TCXNext.
const (
	TCXPass     = 0
	TCXDrop     = 2
	TCXRedirect = 7
)

// SkbCtx is the head of struct __sk_buff, the tc test-run context, up to
// ifindex (the kernel zero-fills the rest).
type SkbCtx struct {
	Len, PktType, Mark, QueueMapping, Protocol, VlanPresent, VlanTci, VlanProto, Priority, IngressIfindex, Ifindex uint32
}

// RunTCOn runs a tc program once on frame as if on device ifindex. It must
// run inside the namespace that owns ifindex.
func RunTCOn(prog *ebpf.Program, frame []byte, ifindex int) (uint32, []byte, error) {
	opts := ebpf.RunOptions{
		Data:    frame,
		DataOut: make([]byte, len(frame)+512),
		Context: SkbCtx{Ifindex: uint32(ifindex)},
	}
	ret, err := prog.Run(&opts)
	if err != nil {
		return 0, nil, fmt.Errorf("run tc program: %w", err)
	}
	return ret, opts.DataOut, nil
}
