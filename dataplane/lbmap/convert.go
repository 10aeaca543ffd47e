package lbmap

import (
	"net/netip"

	"github.com/straitlb/strait/dataplane/flowhash"
	"github.com/straitlb/strait/model"
)

// Flags of the datapath, mirrored from bpf/include/consts.h.
const (
	SvcFlagDropEmpty = 1 << 0
	SvcFlagAffinity  = 1 << 1
	SvcFlagSrcRanges = 1 << 2
	SvcFlagActive    = 1 << 3 // every programmed service: an array slot in use

	FeFlagExternal     = 1 << 0
	FeFlagLoadBalancer = 1 << 1

	BeFlagLocal = 1 << 0

	CtFlagRewriteSrc = 1 << 0
	CtFlagRewriteDst = 1 << 1
	CtFlagReverse    = 1 << 2
	CtFlagLocal      = 1 << 3
	CtFlagEgress     = 1 << 4
)

// Verdicts counted per service (SVC_STAT_*).
const (
	StatLocal = iota
	StatRemote
	StatReject
	StatDrop
	StatMax
)

// MakeFrontendKey converts a model key; the address must be IPv4.
func MakeFrontendKey(k model.FrontendKey) FrontendKey {
	return FrontendKey{Addr: flowhash.Raw32(k.Addr), Port: flowhash.Raw16(k.Port), Proto: uint8(k.Proto)}
}

// FrontendModelKey converts back.
func FrontendModelKey(k FrontendKey) model.FrontendKey {
	return model.FrontendKey{Addr: flowhash.AddrFromRaw32(k.Addr), Port: flowhash.PortFromRaw16(k.Port), Proto: model.Protocol(k.Proto)}
}

// MakeBackendVal converts a model backend.
func MakeBackendVal(b model.Backend) BackendVal {
	v := BackendVal{Addr: flowhash.Raw32(b.Addr), Port: flowhash.Raw16(b.Port)}
	if b.Local {
		v.Flags |= BeFlagLocal
	}
	return v
}

// BackendKeyOf returns the model key of a backend value.
func BackendKeyOf(v BackendVal) model.BackendKey {
	return model.BackendKey{Addr: flowhash.AddrFromRaw32(v.Addr), Port: flowhash.PortFromRaw16(v.Port)}
}

// MakeSrcRangeKey converts a source range of service id.
func MakeSrcRangeKey(svcID uint32, p netip.Prefix) SrcRangeKey {
	p = p.Masked()
	var be [4]byte
	be[0], be[1], be[2], be[3] = byte(svcID>>24), byte(svcID>>16), byte(svcID>>8), byte(svcID)
	return SrcRangeKey{
		Prefixlen: 32 + uint32(p.Bits()),
		SvcId:     flowhash.Raw32(netip.AddrFrom4(be)),
		Addr:      flowhash.Raw32(p.Addr()),
	}
}

// SrcRangeOf converts back to (service id, prefix).
func SrcRangeOf(k SrcRangeKey) (uint32, netip.Prefix) {
	id := flowhash.AddrFromRaw32(k.SvcId).As4()
	svc := uint32(id[0])<<24 | uint32(id[1])<<16 | uint32(id[2])<<8 | uint32(id[3])
	return svc, netip.PrefixFrom(flowhash.AddrFromRaw32(k.Addr), int(k.Prefixlen)-32)
}
