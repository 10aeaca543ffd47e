package program

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/straitlb/strait/dataplane/lbmap"
	"github.com/straitlb/strait/dataplane/loader/loadertest"
	"github.com/straitlb/strait/model"
)

// ScaleState is n services with e backends each, ClusterIP + NodePort.
func ScaleState(n, e int) model.State {
	s := model.State{Services: make([]model.Service, 0, n)}
	for i := range n {
		svc := model.Service{
			Name: model.ServiceName{Namespace: "scale", Name: fmt.Sprintf("svc-%05d", i), Port: "http"},
			Frontends: []model.Frontend{
				{Addr: netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), Port: 80, Proto: model.TCP, Kind: model.ClusterIP},
			},
		}
		for j := range e {
			k := i*e + j
			svc.Backends = append(svc.Backends, model.Backend{
				Addr: netip.AddrFrom4([4]byte{198, 18, byte(k >> 8), byte(k)}), Port: uint16(8000 + k>>16), Local: j%2 == 0})
		}
		s.Services = append(s.Services, svc)
	}
	s.Canonicalize()
	return s
}

func BenchmarkColdStartFake(b *testing.B) {
	st := ScaleState(10000, 10)
	for b.Loop() {
		p, err := New(zap.NewNop(), lbmap.NewFake(lbmap.DefaultCapacities), Config{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Apply(st); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPrivilegedColdStartScale programs 10,000 services x 10 backends into
// real maps and checks every entry landed. It logs the time taken; the
// benchmark harness (bench/) owns the timing comparison.
func TestPrivilegedColdStartScale(t *testing.T) {
	d := loadertest.Load(t, loadertest.PinDir(t))
	p, err := New(zap.NewNop(), d.Maps, Config{})
	if err != nil {
		t.Fatal(err)
	}
	n := 10000
	if testing.Short() {
		n = 1000
	}
	st := ScaleState(n, 10)
	start := time.Now()
	res, err := p.Apply(st)
	took := time.Since(start)
	if err != nil || len(res.Failed) > 0 {
		t.Fatalf("apply: %v (%d failed)", err, len(res.Failed))
	}
	snap, err := lbmap.Read(d.Maps)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Frontends) != n || len(snap.Backends) != 10*n || len(snap.Rings) != n {
		t.Fatalf("programmed %d frontends, %d backends, %d rings", len(snap.Frontends), len(snap.Backends), len(snap.Rings))
	}
	t.Logf("cold start of %d services x 10 backends into real maps: %s (%d writes; desired %s, write with ring builds %s)",
		n, took, res.Writes, res.Phases.Desired, res.Phases.Write)
}
