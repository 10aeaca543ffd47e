package program

import (
	"net/netip"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/straitlb/strait/dataplane/flowhash"
	"github.com/straitlb/strait/dataplane/lbmap"
	"github.com/straitlb/strait/model"
)

// TestStaleUDPConntrackFlushed: when a UDP backend leaves its service, the
// conntrack entries of flows pinned to it (both directions) go, so a
// one-way sender moves to a live backend; entries of the remaining
// backend, of TCP services and of other services stay.
func TestStaleUDPConntrackFlushed(t *testing.T) {
	maps := lbmap.NewFake(lbmap.Capacities{Frontends: 64, Services: 64, Backends: 64, Conntrack: 64, Affinity: 64, SrcRanges: 64})
	p, err := New(zaptest.NewLogger(t), maps, Config{})
	if err != nil {
		t.Fatal(err)
	}
	b1 := model.Backend{Addr: ip("198.18.1.10"), Port: 5353, Local: true}
	b2 := model.Backend{Addr: ip("198.18.1.11"), Port: 5353, Local: true}
	t1 := model.Backend{Addr: ip("198.18.1.10"), Port: 8080, Local: true}
	dns := model.Service{Name: model.ServiceName{Namespace: "d", Name: "dns"},
		Frontends: []model.Frontend{{Addr: ip("198.19.0.53"), Port: 53, Proto: model.UDP, Kind: model.ClusterIP}},
		Backends:  []model.Backend{b1, b2}}
	web := model.Service{Name: model.ServiceName{Namespace: "d", Name: "web"},
		Frontends: []model.Frontend{{Addr: ip("198.19.0.80"), Port: 80, Proto: model.TCP, Kind: model.ClusterIP}},
		Backends:  []model.Backend{t1}}
	if _, err := p.Apply(model.State{Services: []model.Service{dns, web}}); err != nil {
		t.Fatal(err)
	}
	svc, _ := p.svcIDs.Lookup(dns.Name)
	webID, _ := p.svcIDs.Lookup(web.Name)
	id1, _ := p.beIDs.Lookup(b1.Key())
	id2, _ := p.beIDs.Lookup(b2.Key())
	idT, _ := p.beIDs.Lookup(t1.Key())
	client := netip.MustParseAddr("198.18.2.10")
	ct := func(proto model.Protocol, sport uint16, svcID, be uint32, rev bool) lbmap.CtKey {
		k := lbmap.CtKey{Saddr: flowhash.Raw32(client), Daddr: flowhash.Raw32(ip("198.19.0.53")),
			Sport: flowhash.Raw16(sport), Dport: flowhash.Raw16(53), Proto: uint8(proto)}
		if rev {
			k.Saddr, k.Daddr, k.Sport, k.Dport = k.Daddr, k.Saddr, k.Dport, k.Sport
		}
		if err := maps.Conntrack.Put([]lbmap.CtKey{k}, []lbmap.CtVal{{SvcId: svcID, BackendId: be}}); err != nil {
			t.Fatal(err)
		}
		return k
	}
	gone := []lbmap.CtKey{ct(model.UDP, 1000, svc, id1, false), ct(model.UDP, 1000, svc, id1, true)}
	kept := []lbmap.CtKey{ct(model.UDP, 1001, svc, id2, false), ct(model.UDP, 1001, svc, id2, true),
		ct(model.TCP, 1002, webID, idT, false)}

	dns.Backends = []model.Backend{b2}
	res, err := p.Apply(model.State{Services: []model.Service{dns, web}})
	if err != nil {
		t.Fatal(err)
	}
	if res.StaleUDPFlows != 2 {
		t.Errorf("StaleUDPFlows = %d, want 2", res.StaleUDPFlows)
	}
	all, _ := maps.Conntrack.All()
	for _, k := range gone {
		if _, ok := all[k]; ok {
			t.Errorf("entry %+v of the departed backend survived", k)
		}
	}
	for _, k := range kept {
		if _, ok := all[k]; !ok {
			t.Errorf("entry %+v was removed", k)
		}
	}
	// An Apply that removes no UDP backend reads nothing and removes nothing.
	res, err = p.Apply(model.State{Services: []model.Service{dns}})
	if err != nil || res.StaleUDPFlows != 0 {
		t.Errorf("removing a TCP service: %v, %d UDP entries flushed", err, res.StaleUDPFlows)
	}
}
