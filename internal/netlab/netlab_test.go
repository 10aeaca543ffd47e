package netlab

import (
	"regexp"
	"strings"
	"testing"
)

func TestNewPrefix(t *testing.T) {
	never := func(string) bool { return false }
	for _, base := range []string{"", "st", "abcd", "x9"} {
		p, err := newPrefix(base, never)
		if err != nil {
			t.Fatalf("newPrefix(%q): %v", base, err)
		}
		want := base
		if want == "" {
			want = DefaultBase
		}
		if !regexp.MustCompile("^" + want + "[0-9a-f]{4}$").MatchString(p) {
			t.Errorf("newPrefix(%q) = %q", base, p)
		}
	}
	for _, base := range []string{"abcde", "St", "s-t", "s/t"} {
		if p, err := newPrefix(base, never); err == nil {
			t.Errorf("newPrefix(%q) = %q, want an error", base, p)
		}
	}
	// Candidates in use are skipped; if all are, it fails.
	seen := map[string]bool{}
	p, err := newPrefix("st", func(p string) bool {
		if len(seen) < 3 {
			seen[p] = true
			return true
		}
		return false
	})
	if err != nil || seen[p] {
		t.Errorf("newPrefix skipping 3 in-use candidates = %q, %v", p, err)
	}
	if _, err := newPrefix("st", func(string) bool { return true }); err == nil {
		t.Error("newPrefix succeeded with every candidate in use")
	}
}

func TestInterfaceNamesFit(t *testing.T) {
	// The longest names BuildTopology makes, with the longest base.
	l := &Lab{prefix: "abcd" + "ffff"}
	for _, s := range []string{"cl", "rcl", "br", "n9", "r9", "p9-98", "v9-98"} {
		if _, err := l.IfName(s); err != nil {
			t.Error(err)
		}
	}
	for _, name := range []string{"", ".", "a/b", "a:b", "a b", strings.Repeat("x", 16)} {
		if validIfName(name) == nil {
			t.Errorf("validIfName(%q) accepted", name)
		}
	}
}

func TestParseSNMP(t *testing.T) {
	in := `Ip: Forwarding DefaultTTL
Ip: 1 64
Tcp: RtoAlgorithm MaxConn InCsumErrors
Tcp: 1 -1 3
Udp: InDatagrams InCsumErrors
Udp: 10 2
`
	m, err := parseSNMP(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"IpForwarding": 1, "IpDefaultTTL": 64, "TcpRtoAlgorithm": 1, "TcpMaxConn": -1,
		"TcpInCsumErrors": 3, "UdpInDatagrams": 10, "UdpInCsumErrors": 2}
	if len(m) != len(want) {
		t.Errorf("got %v, want %v", m, want)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %d, want %d", k, m[k], v)
		}
	}
	for _, bad := range []string{"Tcp: A B\n", "Tcp: A B\nUdp: 1 2\n", "Tcp: A B\nTcp: 1\n", "Tcp: A\nTcp: x\n"} {
		if _, err := parseSNMP(strings.NewReader(bad)); err == nil {
			t.Errorf("parseSNMP(%q) accepted", bad)
		}
	}
}

func TestParseReply(t *testing.T) {
	r, err := ParseReply("node1-pod0|198.51.100.10:40000\n")
	if err != nil || r.Name != "node1-pod0" || r.Peer.String() != "198.51.100.10:40000" {
		t.Errorf("ParseReply = %+v, %v", r, err)
	}
	for _, bad := range []string{"", "name", "|1.2.3.4:5", "n|1.2.3.4", "n|x:1"} {
		if _, err := ParseReply(bad); err == nil {
			t.Errorf("ParseReply(%q) accepted", bad)
		}
	}
}

func TestAddressPlan(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{NodeIP(1).String(), "192.0.2.11"},
		{NodeIP(2).String(), "192.0.2.12"},
		{PodCIDR(2).String(), "198.18.2.0/24"},
		{PodIP(1, 0).String(), "198.18.1.10"},
		{PodIP(2, 1).String(), "198.18.2.11"},
		{DefaultRoute().String(), "0.0.0.0/0"},
	} {
		if c.got != c.want {
			t.Errorf("got %s, want %s", c.got, c.want)
		}
	}
}
