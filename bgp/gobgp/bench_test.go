package gobgp

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/straitlb/strait/bgp"
	"github.com/straitlb/strait/model"
)

// benchAdvs returns n sorted host routes in 10.0.0.0/8 with one community.
func benchAdvs(n int) []bgp.Advertisement {
	out := make([]bgp.Advertisement, n)
	for i := range out {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		out[i] = bgp.Advertisement{Prefix: netip.PrefixFrom(a, 32), Communities: []uint32{65000<<16 | 1}}
	}
	return out
}

// processCPU is the CPU time the process used so far (GoBGP's goroutines
// included): benchmarks report it per operation besides wall time, which
// other processes on a shared machine inflate.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportLatency adds p50 and p99 of the per-call durations.
func reportLatency(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(d[len(d)*99/100].Nanoseconds())/1e3, "p99-µs")
}

// benchSpeaker is a speaker with peers that never come up (nothing listens
// at their addresses): the policy is built for them all the same.
func benchSpeaker(b *testing.B, peers bool) *Speaker {
	b.Helper()
	node := randomLoopback()
	s, err := New(context.Background(), Config{NodeIP: node})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if peers {
		ps := []bgp.Peer{
			{Name: "a", Address: netip.MustParseAddr("192.0.2.1"), PeerASN: 65001, LocalASN: 64512, ConnectRetry: time.Hour},
			{Name: "b", Address: netip.MustParseAddr("192.0.2.2"), PeerASN: 65002, LocalASN: 64512, ConnectRetry: time.Hour},
		}
		if err := s.SetPeers(context.Background(), ps); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// runAlternating applies sets[0], then cycles through sets[1:] and back,
// timing each call.
func runAlternating(b *testing.B, s *Speaker, sets ...[]bgp.Advertisement) {
	ctx := context.Background()
	if err := s.SetAdvertisements(ctx, sets[0]); err != nil {
		b.Fatal(err)
	}
	d := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		set := sets[(i+1)%len(sets)]
		t0 := time.Now()
		if err := s.SetAdvertisements(ctx, set); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(t0))
	}
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
	reportLatency(b, d)
}

// BenchmarkSetAdvertisements10k: 10,000 prefixes advertised, then one
// change per call.
func BenchmarkSetAdvertisements10k(b *testing.B) {
	const n = 10000
	full := benchAdvs(n)
	without := slices.Delete(slices.Clone(full), n/2, n/2+1)
	changed := slices.Clone(full)
	changed[n/3].Communities = []uint32{65000<<16 | 2}
	b.Run("unchanged", func(b *testing.B) { runAlternating(b, benchSpeaker(b, false), full) })
	b.Run("add-remove-one", func(b *testing.B) { runAlternating(b, benchSpeaker(b, false), full, without) })
	b.Run("change-one", func(b *testing.B) { runAlternating(b, benchSpeaker(b, false), full, changed) })

	// With two peers and 100 prefixes restricted to one of them.
	restricted := benchAdvs(n)
	for i := 0; i < n; i += n / 100 {
		restricted[i].Peers = []string{"a"}
	}
	rWithout := slices.Delete(slices.Clone(restricted), n/2+1, n/2+2)
	rMoved := slices.Clone(restricted)
	rMoved[n/2].Peers = []string{"b"}
	b.Run("peers/add-remove-one", func(b *testing.B) { runAlternating(b, benchSpeaker(b, true), restricted, rWithout) })
	b.Run("peers/move-one", func(b *testing.B) { runAlternating(b, benchSpeaker(b, true), restricted, rMoved) })
}

// benchState has n Cluster services, each with one LoadBalancer address
// and a backend.
func benchState(n int) model.State {
	st := model.State{Services: make([]model.Service, n)}
	for i := range st.Services {
		st.Services[i] = model.Service{
			Name: model.ServiceName{Namespace: "ns", Name: fmt.Sprintf("svc%05d", i), Port: "http"},
			Frontends: []model.Frontend{
				{Addr: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), Port: 80, Proto: model.TCP, Kind: model.LoadBalancer},
			},
			Backends: []model.Backend{{Addr: netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)}), Port: 8080}},
		}
	}
	return st
}

// BenchmarkControllerUpdate10k: bgp.Controller over this speaker, Update
// with the whole state of 10,000 services after each dataplane sync.
func BenchmarkControllerUpdate10k(b *testing.B) {
	const n = 10000
	st := benchState(n)
	empty := model.State{Services: slices.Clone(st.Services)}
	empty.Services[n/2].Backends = nil // its prefix is withdrawn
	for _, c := range []struct {
		name   string
		states []model.State
	}{{"unchanged", []model.State{st}}, {"withdraw-one", []model.State{st, empty}}} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			ctrl := bgp.NewController(benchSpeaker(b, false), bgp.ControllerConfig{
				Advertisement: bgp.AdvertisementConfig{Communities: []uint32{65000<<16 | 1}},
			})
			in := bgp.Input{Node: bgp.NodeStatus{Name: "n1"}, State: st}
			if err := ctrl.Update(ctx, in); err != nil {
				b.Fatal(err)
			}
			d := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			cpu0 := processCPU()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				in.State = c.states[(i+1)%len(c.states)]
				t0 := time.Now()
				if err := ctrl.Update(ctx, in); err != nil {
					b.Fatal(err)
				}
				d = append(d, time.Since(t0))
			}
			b.StopTimer()
			b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
			reportLatency(b, d)
		})
	}
}
