package program

import (
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/straitlb/strait/dataplane/flowhash"
	"github.com/straitlb/strait/dataplane/idalloc"
	"github.com/straitlb/strait/dataplane/lbmap"
	"github.com/straitlb/strait/dataplane/maglev"
	"github.com/straitlb/strait/model"
)

// Config tunes the programmer. Zero fields take defaults.
type Config struct {
	// MaxRingSize caps a service's Maglev ring (a prime).
	MaxRingSize uint32
	Capacities  lbmap.Capacities
	// SNAT source ports for flows to remote backends; keep them outside
	// the node's ip_local_port_range.
	SNATPortMin, SNATPortMax                        uint16
	CTTCPSyn, CTTCPEstablished, CTTCPClosing, CTUDP time.Duration
	// HairpinAddr is the source the per-packet path gives a pod's flow to
	// its own address through a service (the reply must leave the pod to
	// be translated back). Default 169.254.42.1; never a real address.
	HairpinAddr netip.Addr
}

func (c *Config) setDefaults() {
	if c.MaxRingSize == 0 {
		c.MaxRingSize = maglev.DefaultMaxSize
	}
	if c.Capacities == (lbmap.Capacities{}) {
		c.Capacities = lbmap.DefaultCapacities
	}
	if c.SNATPortMin == 0 {
		c.SNATPortMin, c.SNATPortMax = 61000, 65535
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.CTTCPSyn, 60*time.Second)
	def(&c.CTTCPEstablished, 6*time.Hour)
	def(&c.CTTCPClosing, 10*time.Second)
	def(&c.CTUDP, 60*time.Second)
	if !c.HairpinAddr.IsValid() {
		c.HairpinAddr = DefaultHairpinAddr
	}
}

// DefaultHairpinAddr is the default Config.HairpinAddr (link-local, as
// Cilium's).
var DefaultHairpinAddr = netip.MustParseAddr("169.254.42.1")

// Iface is one device the datapath runs on.
type Iface struct {
	Index int
	// SNATAddr is the node address used as source towards remote backends.
	SNATAddr model.BackendKey
}

// Result reports what one Apply did.
type Result struct {
	Services, Backends, Frontends int
	// Failed holds the services that could not be programmed, each with a
	// specific error. Everything else was programmed.
	Failed map[model.ServiceName]error
	// Writes counts entries written or deleted.
	Writes int
	// Phases times the parts of the Apply: desired (IDs and
	// validation), rings (Maglev builds), write (map updates, ring swaps
	// included).
	Phases struct{ Desired, Rings, Write time.Duration }
	// StaleUDPFlows counts conntrack entries removed because their UDP
	// backend left the service (kube-proxy's conntrack cleanup), so
	// one-way senders move to a live backend.
	StaleUDPFlows int
}

// Programmer owns the programmer-written maps. It is not safe for
// concurrent use: one sync loop drives it.
type Programmer struct {
	log    *zap.Logger
	maps   lbmap.Maps
	cfg    Config
	svcIDs *idalloc.Allocator[model.ServiceName]
	beIDs  *idalloc.Allocator[model.BackendKey]

	// cur is what the maps hold, as far as this programmer knows; nil
	// after a failed write, so the next Apply reads the maps again.
	cur       *lbmap.Snapshot
	restored  map[lbmap.FrontendKey]uint32
	ringCache map[uint32]ringCacheEntry
	// names is id -> service name as of the last Apply, for readers on
	// other goroutines (metrics).
	names atomic.Pointer[map[uint32]string]
}

// ServiceName returns the name of service id as of the last Apply. Safe
// for concurrent use.
func (p *Programmer) ServiceName(id uint32) (string, bool) {
	m := p.names.Load()
	if m == nil {
		return "", false
	}
	n, ok := (*m)[id]
	return n, ok
}

// New reads the maps and restores IDs from them: services keep the ids
// their frontends point to, backends the ids their entries hold. Nothing is
// flushed; entries that the first Apply does not want are pruned by it.
func New(log *zap.Logger, maps lbmap.Maps, cfg Config) (*Programmer, error) {
	cfg.setDefaults()
	p := &Programmer{
		log:       log,
		maps:      maps,
		cfg:       cfg,
		svcIDs:    idalloc.New[model.ServiceName](cfg.Capacities.Services - 1),
		beIDs:     idalloc.New[model.BackendKey](cfg.Capacities.Backends - 1),
		restored:  make(map[lbmap.FrontendKey]uint32),
		ringCache: make(map[uint32]ringCacheEntry),
	}
	snap, err := lbmap.Read(maps)
	if err != nil {
		return nil, fmt.Errorf("read pinned maps: %w", err)
	}
	for id, v := range snap.Backends {
		if err := p.beIDs.Restore(lbmap.BackendKeyOf(v), id); err != nil {
			log.Warn("dropping unrestorable backend entry", zap.Uint32("backendID", id), zap.Error(err))
		}
	}
	for k, v := range snap.Frontends {
		p.restored[k] = v.SvcId
		if _, held := p.svcIDs.Lookup(placeholder(v.SvcId)); !held {
			if err := p.svcIDs.Restore(placeholder(v.SvcId), v.SvcId); err != nil {
				log.Warn("dropping unrestorable service id", zap.Uint32("serviceID", v.SvcId), zap.Error(err))
			}
		}
	}
	p.cur = snap
	if len(snap.Frontends) > 0 {
		log.Info("restored datapath state", zap.Int("frontends", len(snap.Frontends)),
			zap.Int("backends", len(snap.Backends)), zap.Int("services", len(snap.Services)))
	}
	return p, nil
}

// SetIfaces programs the per-device settings and the global config.
func (p *Programmer) SetIfaces(ifaces []Iface) error {
	c := p.cfg
	cfgVal := lbmap.Config{
		SnatPortMin:      uint32(c.SNATPortMin),
		SnatPortMax:      uint32(c.SNATPortMax),
		CtTcpSyn:         uint32(c.CTTCPSyn / time.Second),
		CtTcpEstablished: uint32(c.CTTCPEstablished / time.Second),
		CtTcpClosing:     uint32(c.CTTCPClosing / time.Second),
		CtUdp:            uint32(c.CTUDP / time.Second),
	}
	if !c.HairpinAddr.Is4() {
		return fmt.Errorf("program config: hairpin address %s is not IPv4", c.HairpinAddr)
	}
	cfgVal.HairpinAddr = flowhash.Raw32(c.HairpinAddr)
	if err := p.maps.Config.Put([]uint32{0}, []lbmap.Config{cfgVal}); err != nil {
		return fmt.Errorf("program config: %w", err)
	}
	want := make(map[uint32]lbmap.IfaceVal)
	for _, i := range ifaces {
		if !i.SNATAddr.Addr.Is4() {
			return fmt.Errorf("program device %d: SNAT address %s is not IPv4", i.Index, i.SNATAddr.Addr)
		}
		want[uint32(i.Index)] = lbmap.IfaceVal{SnatAddr: flowhash.Raw32(i.SNATAddr.Addr)}
	}
	have, err := p.maps.Ifaces.All()
	if err != nil {
		return err
	}
	puts, _, dels := diff(have, want)
	if err := p.maps.Ifaces.Put(puts.keys, puts.vals); err != nil {
		return fmt.Errorf("program devices: %w", err)
	}
	if err := p.maps.Ifaces.Delete(dels); err != nil {
		return fmt.Errorf("program devices: %w", err)
	}
	return nil
}

// Apply makes the maps hold exactly state.
func (p *Programmer) Apply(state model.State) (Result, error) {
	res := Result{Failed: make(map[model.ServiceName]error)}
	if p.cur == nil {
		snap, err := lbmap.Read(p.maps)
		if err != nil {
			return res, fmt.Errorf("re-read maps: %w", err)
		}
		p.cur = snap
	}
	t0 := time.Now()
	d := newDesired(len(state.Services))
	wanted := make(map[model.ServiceName]bool, len(state.Services))
	for i := range state.Services {
		svc := &state.Services[i]
		wanted[svc.Name] = true
		if err := p.addService(d, svc); err != nil {
			res.Failed[svc.Name] = err
		}
	}
	t1 := time.Now()
	res.Phases.Desired = t1.Sub(t0)
	p.buildRings(d)
	t2 := time.Now()
	res.Phases.Rings = t2.Sub(t1)
	udp := udpServices(p.cur, d)
	before := make([]lbmap.SvcBackendKey, 0, len(p.cur.SvcBackends))
	for k := range p.cur.SvcBackends {
		if udp[k.SvcId] {
			before = append(before, k)
		}
	}
	w := &writer{p: p, d: d, res: &res}
	err := w.write()
	res.Phases.Write = time.Since(t2)
	if p.cur != nil {
		stale := make(map[lbmap.SvcBackendKey]bool)
		for _, k := range before {
			if _, still := p.cur.SvcBackends[k]; !still {
				stale[k] = true
			}
		}
		n, cerr := p.flushStaleUDP(stale)
		res.StaleUDPFlows = n
		if cerr != nil {
			p.log.Warn("stale UDP conntrack entries not removed", zap.Error(cerr))
		}
	}
	p.releaseUnused(d, wanted)
	res.Services, res.Backends, res.Frontends = len(d.services), len(d.backends), len(d.frontends)
	names := make(map[uint32]string, len(d.owner))
	for id, n := range d.owner {
		names[id] = n.String()
	}
	p.names.Store(&names)
	if err != nil {
		p.cur = nil
	}
	for name, ferr := range res.Failed {
		p.log.Warn("service not programmed", zap.Stringer("service", name), zap.Error(ferr))
	}
	return res, err
}

// releaseUnused frees the ids of services and backends not in d, once the
// maps no longer reference them.
func (p *Programmer) releaseUnused(d *desired, wanted map[model.ServiceName]bool) {
	if p.cur == nil {
		return
	}
	// d's ids are a subset of the allocated ones: equal counts mean there
	// is nothing to release (the common case of a sync with no deletion).
	if len(d.services) == p.svcIDs.Len() && len(d.backends) == p.beIDs.Len() && len(p.restored) == 0 {
		return
	}
	var svcNames []model.ServiceName
	for name := range p.svcIDs.All() {
		svcNames = append(svcNames, name)
	}
	for _, name := range svcNames {
		id, _ := p.svcIDs.Lookup(name)
		if _, ok := d.services[id]; ok {
			continue
		}
		if _, still := p.cur.Services[id]; still {
			continue
		}
		if wanted[name] {
			continue // failed this round; keep its id for the retry
		}
		p.svcIDs.Release(name)
		delete(p.ringCache, id)
	}
	var beKeys []model.BackendKey
	for key := range p.beIDs.All() {
		beKeys = append(beKeys, key)
	}
	for _, key := range beKeys {
		id, _ := p.beIDs.Lookup(key)
		if _, ok := d.backends[id]; ok {
			continue
		}
		if _, still := p.cur.Backends[id]; still {
			continue
		}
		p.beIDs.Release(key)
	}
	clear(p.restored)
}

var errPartial = errors.New("some map writes failed")

// udpServices are the ids of services with a UDP frontend, in the maps or
// desired.
func udpServices(cur *lbmap.Snapshot, d *desired) map[uint32]bool {
	out := make(map[uint32]bool)
	for k, v := range cur.Frontends {
		if k.Proto == uint8(model.UDP) {
			out[v.SvcId] = true
		}
	}
	for k, v := range d.frontends {
		if k.Proto == uint8(model.UDP) {
			out[v.SvcId] = true
		}
	}
	return out
}

// flushStaleUDP removes the UDP conntrack entries (both directions) of
// flows pinned to a backend that left its service. Nothing is read when
// no UDP backend left; otherwise one batched read of the table and one
// batched delete.
func (p *Programmer) flushStaleUDP(stale map[lbmap.SvcBackendKey]bool) (int, error) {
	if len(stale) == 0 || p.maps.Conntrack == nil {
		return 0, nil
	}
	all, err := p.maps.Conntrack.All()
	if err != nil {
		return 0, err
	}
	var dels []lbmap.CtKey
	for k, v := range all {
		if k.Proto == uint8(model.UDP) && stale[lbmap.SvcBackendKey{SvcId: v.SvcId, BackendId: v.BackendId}] {
			dels = append(dels, k)
		}
	}
	if err := p.maps.Conntrack.Delete(dels); err != nil {
		return 0, err
	}
	if len(dels) > 0 {
		p.log.Info("removed conntrack entries of UDP flows to departed backends", zap.Int("entries", len(dels)))
	}
	return len(dels), nil
}
