package netlab

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// xdpPassProgram returns the lab's XDP program that returns XDP_PASS,
// loading it on first use. It is closed by Shutdown.
func (l *Lab) xdpPassProgram() (*ebpf.Program, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, fmt.Errorf("load xdp pass program: %w", ErrClosed)
	}
	if l.xdpPass != nil {
		return l.xdpPass, nil
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "netlab_pass",
		Type: ebpf.XDP,
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, 2), // XDP_PASS
			asm.Return(),
		},
		License: "GPL",
	})
	if err != nil {
		return nil, fmt.Errorf("load xdp pass program: %w", err)
	}
	l.xdpPass = prog
	return prog, nil
}

// AttachXDP attaches prog to link dev inside the namespace with a bpf_link
// (flags as in link.XDPOptions, e.g. link.XDPDriverMode). The lab detaches it
// on Shutdown; closing the returned link earlier is fine.
func (n *NS) AttachXDP(dev string, prog *ebpf.Program, flags link.XDPAttachFlags) (link.Link, error) {
	idx, err := n.LinkIndex(dev)
	if err != nil {
		return nil, err
	}
	l := n.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, fmt.Errorf("attach xdp to %s in %s: %w", dev, n.full, ErrClosed)
	}
	var lk link.Link
	// The ifindex is resolved in the calling thread's namespace.
	err = n.Do(func() (err error) {
		lk, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: idx, Flags: flags})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("attach xdp to %s in %s: %w", dev, n.full, err)
	}
	l.links = append(l.links, lk)
	return lk, nil
}

// AttachXDPPass attaches a program returning XDP_PASS to dev in native
// (driver) mode. Native XDP_TX or XDP_REDIRECT out of a veth is delivered
// only when the peer veth has an XDP program: attach this to the peer. The
// lab detaches it on Shutdown.
func (n *NS) AttachXDPPass(dev string) (link.Link, error) {
	prog, err := n.lab.xdpPassProgram()
	if err != nil {
		return nil, err
	}
	return n.AttachXDP(dev, prog, link.XDPDriverMode)
}
