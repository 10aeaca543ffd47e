package program

import (
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/straitlb/strait/dataplane/lbmap"
	"github.com/straitlb/strait/model"
)

// mutate changes a few services of s at random (backends, frontends,
// additions, removals, invalid services, frontend conflicts) and returns
// the new canonical state and the names that changed.
func mutate(r *rand.Rand, s model.State) (model.State, []model.ServiceName) {
	byName := make(map[model.ServiceName]model.Service)
	for _, svc := range s.Services {
		byName[svc.Name] = svc
	}
	names := slices.SortedFunc(maps.Keys(byName), model.ServiceName.Compare)
	changed := make(map[model.ServiceName]bool)
	backend := func() model.Backend {
		return model.Backend{Addr: netip.AddrFrom4([4]byte{10, 9, 0, byte(r.IntN(40))}), Port: 8080, Local: r.IntN(7) == 0}
	}
	for range 1 + r.IntN(4) {
		switch op := r.IntN(10); {
		case op < 2 || len(names) == 0: // add
			name := model.ServiceName{Namespace: "ns", Name: string(rune('a' + r.IntN(26))), Port: "p"}
			svc := model.Service{Name: name, Frontends: []model.Frontend{{
				Addr: netip.AddrFrom4([4]byte{10, 96, 0, byte(r.IntN(30))}), Port: 80, Proto: model.Protocol([]uint8{6, 17}[r.IntN(2)]), Kind: model.ClusterIP}}}
			for range r.IntN(5) {
				svc.Backends = append(svc.Backends, backend())
			}
			svc.Backends = slices.CompactFunc(sortBackends(svc.Backends), func(a, b model.Backend) bool { return a.Key() == b.Key() })
			byName[name] = svc
			changed[name] = true
		case op < 3: // remove
			name := names[r.IntN(len(names))]
			delete(byName, name)
			changed[name] = true
		case op < 8: // backends
			name := names[r.IntN(len(names))]
			svc, ok := byName[name]
			if !ok {
				continue
			}
			svc.Backends = slices.Clone(svc.Backends)
			if len(svc.Backends) > 0 && r.IntN(2) == 0 {
				svc.Backends = slices.Delete(svc.Backends, 0, 1)
			} else {
				svc.Backends = append(svc.Backends, backend())
			}
			if r.IntN(15) == 0 {
				svc.Backends = append(svc.Backends, model.Backend{Addr: netip.MustParseAddr("10.9.1.1")}) // port 0: invalid
			}
			svc.Backends = slices.CompactFunc(sortBackends(svc.Backends), func(a, b model.Backend) bool { return a.Key() == b.Key() })
			byName[name] = svc
			changed[name] = true
		default: // frontends and attributes
			name := names[r.IntN(len(names))]
			svc, ok := byName[name]
			if !ok {
				continue
			}
			svc.Frontends = []model.Frontend{{Addr: netip.AddrFrom4([4]byte{10, 96, 0, byte(r.IntN(30))}), Port: 80, Proto: model.TCP, Kind: model.ClusterIP}}
			if r.IntN(2) == 0 {
				svc.Frontends = append(svc.Frontends, model.Frontend{Addr: netip.MustParseAddr("192.0.2.10"), Port: 30000 + uint16(r.IntN(5)), Proto: model.TCP, Kind: model.NodePort})
				svc.SourceRanges = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}
			} else {
				svc.SourceRanges = nil
			}
			svc.IfEmpty = model.EmptyAction(r.IntN(2))
			byName[name] = svc
			changed[name] = true
		}
	}
	var out model.State
	for _, svc := range byName {
		out.Services = append(out.Services, svc)
	}
	out.Canonicalize()
	return out, slices.SortedFunc(maps.Keys(changed), model.ServiceName.Compare)
}

func sortBackends(bs []model.Backend) []model.Backend {
	slices.SortFunc(bs, func(a, b model.Backend) int { return a.Key().Compare(b.Key()) })
	return bs
}

// TestApplyChangesMatchesApply drives one programmer with the changed
// names only and another with whole states: after every step both maps
// and both sets of failed services are identical, and a programmer
// started on the incremental one's maps writes nothing.
func TestApplyChangesMatchesApply(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 7))
		mInc, mFull := lbmap.NewFake(lbmap.DefaultCapacities), lbmap.NewFake(lbmap.DefaultCapacities)
		inc, full := newProg(t, mInc), newProg(t, mFull)
		var st model.State
		for step := range 150 {
			var changed []model.ServiceName
			st, changed = mutate(r, st)
			ri, erri := inc.ApplyChanges(st, changed)
			rf, errf := full.Apply(st)
			if erri != nil || errf != nil {
				t.Fatalf("seed %d step %d: errors %v / %v", seed, step, erri, errf)
			}
			if !slices.Equal(slices.SortedFunc(maps.Keys(ri.Failed), model.ServiceName.Compare),
				slices.SortedFunc(maps.Keys(rf.Failed), model.ServiceName.Compare)) {
				t.Fatalf("seed %d step %d: failed %v vs %v", seed, step, ri.Failed, rf.Failed)
			}
			if di, df := dump(t, mInc), dump(t, mFull); di != df {
				t.Fatalf("seed %d step %d: maps differ\n--- incremental\n%s\n--- full\n%s", seed, step, di, df)
			}
			if ri.Services != rf.Services || ri.Backends != rf.Backends || ri.Frontends != rf.Frontends {
				t.Fatalf("seed %d step %d: counts %+v vs %+v", seed, step, ri, rf)
			}
		}
		// Nothing left over: once the failing services are gone, a
		// fresh programmer over the same maps agrees with them. (With
		// conflicts, the first holder keeps a frontend, so a restart
		// may legitimately choose differently.)
		var gone []model.ServiceName
		st.Services = slices.DeleteFunc(st.Services, func(s model.Service) bool {
			_, failed := inc.retry[s.Name]
			if failed {
				gone = append(gone, s.Name)
			}
			return failed
		})
		if res, err := inc.ApplyChanges(st, gone); err != nil || len(res.Failed) > 0 {
			t.Fatalf("seed %d: %v %v", seed, err, res.Failed)
		}
		before := dump(t, mInc)
		again := newProg(t, mInc)
		res, err := again.Apply(st)
		if res.Writes != 0 {
			t.Logf("before\n%s\nafter\n%s", before, dump(t, mInc))
		}
		if err != nil {
			t.Fatal(err)
		}
		if res.Writes != 0 {
			t.Errorf("seed %d: restart wrote %d entries", seed, res.Writes)
		}
	}
}

// TestApplyChangesCostsOnlyTheChange checks that an incremental apply of
// one service among many writes only that service's entries.
func TestApplyChangesCostsOnlyTheChange(t *testing.T) {
	m := lbmap.NewFake(lbmap.DefaultCapacities)
	p := newProg(t, m)
	st := ScaleState(2000, 10)
	mustApply(t, p, st)
	svc := &st.Services[1234]
	svc.Backends = slices.Clone(svc.Backends[1:])
	res, err := p.ApplyChanges(st, []model.ServiceName{svc.Name})
	if err != nil || len(res.Failed) > 0 {
		t.Fatal(err, res.Failed)
	}
	// One membership and one backend removed, the service value
	// (backend count) and its ring rewritten.
	if res.Writes != 4 {
		t.Errorf("writes = %d, want 4", res.Writes)
	}
	if res.Services != 2000 || res.Backends != 19999 {
		t.Errorf("counts %d services %d backends", res.Services, res.Backends)
	}
	check := newProg(t, m)
	if res, err := check.Apply(st); err != nil || res.Writes != 0 {
		t.Errorf("maps differ from the state: %d writes, %v", res.Writes, err)
	}
}
