package pktgen

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/straitlb/strait/internal/pkt"
)

// Protocols for Traffic.Proto.
const (
	TCP = "tcp"
	UDP = "udp"
)

// Header sizes: Ethernet + IPv4 + the L4 header.
const (
	ethIPLen  = 14 + 20
	minTCPLen = ethIPLen + 20
	minUDPLen = ethIPLen + 8
)

// Traffic describes the generated packets.
type Traffic struct {
	Proto string // TCP (default) or UDP
	// Size is the whole frame (Ethernet header included, no FCS); 0 or
	// anything below the headers gives the headers alone (54 bytes TCP,
	// 42 UDP).
	Size int
	// New makes every packet a new flow (TCP SYN); otherwise Flows flows
	// repeat (TCP ACK) and a warm-up pass creates their state first.
	New bool
	// Flows is the number of distinct flows (ignored when New); 0: 1024.
	Flows int
	// Services is the number of destination addresses, DstBase and the
	// next Services-1 addresses, all on DPort; 0: 1.
	Services int
	DstBase  netip.Addr
	DPort    uint16
	// SrcBase is the first client address (default 100.64.0.1); each
	// address uses source ports 1024..61023 before the next is used.
	SrcBase netip.Addr
}

// DefaultSrcBase is the first generated client address (RFC 6598 shared
// space: never a lab address).
var DefaultSrcBase = netip.MustParseAddr("100.64.0.1")

const (
	sportBase = 1024
	sportSpan = 60000
)

func (t Traffic) withDefaults() Traffic {
	if t.Proto == "" {
		t.Proto = TCP
	}
	if t.Flows <= 0 {
		t.Flows = 1024
	}
	if t.Services <= 0 {
		t.Services = 1
	}
	if !t.SrcBase.IsValid() {
		t.SrcBase = DefaultSrcBase
	}
	return t
}

// Validate checks the traffic description.
func (t Traffic) Validate() error {
	t = t.withDefaults()
	if t.Proto != TCP && t.Proto != UDP {
		return fmt.Errorf("traffic: protocol %q: want tcp or udp", t.Proto)
	}
	if !t.DstBase.Is4() || !t.SrcBase.Is4() {
		return fmt.Errorf("traffic: need IPv4 destination and source bases")
	}
	if t.Size > 1500+14 {
		return fmt.Errorf("traffic: frame size %d above the 1514-byte MTU frame", t.Size)
	}
	return nil
}

// Frame builds the template frame: the first flow's packet, checksums
// computed, padded with a zero payload to t.Size.
func (t Traffic) Frame(src, dst net.HardwareAddr) ([]byte, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	t = t.withDefaults()
	f := pkt.Frame{SrcMAC: src, DstMAC: dst, Src: t.SrcBase, Dst: t.DstBase,
		SPort: sportBase, DPort: t.DPort, Proto: 6, Flags: pkt.ACK, Window: 65535, Seq: 1, Ack: 1}
	hdr := minTCPLen
	if t.Proto == UDP {
		f.Proto, f.Flags, f.Seq, f.Ack, f.Window = 17, 0, 0, 0, 0
		hdr = minUDPLen
	} else if t.New {
		f.Flags, f.Ack = pkt.SYN, 0
	}
	if t.Size > hdr {
		f.Payload = make([]byte, t.Size-hdr)
	}
	return f.Bytes(), nil
}

// FlowOf returns flow n's source address and port and its destination
// address, as bench_gen computes them (flows: 0 for never repeating).
func FlowOf(t Traffic, n uint64) (src netip.Addr, sport uint16, dst netip.Addr) {
	t = t.withDefaults()
	f := n
	if !t.New {
		f = n % uint64(t.Flows)
	}
	dst = addAddr(t.DstBase, uint32(f%uint64(t.Services)))
	src = addAddr(t.SrcBase, uint32(f/sportSpan))
	return src, uint16(sportBase + f%sportSpan), dst
}

func addAddr(a netip.Addr, n uint32) netip.Addr {
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += n
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func addrU32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
