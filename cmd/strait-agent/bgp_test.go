package main

import (
	"net/netip"
	"testing"
)

// The example configuration parses, and its advertisement announces the
// addresses of its pool and nothing else.
func TestStandaloneBGPConfigSelectsPoolAddresses(t *testing.T) {
	bc, err := loadBGPConfig("../../examples/standalone")
	if err != nil {
		t.Fatal(err)
	}
	if len(bc.Peers) != 1 || bc.Peers[0].Address != netip.MustParseAddr("192.0.2.1") {
		t.Fatalf("peers %v", bc.Peers)
	}
	advs := advertisementsOf(bc)
	if len(advs) != 1 || advs[0].Selects == nil {
		t.Fatalf("advertisements %+v", advs)
	}
	for addr, want := range map[string]bool{"203.0.113.10": true, "203.0.113.255": true, "198.51.100.7": false} {
		if got := advs[0].Selects(netip.MustParseAddr(addr)); got != want {
			t.Errorf("%s selected: %v, want %v", addr, got, want)
		}
	}
}

// Without any BGPAdvertisement nothing is announced, as MetalLB.
func TestNoAdvertisementAnnouncesNothing(t *testing.T) {
	bc, err := loadBGPConfig("../../examples/standalone")
	if err != nil {
		t.Fatal(err)
	}
	bc.Advertisements = nil
	advs := advertisementsOf(bc)
	if len(advs) != 1 || advs[0].Selects(netip.MustParseAddr("203.0.113.10")) {
		t.Fatalf("an address is announced without an advertisement: %+v", advs)
	}
}
