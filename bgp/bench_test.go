package bgp_test

import (
	"context"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/straitlb/strait/bgp"
	"github.com/straitlb/strait/model"
)

// countingSpeaker accepts everything and counts SetAdvertisements calls.
type countingSpeaker struct{ sets int }

func (s *countingSpeaker) SetPeers(context.Context, []bgp.Peer) error { return nil }
func (s *countingSpeaker) SetAdvertisements(context.Context, []bgp.Advertisement) error {
	s.sets++
	return nil
}
func (s *countingSpeaker) Status() bgp.Status { return bgp.Status{} }
func (s *countingSpeaker) Close() error       { return nil }

// processCPU is the CPU time the process used so far: benchmarks report it
// per operation besides wall time, which other processes on a shared
// machine inflate.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchState has n Cluster services, each with a ClusterIP and a
// LoadBalancer frontend and two backends, in canonical order.
func benchState(n int) model.State {
	st := model.State{Services: make([]model.Service, n)}
	for i := range st.Services {
		vip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		st.Services[i] = model.Service{
			Name: model.ServiceName{Namespace: "ns", Name: "svc" + string(rune('a'+i%26)) + netip.AddrFrom4([4]byte{0, byte(i >> 16), byte(i >> 8), byte(i)}).String(), Port: "http"},
			Frontends: []model.Frontend{
				{Addr: netip.AddrFrom4([4]byte{172, 16, byte(i >> 8), byte(i)}), Port: 80, Proto: model.TCP, Kind: model.ClusterIP},
				{Addr: vip, Port: 80, Proto: model.TCP, Kind: model.LoadBalancer},
			},
			Backends: []model.Backend{
				{Addr: netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)}), Port: 8080},
				{Addr: netip.AddrFrom4([4]byte{100, 65, byte(i >> 8), byte(i)}), Port: 8080, Local: true},
			},
		}
	}
	st.Canonicalize()
	return st
}

// withService returns a copy of st whose service i is replaced by f(service).
func withService(st model.State, i int, f func(*model.Service)) model.State {
	out := model.State{Services: slices.Clone(st.Services)}
	svc := out.Services[i]
	svc.Backends = slices.Clone(svc.Backends)
	svc.Frontends = slices.Clone(svc.Frontends)
	f(&svc)
	out.Services[i] = svc
	return out
}

func benchController(b *testing.B, states ...model.State) {
	ctx := context.Background()
	sp := &countingSpeaker{}
	c := bgp.NewController(sp, bgp.ControllerConfig{Advertisement: bgp.AdvertisementConfig{Communities: []uint32{65000<<16 | 1}}})
	in := bgp.Input{Node: bgp.NodeStatus{Name: "n1"}, Peers: []bgp.Peer{
		{Name: "tor1", Address: netip.MustParseAddr("192.0.2.1"), PeerASN: 65000, LocalASN: 64512},
	}}
	in.State = states[0]
	if err := c.Update(ctx, in); err != nil {
		b.Fatal(err)
	}
	d := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		in.State = states[(i+1)%len(states)]
		t0 := time.Now()
		if err := c.Update(ctx, in); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(t0))
	}
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(d[len(d)*99/100].Nanoseconds())/1e3, "p99-µs")
	b.ReportMetric(float64(sp.sets)/float64(b.N+1), "sets/op")
}

// BenchmarkControllerUpdate10k: Update with the whole state of 10,000
// services after every (simulated) dataplane sync.
func BenchmarkControllerUpdate10k(b *testing.B) {
	const n = 10000
	st := benchState(n)
	b.Run("unchanged", func(b *testing.B) { benchController(b, st) })
	// A backend changes: nothing to announce differently.
	backend := withService(st, n/2, func(s *model.Service) { s.Backends[0].Port = 9090 })
	b.Run("irrelevant-change", func(b *testing.B) { benchController(b, st, backend) })
	// A service loses its backends: its prefix is withdrawn, then back.
	empty := withService(st, n/2, func(s *model.Service) { s.Backends = nil })
	b.Run("withdraw-one", func(b *testing.B) { benchController(b, st, empty) })
}
