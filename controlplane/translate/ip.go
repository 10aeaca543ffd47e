package translate

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// parseIP parses an IP address the way kube-proxy's netutils.ParseIPSloppy
// does: IPv4 octets may carry leading zeros (read as decimal), an
// IPv4-mapped IPv6 address is an IPv4 address, and a zone is an error.
func parseIP(s string) (netip.Addr, error) {
	if strings.Contains(s, "%") {
		return netip.Addr{}, errors.New("zones are not allowed")
	}
	a, err := netip.ParseAddr(s)
	if err == nil {
		return a.Unmap(), nil
	}
	if a4, ok := parseIPv4Sloppy(s); ok {
		return a4, nil
	}
	return netip.Addr{}, err
}

// parseIPv4Sloppy accepts dotted-quad IPv4 with leading zeros, which Go's
// netip rejects and the legacy parser kube-proxy uses accepts as decimal.
func parseIPv4Sloppy(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return netip.Addr{}, false
	}
	var b [4]byte
	for i, p := range parts {
		if p == "" {
			return netip.Addr{}, false
		}
		n := 0
		for _, c := range p {
			if c < '0' || c > '9' {
				return netip.Addr{}, false
			}
			n = n*10 + int(c-'0')
			if n > 255 {
				return netip.Addr{}, false
			}
		}
		b[i] = byte(n)
	}
	return netip.AddrFrom4(b), true
}

// parseCIDR parses a CIDR the way netutils.ParseCIDRSloppy does and returns
// the masked network (so "10.0.0.5/8" is 10.0.0.0/8).
func parseCIDR(s string) (netip.Prefix, error) {
	addrPart, bitsPart, ok := strings.Cut(s, "/")
	if !ok {
		return netip.Prefix{}, errors.New("missing prefix length")
	}
	var addr netip.Addr
	if strings.Contains(addrPart, ":") {
		// An IPv6 CIDR stays IPv6 even when the address is IPv4-mapped.
		a, err := netip.ParseAddr(addrPart)
		if err != nil {
			return netip.Prefix{}, err
		}
		if a.Zone() != "" {
			return netip.Prefix{}, errors.New("zones are not allowed")
		}
		addr = a
	} else {
		a, ok := parseIPv4Sloppy(addrPart)
		if !ok {
			return netip.Prefix{}, fmt.Errorf("invalid IPv4 address %q", addrPart)
		}
		addr = a
	}
	for _, c := range bitsPart {
		if c < '0' || c > '9' {
			return netip.Prefix{}, fmt.Errorf("invalid prefix length %q", bitsPart)
		}
	}
	bits, err := strconv.Atoi(bitsPart)
	if err != nil || bits > addr.BitLen() {
		return netip.Prefix{}, fmt.Errorf("invalid prefix length %q", bitsPart)
	}
	return netip.PrefixFrom(addr, bits).Masked(), nil
}

// familyOf returns the Kubernetes IP family of a parsed address.
func familyOf(a netip.Addr) v1.IPFamily {
	if a.Is4() {
		return v1.IPv4Protocol
	}
	return v1.IPv6Protocol
}

// prefixFamily returns the Kubernetes IP family of a parsed prefix.
func prefixFamily(p netip.Prefix) v1.IPFamily { return familyOf(p.Addr()) }

// hostPrefix is the single-address prefix of a.
func hostPrefix(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }
