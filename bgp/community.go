package bgp

import (
	"fmt"
	"strconv"
	"strings"
)

// Well-known standard communities.
const (
	// CommunityGracefulShutdown is GRACEFUL_SHUTDOWN, 65535:0 (RFC 8326).
	CommunityGracefulShutdown uint32 = 0xFFFF0000
	// CommunityNoExport is NO_EXPORT, 65535:65281 (RFC 1997).
	CommunityNoExport uint32 = 0xFFFFFF01
	// CommunityNoAdvertise is NO_ADVERTISE, 65535:65282 (RFC 1997).
	CommunityNoAdvertise uint32 = 0xFFFFFF02
	// CommunityNoExportSubconfed is NO_EXPORT_SUBCONFED, 65535:65283.
	CommunityNoExportSubconfed uint32 = 0xFFFFFF03
	// CommunityBlackhole is BLACKHOLE, 65535:666 (RFC 7999).
	CommunityBlackhole uint32 = 0xFFFF029A
)

var wellKnownCommunities = map[string]uint32{
	"graceful-shutdown":   CommunityGracefulShutdown,
	"no-export":           CommunityNoExport,
	"no-advertise":        CommunityNoAdvertise,
	"no-export-subconfed": CommunityNoExportSubconfed,
	"blackhole":           CommunityBlackhole,
}

// ParseCommunity parses a standard community: "AS:value" with both halves
// in [0, 65535] (e.g. "65535:0"), or a well-known name (graceful-shutdown,
// no-export, no-advertise, no-export-subconfed, blackhole).
func ParseCommunity(s string) (uint32, error) {
	t := strings.TrimSpace(s)
	if v, ok := wellKnownCommunities[strings.ToLower(t)]; ok {
		return v, nil
	}
	hi, lo, ok := strings.Cut(t, ":")
	if !ok {
		return 0, fmt.Errorf("community %q: want AS:value or a well-known name", s)
	}
	h, err1 := strconv.ParseUint(hi, 10, 16)
	l, err2 := strconv.ParseUint(lo, 10, 16)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("community %q: both halves must be integers in [0, 65535]", s)
	}
	return uint32(h)<<16 | uint32(l), nil
}

// ParseCommunities parses each of ss with ParseCommunity.
func ParseCommunities(ss []string) ([]uint32, error) {
	out := make([]uint32, 0, len(ss))
	for _, s := range ss {
		c, err := ParseCommunity(s)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// FormatCommunity formats a standard community as "AS:value".
func FormatCommunity(c uint32) string {
	return strconv.FormatUint(uint64(c>>16), 10) + ":" + strconv.FormatUint(uint64(c&0xFFFF), 10)
}

// FormatCommunities formats each community and joins them with spaces.
func FormatCommunities(cs []uint32) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = FormatCommunity(c)
	}
	return strings.Join(parts, " ")
}

// ParseLargeCommunity parses "global:local1:local2", each a uint32.
func ParseLargeCommunity(s string) (LargeCommunity, error) {
	parts := strings.Split(strings.TrimSpace(s), ":")
	if len(parts) != 3 {
		return LargeCommunity{}, fmt.Errorf("large community %q: want global:local1:local2", s)
	}
	var v [3]uint32
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return LargeCommunity{}, fmt.Errorf("large community %q: %q is not an integer in [0, 4294967295]", s, p)
		}
		v[i] = uint32(n)
	}
	return LargeCommunity{v[0], v[1], v[2]}, nil
}
