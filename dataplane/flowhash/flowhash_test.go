package flowhash

import (
	"net/netip"
	"testing"
)

// Agreement with the C implementation is checked by the differential test
// in dataplane/lbmap, which runs the real program.
func TestJHash3UsesEveryWord(t *testing.T) {
	if JHash3(1, 2, 3, Seed) == JHash3(0, 2, 3, Seed) || JHash3(1, 2, 3, Seed) == JHash3(1, 0, 3, Seed) {
		t.Fatal("hash ignores a word")
	}
	if JHash3(1, 2, 3, Seed) == JHash3(1, 2, 4, Seed) {
		t.Fatal("hash ignores its third word")
	}
}

func TestRawRoundTrip(t *testing.T) {
	a := netip.MustParseAddr("203.0.113.7")
	if got := AddrFromRaw32(Raw32(a)); got != a {
		t.Fatalf("addr round trip: %s", got)
	}
	for _, p := range []uint16{1, 80, 8080, 65535} {
		if got := PortFromRaw16(Raw16(p)); got != p {
			t.Fatalf("port round trip %d: %d", p, got)
		}
	}
}

func TestFlowIgnoresNothingItShouldUse(t *testing.T) {
	c := netip.MustParseAddr("198.51.100.10")
	base := Flow(c, 40000, 80, 6)
	for name, h := range map[string]uint32{
		"saddr": Flow(netip.MustParseAddr("198.51.100.11"), 40000, 80, 6),
		"sport": Flow(c, 40001, 80, 6),
		"dport": Flow(c, 40000, 81, 6),
		"proto": Flow(c, 40000, 80, 17),
	} {
		if h == base {
			t.Errorf("flow hash does not depend on %s", name)
		}
	}
}
