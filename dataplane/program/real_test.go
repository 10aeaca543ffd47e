package program

import (
	"testing"

	"github.com/straitlb/strait/dataplane/loader/loadertest"
)

// The same golden file checks the real maps: the fake and the kernel agree.
func TestPrivilegedRealMapsMatchGolden(t *testing.T) {
	dir := loadertest.PinDir(t)
	d := loadertest.Load(t, dir)
	p := newProg(t, d.Maps)
	mustApply(t, p, FixtureState())
	CheckGolden(t, "fixture.golden", dump(t, d.Maps))
	if res := mustApply(t, p, FixtureState()); res.Writes != 0 {
		t.Fatalf("second apply wrote %d entries", res.Writes)
	}

	// Restart: reopen the pinned maps in a new datapath and programmer.
	d2 := loadertest.Load(t, dir)
	p2 := newProg(t, d2.Maps)
	if res := mustApply(t, p2, FixtureState()); res.Writes != 0 {
		t.Fatalf("restart over pinned maps wrote %d entries; ids not restored", res.Writes)
	}
	CheckGolden(t, "fixture.golden", dump(t, d2.Maps))
}
