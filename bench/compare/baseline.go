package compare

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// Baseline is the same traffic through the same lab with no proxy: the
// node's uplink runs a program that only returns XDP_TX, so every frame
// goes straight back to the sink. Generator, veth and sink share the
// injecting CPU with the proxy under test; the baseline's CPU per packet
// is their share, and what a proxy costs beyond it is the proxy's own.
type Baseline struct {
	Established Traffic `json:"established"`
	New         Traffic `json:"new"`
}

// ServiceNet holds every ServiceIP.
var ServiceNet = netip.MustParsePrefix("198.19.0.0/16")

// NsPerPacket is the CPU time per forwarded packet of a phase.
func NsPerPacket(t Traffic) float64 {
	if t.PPSPerCPU == 0 {
		return 0
	}
	return 1e9 / t.PPSPerCPU
}

// ProxyNsPerPacket is what a proxy's phase costs per packet beyond the
// baseline's (0 when either is missing).
func ProxyNsPerPacket(t, base Traffic) float64 {
	a, b := NsPerPacket(t), NsPerPacket(base)
	if a == 0 || b == 0 {
		return 0
	}
	return a - b
}

func runBaseline(ctx context.Context, o Options, services int) (b Baseline, err error) {
	// Reflected frames keep the Service address as destination.
	tl, err := newTrafficLab(ServiceNet)
	if err != nil {
		return b, err
	}
	defer func() { err = errors.Join(err, tl.close()) }()
	nl, objs := tl.nl, tl.objs
	tx, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "compare_tx", Type: ebpf.XDP, AttachType: ebpf.AttachXDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 3), asm.Return()}})
	if err != nil {
		return b, fmt.Errorf("load the XDP_TX program: %w", err)
	}
	defer tx.Close()
	if _, err := nl.Node.AttachXDP(nl.Uplink, tx, link.XDPDriverMode); err != nil {
		return b, err
	}
	flows := o.Flows
	if flows == 0 {
		flows = max(4*services, 4096)
	}
	if b.Established, err = phase(ctx, o, nl, objs, services, flows, false); err != nil {
		return b, err
	}
	if b.New, err = phase(ctx, o, nl, objs, services, 0, true); err != nil {
		return b, err
	}
	return b, nil
}
