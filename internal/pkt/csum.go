package pkt

import (
	"encoding/binary"
	"fmt"
)

// sum16 is the ones' complement sum of b, not inverted.
func sum16(b []byte, initial uint32) uint32 {
	s := initial
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return s
}

// VerifyChecksums recomputes the IPv4 header checksum and the TCP, UDP or
// ICMP checksum of an Ethernet frame from scratch. A UDP checksum of 0
// means "none" and passes.
func VerifyChecksums(frame []byte) error {
	off := 14
	if len(frame) < off {
		return fmt.Errorf("frame of %d bytes", len(frame))
	}
	et := binary.BigEndian.Uint16(frame[12:])
	if et == 0x8100 || et == 0x88a8 {
		off += 4
		et = binary.BigEndian.Uint16(frame[16:])
	}
	if et != 0x0800 {
		return nil
	}
	if len(frame) < off+20 {
		return fmt.Errorf("truncated IPv4 header")
	}
	ip := frame[off:]
	ihl := int(ip[0]&0xf) * 4
	tot := int(binary.BigEndian.Uint16(ip[2:]))
	if ihl < 20 || tot < ihl || len(ip) < tot {
		return fmt.Errorf("bad IPv4 lengths ihl=%d tot=%d have=%d", ihl, tot, len(ip))
	}
	if s := sum16(ip[:ihl], 0); s != 0xffff {
		return fmt.Errorf("IPv4 header checksum wrong (sum %#04x)", s)
	}
	l4 := ip[ihl:tot]
	proto := ip[9]
	pseudo := sum16(ip[12:20], uint32(proto)+uint32(len(l4)))
	switch proto {
	case 6:
		if s := sum16(l4, pseudo); s != 0xffff {
			return fmt.Errorf("TCP checksum wrong (sum %#04x)", s)
		}
	case 17:
		if len(l4) < 8 {
			return fmt.Errorf("truncated UDP header")
		}
		if binary.BigEndian.Uint16(l4[6:]) == 0 {
			return nil
		}
		if s := sum16(l4, pseudo); s != 0xffff {
			return fmt.Errorf("UDP checksum wrong (sum %#04x)", s)
		}
	case 1:
		if s := sum16(l4, 0); s != 0xffff {
			return fmt.Errorf("ICMP checksum wrong (sum %#04x)", s)
		}
	}
	return nil
}
