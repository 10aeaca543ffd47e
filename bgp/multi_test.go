package bgp_test

import (
	"net/netip"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/straitlb/strait/bgp"
)

func inPrefix(p string) func(netip.Addr) bool {
	pp := netip.MustParsePrefix(p)
	return pp.Contains
}

// Several advertisements: each announces the addresses it selects with
// its own attributes; a node outside one's selector announces only the
// other's; on overlap the first wins.
func TestAnnouncementsOfSeveralAdvertisements(t *testing.T) {
	st := state(
		clusterSvc("a", "203.0.113.10", backend("198.18.2.10", false)),
		clusterSvc("b", "198.51.100.10", backend("198.18.2.11", false)),
	)
	public := bgp.AdvertisementConfig{Selects: inPrefix("203.0.113.0/24"), Communities: []uint32{64512<<16 | 1}}
	internal := bgp.AdvertisementConfig{Selects: inPrefix("198.51.100.0/24"), Communities: []uint32{64512<<16 | 2}}
	got := bgp.AnnouncementsOf(st, node, []bgp.AdvertisementConfig{public, internal})
	if want := []netip.Prefix{pfx("198.51.100.10/32"), pfx("203.0.113.10/32")}; !slices.Equal(prefixes(got), want) {
		t.Fatalf("got %v, want %v", prefixes(got), want)
	}
	for _, a := range got {
		want := uint32(64512<<16 | 1)
		if a.Prefix.Addr().Is4() && pfx("198.51.100.0/24").Contains(a.Prefix.Addr()) {
			want = 64512<<16 | 2
		}
		if !slices.Equal(a.Communities, []uint32{want}) {
			t.Errorf("%s: communities %v, want [%d]", a.Prefix, a.Communities, want)
		}
	}

	// The internal advertisement is for other nodes only.
	internal.NodeSelector = labels.SelectorFromSet(labels.Set{"rack": "r9"})
	got = bgp.AnnouncementsOf(st, node, []bgp.AdvertisementConfig{public, internal})
	if want := []netip.Prefix{pfx("203.0.113.10/32")}; !slices.Equal(prefixes(got), want) {
		t.Errorf("node outside one advertisement's selector: got %v, want %v", prefixes(got), want)
	}

	// Overlap: the first advertisement's attributes win.
	all := bgp.AdvertisementConfig{Communities: []uint32{64512<<16 | 9}}
	got = bgp.AnnouncementsOf(st, node, []bgp.AdvertisementConfig{public, all})
	for _, a := range got {
		want := uint32(64512<<16 | 9)
		if pfx("203.0.113.0/24").Contains(a.Prefix.Addr()) {
			want = 64512<<16 | 1
		}
		if !slices.Equal(a.Communities, []uint32{want}) {
			t.Errorf("overlap %s: communities %v, want [%d]", a.Prefix, a.Communities, want)
		}
	}
}

// Advertisements given in the Input replace the configured one at the next
// Update: configuration changes need no restart.
func TestControllerTakesAdvertisementsFromInput(t *testing.T) {
	h := newHarness(t, bgp.ControllerConfig{})
	h.update(func(in *bgp.Input) {
		in.State = state(
			clusterSvc("a", "203.0.113.10", backend("198.18.2.10", false)),
			clusterSvc("b", "198.51.100.10", backend("198.18.2.11", false)),
		)
	})
	h.expect("configured advertisement: everything", "198.51.100.10/32", "203.0.113.10/32")
	h.update(func(in *bgp.Input) {
		in.Advertisements = []bgp.AdvertisementConfig{{Selects: inPrefix("203.0.113.0/24")}}
	})
	h.expect("advertisement limited to one pool", "203.0.113.10/32")
	h.update(func(in *bgp.Input) {
		in.Advertisements = []bgp.AdvertisementConfig{{Selects: inPrefix("203.0.113.0/24")}, {Selects: inPrefix("198.51.100.0/24")}}
	})
	h.expect("a second advertisement added", "198.51.100.10/32", "203.0.113.10/32")
}

func TestSessionStateText(t *testing.T) {
	for _, st := range bgp.SessionStates() {
		b, err := st.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back bgp.SessionState
		if err := back.UnmarshalText(b); err != nil || back != st {
			t.Errorf("%v: round trip gave %v, %v", st, back, err)
		}
	}
	var s bgp.SessionState
	if err := s.UnmarshalText([]byte("flapping")); err == nil {
		t.Error("unknown state accepted")
	}
}
