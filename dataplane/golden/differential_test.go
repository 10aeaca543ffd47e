package golden

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/straitlb/strait/dataplane/flowhash"
	"github.com/straitlb/strait/dataplane/lbmap"
	"github.com/straitlb/strait/dataplane/loader/loadertest"
	"github.com/straitlb/strait/dataplane/maglev"
	"github.com/straitlb/strait/dataplane/program"
	"github.com/straitlb/strait/dataplane/testrun"
	"github.com/straitlb/strait/internal/pkt"
	"github.com/straitlb/strait/model"
)

// expectedBackend is the pure-Go model of the datapath's choice for a new
// flow: Maglev over the sorted backend keys, indexed by the flow hash.
// It knows nothing of map contents or ids.
func expectedBackend(backends []model.BackendKey, src netip.Addr, sport, dport uint16, proto model.Protocol) model.BackendKey {
	size := maglev.TableSize(len(backends), maglev.DefaultMaxSize)
	table := maglev.Build(backends, size)
	return backends[table[flowhash.Flow(src, sport, dport, uint8(proto))%size]]
}

// The real program and the Go model pick the same backend for 100,000
// random new flows.
func TestPrivilegedDifferentialMaglev(t *testing.T) {
	caps := lbmap.DefaultCapacities
	d := loadertest.Load(t, loadertest.PinDir(t), caps)
	p, err := program.New(zaptest.NewLogger(t), d.Maps, program.Config{})
	if err != nil {
		t.Fatal(err)
	}
	vip := netip.MustParseAddr("203.0.113.60")
	var backends []model.Backend
	var keys []model.BackendKey
	for i := range 13 {
		b := model.Backend{Addr: netip.AddrFrom4([4]byte{198, 18, 1, byte(100 + i)}), Port: 8080, Local: true}
		backends = append(backends, b)
		keys = append(keys, b.Key())
	}
	s := model.State{Services: []model.Service{{
		Name:      model.ServiceName{Namespace: "diff", Name: "maglev"},
		Frontends: []model.Frontend{{Addr: vip, Port: 80, Proto: model.TCP, Kind: model.LoadBalancer}},
		Backends:  backends,
	}}}
	if res, err := p.Apply(s); err != nil || len(res.Failed) > 0 {
		t.Fatalf("apply: %v %v", err, res.Failed)
	}
	// Precompute the model's table once; expectedBackend is the readable
	// form, checked against it on the first flows.
	size := maglev.TableSize(len(keys), maglev.DefaultMaxSize)
	sorted := append([]model.BackendKey(nil), keys...)
	table := maglev.Build(sorted, size)

	rng := rand.New(rand.NewPCG(1, 2))
	const flows = 100000
	hits := make(map[model.BackendKey]int)
	for i := range flows {
		src := netip.AddrFrom4([4]byte{198, 51, 100, byte(rng.IntN(256))})
		sport := uint16(1024 + rng.IntN(64511))
		want := sorted[table[flowhash.Flow(src, sport, 80, 6)%size]]
		if i < 100 {
			if e := expectedBackend(keys, src, sport, 80, model.TCP); e != want {
				t.Fatalf("model disagrees with itself: %s vs %s", e, want)
			}
		}
		f := pkt.Frame{SrcMAC: RouterMAC, DstMAC: NodeMAC, Src: src, Dst: vip, SPort: sport, DPort: 80, Proto: 6, Flags: pkt.SYN}
		verdict, out, err := testrun.RunXDP(d.Objects().StraitXdp, f.Bytes(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if verdict != testrun.XDPPass || len(out) < 14+20+4 {
			t.Fatalf("flow %d: verdict %d", i, verdict)
		}
		got := model.BackendKey{Addr: netip.AddrFrom4([4]byte(out[30:34])), Port: uint16(out[36])<<8 | uint16(out[37])}
		if got != want {
			t.Fatalf("flow %d %s:%d: program chose %s, model %s", i, src, sport, got, want)
		}
		hits[got]++
	}
	if len(hits) != len(keys) {
		t.Fatalf("only %d of %d backends chosen", len(hits), len(keys))
	}
	t.Logf("%d flows agree; spread over %d backends: %v", flows, len(hits), hits)
}
