package flowhash

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// Seed is FLOW_HASH_SEED in bpf/include/consts.h.
const Seed = 0x5737a11c

const initval = 0xdeadbeef

// JHash3 is the kernel's jhash_3words.
func JHash3(a, b, c, seed uint32) uint32 {
	seed += initval + (3 << 2)
	a += seed
	b += seed
	c += seed
	c ^= b
	c -= bits.RotateLeft32(b, 14)
	a ^= c
	a -= bits.RotateLeft32(c, 11)
	b ^= a
	b -= bits.RotateLeft32(a, 25)
	c ^= b
	c -= bits.RotateLeft32(b, 16)
	a ^= c
	a -= bits.RotateLeft32(c, 4)
	b ^= a
	b -= bits.RotateLeft32(a, 14)
	c ^= b
	c -= bits.RotateLeft32(b, 24)
	return c
}

// Raw32 is an IPv4 address as the datapath loads it from a packet: the
// network-order bytes read as a native-endian integer.
func Raw32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.NativeEndian.Uint32(b[:])
}

// Raw16 is a port as the datapath loads it from a packet.
func Raw16(port uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], port)
	return binary.NativeEndian.Uint16(b[:])
}

// AddrFromRaw32 inverts Raw32.
func AddrFromRaw32(v uint32) netip.Addr {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// PortFromRaw16 inverts Raw16.
func PortFromRaw16(v uint16) uint16 {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], v)
	return binary.BigEndian.Uint16(b[:])
}

// Flow is flow_hash() in jhash.h: the destination address is left out so
// a NodePort flow hashes alike on every node.
func Flow(saddr netip.Addr, sport, dport uint16, proto uint8) uint32 {
	return JHash3(Raw32(saddr), uint32(Raw16(sport))<<16|uint32(Raw16(dport)), uint32(proto), Seed)
}

// Sock is the socket-level balancing hash (sock_hash in bpf/include/jhash.h):
// the socket cookie and the frontend port.
func Sock(cookie uint64, dport uint16) uint32 {
	return JHash3(uint32(cookie), uint32(cookie>>32), uint32(Raw16(dport)), Seed)
}
