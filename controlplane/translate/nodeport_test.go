package translate

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestNodePortAddresses(t *testing.T) {
	nodeIPs := addrs("192.168.0.10", "10.0.0.5", "127.0.0.1", "fd00::10", "fd00::11", "::1", "::ffff:172.16.0.1", "10.0.0.5")
	for _, tc := range []struct {
		name    string
		spec    []string
		primary []netip.Addr
		want    []netip.Addr
		err     string
	}{
		{name: "empty list means all, loopback excluded", want: addrs("10.0.0.5", "172.16.0.1", "192.168.0.10", "fd00::10", "fd00::11")},
		{name: "all", spec: []string{"all"}, want: addrs("10.0.0.5", "172.16.0.1", "192.168.0.10", "fd00::10", "fd00::11")},
		{
			name: "primary with both families", spec: []string{"primary"}, primary: addrs("192.168.0.10", "fd00::11"),
			want: addrs("192.168.0.10", "fd00::11"),
		},
		{
			name: "primary IPv4 only leaves IPv6 unconstrained", spec: []string{"primary"}, primary: addrs("192.168.0.10"),
			want: addrs("192.168.0.10", "fd00::10", "fd00::11"),
		},
		{
			name: "a loopback primary is skipped", spec: []string{"primary"}, primary: addrs("127.0.0.1", "fd00::10"),
			want: addrs("10.0.0.5", "172.16.0.1", "192.168.0.10", "fd00::10"),
		},
		{name: "CIDRs per family", spec: []string{"10.0.0.0/8", "172.16.0.0/12"}, want: addrs("10.0.0.5", "172.16.0.1", "fd00::10", "fd00::11")},
		{name: "IPv6 CIDR", spec: []string{"fd00::10/128"}, want: addrs("10.0.0.5", "172.16.0.1", "192.168.0.10", "fd00::10")},
		{name: "localhost serves nothing (loopback excluded)", spec: []string{"localhost"}},
		{name: "keywords and CIDRs mix", spec: []string{"primary", "10.0.0.0/8"}, primary: addrs("192.168.0.10"), want: addrs("10.0.0.5", "192.168.0.10", "fd00::10", "fd00::11")},
		{name: "sloppy CIDR", spec: []string{"010.0.0.0/8"}, want: addrs("10.0.0.5", "fd00::10", "fd00::11")},
		{name: "invalid entry", spec: []string{"10.0.0.0/8", "bogus"}, err: `parse nodePortAddresses entry "bogus"`},
		{name: "bare address is not a CIDR", spec: []string{"10.0.0.5"}, err: `parse nodePortAddresses entry "10.0.0.5": missing prefix length`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NodePortAddresses(tc.spec, nodeIPs, tc.primary...)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseIP(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1":         "10.0.0.1",
		"010.000.000.001":  "10.0.0.1",
		"::ffff:10.0.0.1":  "10.0.0.1",
		"fd00::1":          "fd00::1",
		"10.0.0.256":       "",
		"10.0.0":           "",
		"fe80::1%eth0":     "",
		" 10.0.0.1":        "",
		"":                 "",
		"1.2.3.4.5":        "",
		"0000000001.0.0.1": "1.0.0.1",
	} {
		got, err := parseIP(in)
		if want == "" {
			if err == nil {
				t.Errorf("parseIP(%q) = %v, want error", in, got)
			}
			continue
		}
		if err != nil || got.String() != want {
			t.Errorf("parseIP(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
}

func TestParseCIDR(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.5/8":     "10.0.0.0/8",
		"010.0.0.0/8":    "10.0.0.0/8",
		"0.0.0.0/0":      "0.0.0.0/0",
		"2001:db8::1/32": "2001:db8::/32",
		"10.0.0.0/33":    "",
		"10.0.0.0/-1":    "",
		"10.0.0.0/+8":    "",
		"10.0.0.0":       "",
		"fe80::/10%eth0": "",
		"fe80::%eth0/10": "",
		"2001:db8::/129": "",
		"nonsense/8":     "",
	} {
		got, err := parseCIDR(in)
		if want == "" {
			if err == nil {
				t.Errorf("parseCIDR(%q) = %v, want error", in, got)
			}
			continue
		}
		if err != nil || got.String() != want {
			t.Errorf("parseCIDR(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
}
