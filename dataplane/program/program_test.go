package program

import (
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/straitlb/strait/dataplane/lbmap"
	"github.com/straitlb/strait/model"
)

var update = flag.Bool("update", false, "rewrite golden files")

// Test address plan (RFC 5737 / RFC 2544): node 192.0.2.11, clients in
// 198.51.100.0/24, LoadBalancer IPs in 203.0.113.0/24, pods in
// 198.18.0.0/16, ClusterIPs in 198.19.0.0/16.
var (
	nodeIP = netip.MustParseAddr("192.0.2.11")
	lbIP   = netip.MustParseAddr("203.0.113.10")
)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// FixtureState is the state the golden file describes; the privileged
// test programs it into real maps and expects the same dump.
func FixtureState() model.State {
	s := model.State{Services: []model.Service{
		{
			Name: model.ServiceName{Namespace: "default", Name: "web", Port: "http"},
			Frontends: []model.Frontend{
				{Addr: ip("198.19.0.10"), Port: 80, Proto: model.TCP, Kind: model.ClusterIP},
				{Addr: nodeIP, Port: 30080, Proto: model.TCP, Kind: model.NodePort},
				{Addr: lbIP, Port: 80, Proto: model.TCP, Kind: model.LoadBalancer},
			},
			Backends: []model.Backend{
				{Addr: ip("198.18.1.10"), Port: 8080, Local: true},
				{Addr: ip("198.18.2.10"), Port: 8080},
				{Addr: ip("198.18.2.11"), Port: 8080},
			},
			SourceRanges: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
		},
		{
			Name: model.ServiceName{Namespace: "default", Name: "dns", Port: "dns"},
			Frontends: []model.Frontend{
				{Addr: ip("198.19.0.53"), Port: 53, Proto: model.UDP, Kind: model.ClusterIP},
			},
			Backends:        []model.Backend{{Addr: ip("198.18.1.53"), Port: 5353, Local: true}},
			AffinityTimeout: 3 * time.Hour,
		},
		{
			Name: model.ServiceName{Namespace: "default", Name: "empty", Port: "http"},
			Frontends: []model.Frontend{
				{Addr: ip("203.0.113.20"), Port: 80, Proto: model.TCP, Kind: model.LoadBalancer},
			},
		},
		{
			Name: model.ServiceName{Namespace: "default", Name: "local-only", Port: "http", Scope: "external"},
			Frontends: []model.Frontend{
				{Addr: ip("203.0.113.30"), Port: 80, Proto: model.TCP, Kind: model.LoadBalancer},
			},
			IfEmpty: model.Drop,
		},
	}}
	s.Canonicalize()
	return s
}

func newProg(t *testing.T, m lbmap.Maps) *Programmer {
	t.Helper()
	p, err := New(zaptest.NewLogger(t), m, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetIfaces([]Iface{{Index: 2, SNATAddr: model.BackendKey{Addr: nodeIP}}}); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustApply(t *testing.T, p *Programmer, s model.State) Result {
	t.Helper()
	res, err := p.Apply(s)
	if err != nil {
		t.Fatalf("apply: %v (failed: %v)", err, res.Failed)
	}
	if len(res.Failed) > 0 {
		t.Fatalf("failed services: %v", res.Failed)
	}
	return res
}

// CheckGolden compares got with testdata/name, rewriting it with -update.
func CheckGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create): %v", err)
	}
	if string(want) != got {
		t.Errorf("dump differs from %s (run with -update if intended)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func dump(t *testing.T, m lbmap.Maps) string {
	t.Helper()
	s, err := lbmap.Dump(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestApplyGolden(t *testing.T) {
	m := lbmap.NewFake(lbmap.DefaultCapacities)
	p := newProg(t, m)
	mustApply(t, p, FixtureState())
	CheckGolden(t, "fixture.golden", dump(t, m))
}

func TestApplyIsIdempotent(t *testing.T) {
	m := lbmap.NewFake(lbmap.DefaultCapacities)
	p := newProg(t, m)
	first := mustApply(t, p, FixtureState())
	if first.Writes == 0 {
		t.Fatal("first apply wrote nothing")
	}
	again := mustApply(t, p, FixtureState())
	if again.Writes != 0 {
		t.Fatalf("second apply of the same state wrote %d entries", again.Writes)
	}
}

func TestRestartRestoresIDsWithoutWrites(t *testing.T) {
	m := lbmap.NewFake(lbmap.DefaultCapacities)
	mustApply(t, newProg(t, m), FixtureState())
	before := dump(t, m)

	p2 := newProg(t, m) // a restarted agent over the same (pinned) maps
	res := mustApply(t, p2, FixtureState())
	if res.Writes != 0 {
		t.Fatalf("restart rewrote %d entries; ids were not restored", res.Writes)
	}
	if after := dump(t, m); after != before {
		t.Fatalf("restart changed the maps:\n%s\nvs\n%s", after, before)
	}
}

func TestRestartWithChangedStateKeepsOtherIDs(t *testing.T) {
	m := lbmap.NewFake(lbmap.DefaultCapacities)
	mustApply(t, newProg(t, m), FixtureState())
	snap, _ := lbmap.Read(m)
	webKey := lbmap.MakeFrontendKey(model.FrontendKey{Addr: lbIP, Port: 80, Proto: model.TCP})
	webID := snap.Frontends[webKey].SvcId

	// After the restart a new service appears first in order; it must not
	// take an id that old frontends still point to.
	s := FixtureState()
	s.Services = append(s.Services, model.Service{
		Name:      model.ServiceName{Namespace: "aaa", Name: "new", Port: "p"},
		Frontends: []model.Frontend{{Addr: ip("198.19.0.99"), Port: 99, Proto: model.TCP, Kind: model.ClusterIP}},
		Backends:  []model.Backend{{Addr: ip("198.18.1.99"), Port: 99, Local: true}},
	})
	s.Canonicalize()
	mustApply(t, newProg(t, m), s)
	snap2, _ := lbmap.Read(m)
	if got := snap2.Frontends[webKey].SvcId; got != webID {
		t.Fatalf("web's service id changed across restart: %d -> %d", webID, got)
	}
}

func TestBackendRemovalPrunesAndKeepsIDs(t *testing.T) {
	m := lbmap.NewFake(lbmap.DefaultCapacities)
	p := newProg(t, m)
	mustApply(t, p, FixtureState())
	before, _ := lbmap.Read(m)

	s := FixtureState()
	s.Services[3].Backends = s.Services[3].Backends[:2] // web loses 198.18.2.11
	mustApply(t, p, s)
	after, _ := lbmap.Read(m)
	gone := model.BackendKey{Addr: ip("198.18.2.11"), Port: 8080}
	for id, v := range after.Backends {
		if lbmap.BackendKeyOf(v) == gone {
			t.Fatalf("removed backend still at id %d", id)
		}
		if bv, ok := before.Backends[id]; !ok || bv != v {
			t.Fatalf("backend id %d changed: %v -> %v", id, before.Backends[id], v)
		}
	}
}

func TestDeleteEverything(t *testing.T) {
	m := lbmap.NewFake(lbmap.DefaultCapacities)
	p := newProg(t, m)
	mustApply(t, p, FixtureState())
	mustApply(t, p, model.State{})
	got := dump(t, m)
	for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
		if !strings.HasPrefix(line, "config") && !strings.HasPrefix(line, "iface") {
			t.Errorf("left behind: %s", line)
		}
	}
}

func TestFullMapFailsOnlyTheOverflowingService(t *testing.T) {
	caps := lbmap.DefaultCapacities
	caps.Frontends = 4 // fixture has 6 frontends
	m := lbmap.NewFake(caps)
	p := newProg(t, m)
	res, err := p.Apply(FixtureState())
	if err == nil {
		t.Fatal("apply into a too-small map reported no error")
	}
	if len(res.Failed) == 0 {
		t.Fatal("no service reported as failed")
	}
	for name, ferr := range res.Failed {
		if !errors.Is(ferr, lbmap.ErrMapFull) {
			t.Errorf("%s: error %v does not wrap ErrMapFull", name, ferr)
		}
	}
	snap, _ := lbmap.Read(m)
	if len(snap.Frontends) != 4 {
		t.Fatalf("%d frontends programmed, want the map full (4)", len(snap.Frontends))
	}
}

func TestInjectedRingFailureIsolatedAndRetried(t *testing.T) {
	base := lbmap.NewFake(lbmap.DefaultCapacities)
	failing := true
	m := lbmap.NewFaulty(base, func(op lbmap.Op, name string) error {
		if failing && op == lbmap.OpSet {
			return errors.New("injected: no memory for ring")
		}
		return nil
	})
	p := newProg(t, m)
	res, err := p.Apply(FixtureState())
	if err == nil {
		t.Fatal("no error reported")
	}
	// Services with backends need a ring; the two without must be fine.
	if len(res.Failed) != 2 {
		t.Fatalf("failed = %v, want the 2 services with backends", res.Failed)
	}
	snap, _ := lbmap.Read(base)
	fe := lbmap.MakeFrontendKey(model.FrontendKey{Addr: ip("203.0.113.20"), Port: 80, Proto: model.TCP})
	if _, ok := snap.Frontends[fe]; !ok {
		t.Fatal("a healthy service was not programmed")
	}
	for k, v := range snap.Frontends {
		if _, ok := snap.Rings[v.SvcId]; !ok && snap.Services[v.SvcId].BackendCount > 0 {
			t.Fatalf("frontend %v programmed without its ring", lbmap.FrontendModelKey(k))
		}
	}
	failing = false
	mustApply(t, p, FixtureState())
	CheckGolden(t, "fixture.golden", dump(t, base))
}

func TestInvalidServiceKeepsLastGoodState(t *testing.T) {
	m := lbmap.NewFake(lbmap.DefaultCapacities)
	p := newProg(t, m)
	mustApply(t, p, FixtureState())
	before := dump(t, m)
	s := FixtureState()
	s.Services[0].Backends = append(s.Services[0].Backends, model.Backend{Addr: ip("2001:db8::1"), Port: 53})
	res, _ := p.Apply(s)
	if len(res.Failed) != 1 || !strings.Contains(res.Failed[s.Services[0].Name].Error(), "not IPv4") {
		t.Fatalf("failed = %v", res.Failed)
	}
	if after := dump(t, m); after != before {
		t.Fatalf("invalid update changed the maps:\n%s", after)
	}
}

func TestConflictingFrontend(t *testing.T) {
	m := lbmap.NewFake(lbmap.DefaultCapacities)
	p := newProg(t, m)
	s := FixtureState()
	dup := s.Services[3]
	dup.Name.Name = "web-copy"
	s.Services = append(s.Services, dup)
	res, _ := p.Apply(s)
	if len(res.Failed) != 1 || !strings.Contains(res.Failed[dup.Name].Error(), "already belongs to") {
		t.Fatalf("failed = %v", res.Failed)
	}
}
