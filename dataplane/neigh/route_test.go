package neigh

import (
	"fmt"
	"hash/maphash"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

func TestDefaultRules(t *testing.T) {
	custom := rule{Priority: 100, Table: 100, Plain: true}
	selector := kernelDefaultRules[1]
	selector.Plain = false // e.g. "from 10.0.0.0/8 lookup main"
	for _, tc := range []struct {
		name  string
		rules []rule
		want  bool
	}{
		{"kernel's", kernelDefaultRules, true},
		{"no default table", kernelDefaultRules[:2], true},
		{"none", nil, false},
		{"no main", []rule{kernelDefaultRules[0], kernelDefaultRules[2]}, false},
		{"extra rule", append(slices.Clone(kernelDefaultRules), custom), false},
		{"main rule with a selector", []rule{kernelDefaultRules[0], selector, kernelDefaultRules[2]}, false},
		{"duplicate", append(slices.Clone(kernelDefaultRules), kernelDefaultRules[1]), false},
		{"main at another priority", []rule{kernelDefaultRules[0], {Priority: 1000, Table: unix.RT_TABLE_MAIN, Plain: true}}, false},
	} {
		if got := defaultRules(tc.rules); got != tc.want {
			t.Errorf("%s: defaultRules = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// planString renders a plan as "route dst: members; ... | solo".
func planString(targets []netip.Addr, rts []route, groups []lookupGroup, solo []int) string {
	var parts []string
	for _, g := range groups {
		var ms []string
		for _, i := range g.Members {
			ms = append(ms, targets[i].String())
		}
		parts = append(parts, rts[g.Route].Dst.String()+": "+strings.Join(ms, " "))
	}
	var ss []string
	for _, i := range solo {
		ss = append(ss, targets[i].String())
	}
	return strings.Join(parts, "; ") + " | " + strings.Join(ss, " ")
}

func TestPlanLookups(t *testing.T) {
	g1 := NextHop{Addr: a("192.0.2.1"), LinkIndex: 2}
	g2 := NextHop{Addr: a("192.0.2.2"), LinkIndex: 2}
	base := []route{gwRoute("0.0.0.0/0", g1), gwRoute("10.0.0.0/8", g1), gwRoute("10.1.0.0/16", g2),
		linkRoute("192.0.2.0/24", 2, true), localRoute("192.0.2.9", 2), localRoute("127.0.0.1", 1)}
	with := func(rs ...route) []route { return append(slices.Clone(base), rs...) }
	multi := gwRoute("172.16.0.0/12", g1, g2)
	otherMetric := gwRoute("10.0.0.0/8", g2)
	otherMetric.Priority = 100
	tos := gwRoute("10.2.0.0/16", g2)
	tos.Tos = 0x10
	nhobj := gwRoute("10.3.0.0/16", g2)
	nhobj.NHID = 7
	dead := gwRoute("10.4.0.0/16", g2)
	dead.Paths[0].Flags = unix.RTNH_F_LINKDOWN
	blackhole := route{Table: unix.RT_TABLE_MAIN, Type: unix.RTN_BLACKHOLE, Dst: netip.MustParsePrefix("10.5.0.0/16")}
	anyIP := route{Table: unix.RT_TABLE_LOCAL, Type: unix.RTN_LOCAL, Dst: netip.MustParsePrefix("10.6.0.0/16"), Paths: []path{{LinkIndex: 1}}}
	other := route{Table: 100, Type: unix.RTN_UNICAST, Dst: netip.MustParsePrefix("10.1.2.0/24"), Paths: []path{{Gateway: g1.Addr, LinkIndex: 2, Resolves: true}}}

	for _, tc := range []struct {
		name    string
		rts     []route
		rules   []rule
		targets string
		want    string
	}{
		{"one gateway route", base, kernelDefaultRules, "10.1.0.1 10.1.200.3 10.1.0.2",
			"10.1.0.0/16: 10.1.0.1 10.1.200.3 10.1.0.2 | "},
		{"longest prefix match", base, kernelDefaultRules, "10.1.0.1 10.2.0.1 8.8.8.8 10.1.0.2 1.1.1.1 10.200.0.1",
			"10.1.0.0/16: 10.1.0.1 10.1.0.2; 10.0.0.0/8: 10.2.0.1 10.200.0.1; 0.0.0.0/0: 8.8.8.8 1.1.1.1 | "},
		{"more specific route carves out", with(gwRoute("10.1.5.0/24", g1)), kernelDefaultRules, "10.1.5.1 10.1.4.1 10.1.5.2 10.1.6.1",
			"10.1.5.0/24: 10.1.5.1 10.1.5.2; 10.1.0.0/16: 10.1.4.1 10.1.6.1 | "},
		{"host route", with(gwRoute("10.1.0.7/32", g1)), kernelDefaultRules, "10.1.0.7 10.1.0.8",
			"10.1.0.7/32: 10.1.0.7; 10.1.0.0/16: 10.1.0.8 | "},
		{"on-link route", base, kernelDefaultRules, "192.0.2.50 192.0.2.51",
			"192.0.2.0/24: 192.0.2.50 192.0.2.51 | "},
		{"local addresses", with(anyIP), kernelDefaultRules, "192.0.2.9 192.0.2.10 127.0.0.1 10.6.1.1",
			"192.0.2.0/24: 192.0.2.10 | 192.0.2.9 127.0.0.1 10.6.1.1"},
		{"non-default rule", with(other), append(slices.Clone(kernelDefaultRules), rule{Priority: 10, Table: 100, Plain: true}),
			"10.1.0.1 10.1.0.2", " | 10.1.0.1 10.1.0.2"},
		{"no rules", base, nil, "10.1.0.1 10.1.0.2", " | 10.1.0.1 10.1.0.2"},
		{"other tables do not matter under default rules", with(other), kernelDefaultRules, "10.1.2.1 10.1.2.2",
			"10.1.0.0/16: 10.1.2.1 10.1.2.2 | "},
		{"multipath", with(multi), kernelDefaultRules, "172.16.0.1 172.16.0.2", " | 172.16.0.1 172.16.0.2"},
		{"same prefix twice (metric)", with(otherMetric), kernelDefaultRules, "10.9.0.1 10.9.0.2 10.1.0.1",
			"10.1.0.0/16: 10.1.0.1 | 10.9.0.1 10.9.0.2"},
		{"TOS route", with(tos), kernelDefaultRules, "10.2.0.1 10.2.0.2", " | 10.2.0.1 10.2.0.2"},
		{"nexthop object", with(nhobj), kernelDefaultRules, "10.3.0.1 10.3.0.2", " | 10.3.0.1 10.3.0.2"},
		{"link down", with(dead), kernelDefaultRules, "10.4.0.1 10.4.0.2", " | 10.4.0.1 10.4.0.2"},
		{"blackhole", with(blackhole), kernelDefaultRules, "10.5.0.1 10.5.0.2", " | 10.5.0.1 10.5.0.2"},
		{"no route", base[1:], kernelDefaultRules, "8.8.8.8 8.8.4.4", " | 8.8.8.8 8.8.4.4"},
		{"addresses the kernel special-cases", base, kernelDefaultRules, "255.255.255.255 224.0.0.1 239.1.2.3 0.0.0.0 8.8.8.8",
			"0.0.0.0/0: 8.8.8.8 | 255.255.255.255 224.0.0.1 239.1.2.3 0.0.0.0"},
		{"IPv6", base, kernelDefaultRules, "2001:db8::1 2001:db8::2 10.1.0.1", "10.1.0.0/16: 10.1.0.1 | 2001:db8::1 2001:db8::2"},
	} {
		var targets []netip.Addr
		for _, s := range strings.Fields(tc.targets) {
			targets = append(targets, a(s))
		}
		groups, solo := planLookups(targets, tc.rts, tc.rules)
		if got := planString(targets, tc.rts, groups, solo); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

func TestSharedAnswer(t *testing.T) {
	g1 := NextHop{Addr: a("192.0.2.1"), LinkIndex: 2}
	viaRoute := route{Type: unix.RTN_UNICAST, Paths: []path{{Via: a("fe80::1"), LinkIndex: 2, Resolves: true}}}
	for _, tc := range []struct {
		name               string
		r                  route
		h                  NextHop
		ok                 bool
		onLink, consistent bool
	}{
		{"gateway", gwRoute("10.0.0.0/8", g1), g1, true, false, true},
		{"other gateway", gwRoute("10.0.0.0/8", g1), NextHop{Addr: a("192.0.2.7"), LinkIndex: 2}, true, false, false},
		{"other link", gwRoute("10.0.0.0/8", g1), NextHop{Addr: g1.Addr, LinkIndex: 3}, true, false, false},
		{"no next hop on a resolving link", gwRoute("10.0.0.0/8", g1), NextHop{}, false, false, false},
		{"on-link", linkRoute("10.0.0.0/8", 2, true), NextHop{Addr: a("10.0.0.5"), LinkIndex: 2}, true, true, true},
		{"on-link, other address", linkRoute("10.0.0.0/8", 2, true), NextHop{Addr: a("10.0.0.6"), LinkIndex: 2}, true, false, false},
		{"link without ARP", linkRoute("10.0.0.0/8", 2, false), NextHop{}, false, false, true},
		{"link without ARP answered with a next hop", linkRoute("10.0.0.0/8", 2, false), NextHop{Addr: a("10.0.0.5"), LinkIndex: 2}, true, false, false},
		{"via", viaRoute, NextHop{Addr: a("fe80::1"), LinkIndex: 2}, true, false, true},
	} {
		onLink, consistent := sharedAnswer(&tc.r, a("10.0.0.5"), tc.h, tc.ok)
		if onLink != tc.onLink || consistent != tc.consistent {
			t.Errorf("%s: onLink %v consistent %v, want %v %v", tc.name, onLink, consistent, tc.onLink, tc.consistent)
		}
	}
}

func TestFingerprint(t *testing.T) {
	seed := maphash.MakeSeed()
	rts := cluster().rts
	fp := fingerprint(seed, rts, kernelDefaultRules)
	if fingerprint(seed, slices.Clone(rts), slices.Clone(kernelDefaultRules)) != fp {
		t.Fatal("fingerprint of equal tables differs")
	}
	changes := map[string]func(rs []route, rules []rule) ([]route, []rule){
		"gateway":  func(rs []route, rl []rule) ([]route, []rule) { rs[1].Paths[0].Gateway = a("192.0.2.99"); return rs, rl },
		"link":     func(rs []route, rl []rule) ([]route, []rule) { rs[1].Paths[0].LinkIndex = 3; return rs, rl },
		"resolves": func(rs []route, rl []rule) ([]route, []rule) { rs[3].Paths[0].Resolves = false; return rs, rl },
		"path flag": func(rs []route, rl []rule) ([]route, []rule) {
			rs[3].Paths[0].Flags = unix.RTNH_F_LINKDOWN
			return rs, rl
		},
		"prefix": func(rs []route, rl []rule) ([]route, []rule) {
			rs[1].Dst = netip.MustParsePrefix("198.18.2.0/23")
			return rs, rl
		},
		"metric":  func(rs []route, rl []rule) ([]route, []rule) { rs[1].Priority = 5; return rs, rl },
		"table":   func(rs []route, rl []rule) ([]route, []rule) { rs[1].Table = 100; return rs, rl },
		"type":    func(rs []route, rl []rule) ([]route, []rule) { rs[1].Type = unix.RTN_BLACKHOLE; return rs, rl },
		"digest":  func(rs []route, rl []rule) ([]route, []rule) { rs[1].Digest = 1; return rs, rl },
		"added":   func(rs []route, rl []rule) ([]route, []rule) { return append(rs, localRoute("192.0.2.77", 2)), rl },
		"removed": func(rs []route, rl []rule) ([]route, []rule) { return rs[1:], rl },
		"multipath": func(rs []route, rl []rule) ([]route, []rule) {
			rs[1] = gwRoute("198.18.2.0/24", node2, node3)
			return rs, rl
		},
		"rule":     func(rs []route, rl []rule) ([]route, []rule) { return rs, append(rl, rule{Priority: 5, Table: 100}) },
		"no rules": func(rs []route, rl []rule) ([]route, []rule) { return rs, nil },
	}
	for name, change := range changes {
		rs := slices.Clone(rts)
		for i := range rs {
			rs[i].Paths = slices.Clone(rs[i].Paths)
		}
		rs, rl := change(rs, slices.Clone(kernelDefaultRules))
		if fingerprint(seed, rs, rl) == fp {
			t.Errorf("%s: fingerprint unchanged", name)
		}
	}
}

// routeMsg builds an RTM_NEWROUTE message body.
func routeMsg(hdr unix.RtMsg, attrs ...*nl.RtAttr) []byte {
	b := (&nl.RtMsg{RtMsg: hdr}).Serialize()
	for _, a := range attrs {
		b = append(b, a.Serialize()...)
	}
	return b
}

func u32(v uint32) []byte { return nl.Uint32Attr(v) }

func TestParseRoute(t *testing.T) {
	links := map[int]bool{2: true, 3: true, 4: false}
	gwMsg := routeMsg(unix.RtMsg{Family: unix.AF_INET, Dst_len: 16, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST},
		nl.NewRtAttr(unix.RTA_TABLE, u32(unix.RT_TABLE_MAIN)), nl.NewRtAttr(unix.RTA_DST, []byte{10, 1, 0, 0}),
		nl.NewRtAttr(unix.RTA_PRIORITY, u32(20)), nl.NewRtAttr(unix.RTA_GATEWAY, []byte{192, 0, 2, 1}),
		nl.NewRtAttr(unix.RTA_OIF, u32(2)))
	r, ok, err := parseRoute(gwMsg, links)
	if err != nil || !ok {
		t.Fatalf("parse: %v %v", ok, err)
	}
	want := gwRoute("10.1.0.0/16", NextHop{Addr: a("192.0.2.1"), LinkIndex: 2})
	want.Priority, want.Digest = 20, r.Digest
	if fmt.Sprint(r) != fmt.Sprint(want) || r.Digest == 0 {
		t.Errorf("parsed %+v\n  want %+v", r, want)
	}
	if got := r.nextHops(); !equalHops(got, []NextHop{{Addr: a("192.0.2.1"), LinkIndex: 2}}) {
		t.Errorf("nextHops %v", got)
	}

	// A default multipath route in table 1000 (RTA_TABLE beyond 8 bits),
	// one path on a link without ARP.
	mp := nl.NewRtAttr(unix.RTA_MULTIPATH, nil)
	for _, p := range []struct {
		gw   []byte
		link uint32
	}{{[]byte{192, 0, 2, 1}, 2}, {[]byte{192, 0, 2, 2}, 3}, {nil, 4}} {
		var attrs []byte
		if p.gw != nil {
			attrs = nl.NewRtAttr(unix.RTA_GATEWAY, p.gw).Serialize()
		}
		nh := make([]byte, unix.SizeofRtNexthop)
		nl.NativeEndian().PutUint16(nh, uint16(len(nh)+len(attrs)))
		nh[3] = 1 // weight 2
		nl.NativeEndian().PutUint32(nh[4:], p.link)
		mp.Data = append(mp.Data, append(nh, attrs...)...)
	}
	r, ok, err = parseRoute(routeMsg(unix.RtMsg{Family: unix.AF_INET, Table: unix.RT_TABLE_COMPAT, Type: unix.RTN_UNICAST},
		nl.NewRtAttr(unix.RTA_TABLE, u32(1000)), mp), links)
	if err != nil || !ok {
		t.Fatalf("parse multipath: %v %v", ok, err)
	}
	if r.Table != 1000 || r.Dst != netip.MustParsePrefix("0.0.0.0/0") || len(r.Paths) != 3 ||
		r.Paths[1] != (path{Gateway: a("192.0.2.2"), LinkIndex: 3, Hops: 1, Resolves: true}) ||
		r.Paths[2] != (path{LinkIndex: 4, Hops: 1}) {
		t.Errorf("parsed multipath %+v", r)
	}
	if got := r.nextHops(); len(got) != 2 {
		t.Errorf("nextHops %v", got)
	}

	// A nexthop object, a blackhole, a clone, another family.
	r, _, _ = parseRoute(routeMsg(unix.RtMsg{Family: unix.AF_INET, Dst_len: 8, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST},
		nl.NewRtAttr(unix.RTA_DST, []byte{10, 0, 0, 0}), nl.NewRtAttr(rtaNHID, u32(9))), links)
	if r.NHID != 9 || len(r.Paths) != 0 {
		t.Errorf("nexthop object route %+v", r)
	}
	r, _, _ = parseRoute(routeMsg(unix.RtMsg{Family: unix.AF_INET, Dst_len: 8, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_BLACKHOLE},
		nl.NewRtAttr(unix.RTA_DST, []byte{10, 0, 0, 0})), links)
	if r.Type != unix.RTN_BLACKHOLE || len(r.Paths) != 0 || r.Dst.String() != "10.0.0.0/8" {
		t.Errorf("blackhole %+v", r)
	}
	if _, ok, _ := parseRoute(routeMsg(unix.RtMsg{Family: unix.AF_INET, Flags: unix.RTM_F_CLONED}), links); ok {
		t.Error("cloned route parsed")
	}
	if _, ok, _ := parseRoute(routeMsg(unix.RtMsg{Family: unix.AF_INET6}), links); ok {
		t.Error("IPv6 route parsed")
	}
	if _, _, err := parseRoute(gwMsg[:8], links); err == nil {
		t.Error("short message accepted")
	}
	if _, _, err := parseRoute(routeMsg(unix.RtMsg{Family: unix.AF_INET, Dst_len: 33}), links); err == nil {
		t.Error("prefix length 33 accepted")
	}
}

func TestParseRule(t *testing.T) {
	hdr := unix.RtMsg{Family: unix.AF_INET, Table: unix.RT_TABLE_MAIN, Type: unix.FR_ACT_TO_TBL}
	main := routeMsg(hdr, nl.NewRtAttr(unix.FRA_TABLE, u32(unix.RT_TABLE_MAIN)),
		nl.NewRtAttr(unix.FRA_SUPPRESS_PREFIXLEN, u32(0xffffffff)), nl.NewRtAttr(unix.FRA_PROTOCOL, []byte{2}),
		nl.NewRtAttr(unix.FRA_PRIORITY, u32(32766)))
	r, ok, err := parseRule(main)
	if err != nil || !ok || r.Priority != 32766 || r.Table != unix.RT_TABLE_MAIN || !r.Plain {
		t.Fatalf("main rule %+v %v %v", r, ok, err)
	}
	for name, msg := range map[string][]byte{
		"fwmark":         routeMsg(hdr, nl.NewRtAttr(unix.FRA_FWMARK, u32(1)), nl.NewRtAttr(unix.FRA_PRIORITY, u32(32766))),
		"suppress":       routeMsg(hdr, nl.NewRtAttr(unix.FRA_SUPPRESS_PREFIXLEN, u32(0)), nl.NewRtAttr(unix.FRA_PRIORITY, u32(32766))),
		"from":           routeMsg(unix.RtMsg{Family: unix.AF_INET, Src_len: 8, Table: unix.RT_TABLE_MAIN, Type: unix.FR_ACT_TO_TBL}),
		"not":            routeMsg(unix.RtMsg{Family: unix.AF_INET, Table: unix.RT_TABLE_MAIN, Type: unix.FR_ACT_TO_TBL, Flags: unix.FIB_RULE_INVERT}),
		"unreachable":    routeMsg(unix.RtMsg{Family: unix.AF_INET, Type: unix.FR_ACT_UNREACHABLE}),
		"iif":            routeMsg(hdr, nl.NewRtAttr(unix.FRA_IIFNAME, []byte("eth0\x00"))),
		"unknown future": routeMsg(hdr, nl.NewRtAttr(99, u32(1))),
	} {
		r, ok, err := parseRule(msg)
		if err != nil || !ok || r.Plain {
			t.Errorf("%s: %+v %v %v", name, r, ok, err)
		}
	}
	if _, ok, _ := parseRule(routeMsg(unix.RtMsg{Family: unix.AF_INET6})); ok {
		t.Error("IPv6 rule parsed")
	}
}
