package translate

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Keywords accepted in a nodePortAddresses list, as kube-proxy's
// --nodeport-addresses flag accepts them.
const (
	NodePortAddressesPrimary   = "primary"
	NodePortAddressesLocalhost = "localhost"
	NodePortAddressesAll       = "all"
)

// NodePortAddresses resolves a nodePortAddresses list (CIDRs and the
// keywords "primary", "localhost" and "all") against the node's addresses
// and returns, sorted and without duplicates, the addresses NodePorts answer
// on. It follows kube-proxy's NewNodePortAddresses and GetNodeIPs:
//
//   - "primary" expands to each primary address as a /32 or /128 (a loopback
//     primary is skipped), "localhost" to 127.0.0.0/8 and ::1/128, "all" to
//     0.0.0.0/0 and ::/0;
//   - the CIDRs are taken per IP family, and a family with no CIDR at all
//     matches every address of that family, so an empty list means "all"
//     (kube-proxy's iptables default; its nftables default is "primary",
//     which callers pass explicitly);
//   - loopback addresses never serve NodePorts, as in the nftables proxier
//     (kube-proxy's localhost NodePort support is not part of the model).
//
// An entry that is neither a keyword nor a CIDR is an error: kube-proxy
// refuses to start with one.
func NodePortAddresses(spec []string, nodeIPs []netip.Addr, primary ...netip.Addr) ([]netip.Addr, error) {
	var cidrs []netip.Prefix
	for _, entry := range spec {
		switch strings.TrimSpace(entry) {
		case NodePortAddressesPrimary:
			for _, p := range primary {
				p = p.Unmap().WithZone("")
				if p.IsValid() && !p.IsLoopback() {
					cidrs = append(cidrs, hostPrefix(p))
				}
			}
		case NodePortAddressesLocalhost:
			cidrs = append(cidrs, netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"))
		case NodePortAddressesAll:
			cidrs = append(cidrs, netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0"))
		default:
			p, err := parseCIDR(strings.TrimSpace(entry))
			if err != nil {
				return nil, fmt.Errorf("parse nodePortAddresses entry %q: %w", entry, err)
			}
			cidrs = append(cidrs, p)
		}
	}
	var has4, has6 bool
	for _, c := range cidrs {
		if c.Addr().Is4() {
			has4 = true
		} else {
			has6 = true
		}
	}
	if !has4 {
		cidrs = append(cidrs, netip.MustParsePrefix("0.0.0.0/0"))
	}
	if !has6 {
		cidrs = append(cidrs, netip.MustParsePrefix("::/0"))
	}

	var out []netip.Addr
	for _, ip := range nodeIPs {
		ip = ip.Unmap().WithZone("")
		if !ip.IsValid() || ip.IsLoopback() || ip.IsUnspecified() {
			continue
		}
		if slices.ContainsFunc(cidrs, func(c netip.Prefix) bool { return c.Contains(ip) }) {
			out = append(out, ip)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out), nil
}
