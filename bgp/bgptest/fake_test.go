package bgptest_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/straitlb/strait/bgp"
	"github.com/straitlb/strait/bgp/bgptest"
	"github.com/straitlb/strait/model"
)

// recorder captures Errorf instead of failing the real test.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.errs
	r.errs = nil
	return e
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

var st = model.State{Services: []model.Service{{
	Name: model.ServiceName{Namespace: "ns", Name: "a"},
	Frontends: []model.Frontend{
		{Addr: netip.MustParseAddr("203.0.113.10"), Port: 80, Proto: model.TCP, Kind: model.LoadBalancer},
		{Addr: netip.MustParseAddr("10.96.0.10"), Port: 80, Proto: model.TCP, Kind: model.ClusterIP},
	},
}}}

var peers = []bgp.Peer{
	{Name: "tor1", Address: netip.MustParseAddr("192.0.2.1"), PeerASN: 65000, LocalASN: 64512},
	{Name: "tor2", Address: netip.MustParseAddr("192.0.2.2"), PeerASN: 65000, LocalASN: 64512},
}

func TestFakeAcceptsValidCalls(t *testing.T) {
	f := bgptest.New(t, bgptest.Options{State: &st}) // the real t: any violation fails
	ctx := context.Background()
	if err := f.SetPeers(ctx, peers); err != nil {
		t.Fatal(err)
	}
	advs := []bgp.Advertisement{{Prefix: pfx("203.0.113.10/32"), Peers: []string{"tor2"}}}
	if err := f.SetAdvertisements(ctx, advs); err != nil {
		t.Fatal(err)
	}
	s := f.Status()
	if p, _ := s.Peer("tor2"); len(p.Advertised) != 1 || p.UpdatesSent != 1 || p.State != bgp.SessionEstablished {
		t.Errorf("tor2 status %+v", p)
	}
	if p, _ := s.Peer("tor1"); len(p.Advertised) != 0 || p.UpdatesSent != 0 {
		t.Errorf("tor1 status %+v", p)
	}
	if err := f.SetAdvertisements(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if p, _ := f.Status().Peer("tor2"); p.UpdatesSent != 2 {
		t.Errorf("withdrawal not counted: %+v", p)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	ops := []bgptest.Op{}
	for _, c := range f.Calls() {
		ops = append(ops, c.Op)
	}
	if fmt.Sprint(ops) != "[SetPeers SetAdvertisements SetAdvertisements Close]" {
		t.Errorf("calls %v", ops)
	}
}

func TestFakeFailsOnViolations(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		opts bgptest.Options
		run  func(f *bgptest.Fake) error
		want string
	}{
		{"prefix not covered by the desired state", bgptest.Options{State: &st}, func(f *bgptest.Fake) error {
			return f.SetAdvertisements(ctx, []bgp.Advertisement{{Prefix: pfx("203.0.113.11/32")}})
		}, "covers no LoadBalancer address"},
		{"ClusterIP is not a LoadBalancer address", bgptest.Options{State: &st}, func(f *bgptest.Fake) error {
			return f.SetAdvertisements(ctx, []bgp.Advertisement{{Prefix: pfx("10.96.0.10/32")}})
		}, "covers no LoadBalancer address"},
		{"no desired state", bgptest.Options{}, func(f *bgptest.Fake) error {
			return f.SetAdvertisements(ctx, []bgp.Advertisement{{Prefix: pfx("203.0.113.10/32")}})
		}, "covers no LoadBalancer address"},
		{"duplicate prefix", bgptest.Options{State: &st}, func(f *bgptest.Fake) error {
			return f.SetAdvertisements(ctx, []bgp.Advertisement{{Prefix: pfx("203.0.113.10/32")}, {Prefix: pfx("203.0.113.10/32")}})
		}, "listed twice"},
		{"unknown peer", bgptest.Options{State: &st}, func(f *bgptest.Fake) error {
			if err := f.SetPeers(ctx, peers); err != nil {
				return nil
			}
			return f.SetAdvertisements(ctx, []bgp.Advertisement{{Prefix: pfx("203.0.113.10/32"), Peers: []string{"tor3"}}})
		}, `unknown peer "tor3"`},
		{"non-host prefix with aggregation length 32", bgptest.Options{State: &st}, func(f *bgptest.Fake) error {
			return f.SetAdvertisements(ctx, []bgp.Advertisement{{Prefix: pfx("203.0.113.0/24")}})
		}, "not a host prefix"},
		{"wrong aggregate length", bgptest.Options{State: &st, AggregationLength: 24}, func(f *bgptest.Fake) error {
			return f.SetAdvertisements(ctx, []bgp.Advertisement{{Prefix: pfx("203.0.113.0/25")}})
		}, "neither a host prefix nor /24"},
		{"host bits set", bgptest.Options{State: &st}, func(f *bgptest.Fake) error {
			return f.SetAdvertisements(ctx, []bgp.Advertisement{{Prefix: netip.PrefixFrom(netip.MustParseAddr("203.0.113.10"), 24)}})
		}, "host bits"},
		{"duplicate peer name", bgptest.Options{}, func(f *bgptest.Fake) error {
			return f.SetPeers(ctx, []bgp.Peer{peers[0], {Name: "tor1", Address: netip.MustParseAddr("192.0.2.9"), PeerASN: 1, LocalASN: 2}})
		}, "used twice"},
		{"invalid peer", bgptest.Options{}, func(f *bgptest.Fake) error {
			return f.SetPeers(ctx, []bgp.Peer{{Name: "x"}})
		}, "invalid address"},
		{"call after Close", bgptest.Options{State: &st}, func(f *bgptest.Fake) error {
			f.Close()
			return f.SetAdvertisements(ctx, nil)
		}, "after Close"},
		{"double Close", bgptest.Options{}, func(f *bgptest.Fake) error {
			f.Close()
			return f.Close()
		}, "Close called twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{TB: t}
			f := bgptest.New(r, tc.opts)
			err := tc.run(f)
			errs := r.take()
			if err == nil || len(errs) != 1 || !strings.Contains(errs[0], tc.want) {
				t.Errorf("err %v, reported %q; want one report containing %q", err, errs, tc.want)
			}
		})
	}

	// An aggregate of the configured length is fine, and a failed call
	// changes nothing.
	r := &recorder{TB: t}
	f := bgptest.New(r, bgptest.Options{State: &st, AggregationLength: 24})
	if err := f.SetAdvertisements(ctx, []bgp.Advertisement{{Prefix: pfx("203.0.113.0/24")}}); err != nil {
		t.Fatal(err)
	}
	f.SetAdvertisements(ctx, []bgp.Advertisement{{Prefix: pfx("198.51.100.0/24")}})
	if errs := r.take(); len(errs) != 1 {
		t.Errorf("reports %q", errs)
	}
	if got := f.Prefixes(); len(got) != 1 || got[0] != pfx("203.0.113.0/24") {
		t.Errorf("after a refused call: %v", got)
	}
}
