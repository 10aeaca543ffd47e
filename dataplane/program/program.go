package program

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
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
	// validation) and write (map updates; Maglev rings are built as they
	// are written, on every CPU).
	Phases struct{ Desired, Write time.Duration }
	// StaleUDPFlows counts conntrack entries removed because their UDP
	// backend left the service (kube-proxy's conntrack cleanup), so
	// one-way senders move to a live backend.
	StaleUDPFlows int
}

// Programmer owns the programmer-written maps. It is not safe for
// concurrent use: one sync loop drives it.
//
// It keeps what every service contributes to the maps, so that a change to
// a few services recomputes and writes only their entries: an incremental
// Apply costs in proportion to what changed, not to the number of
// services. A full diff against the maps is made after a restart and after
// any failed write.
type Programmer struct {
	log    *zap.Logger
	maps   lbmap.Maps
	cfg    Config
	svcIDs *idalloc.Allocator[model.ServiceName]
	beIDs  *idalloc.Allocator[model.BackendKey]

	// cur is what the maps hold, as far as this programmer knows; nil
	// after a failed write, so the next Apply reads the maps again.
	cur *lbmap.Snapshot
	// ringSums are the checksums of the rings the maps hold (cur holds
	// no ring contents).
	ringSums map[uint32]uint64
	// full makes the next write diff every key, not only changed ones.
	full     bool
	restored map[lbmap.FrontendKey]uint32
	// applied holds the entries of every programmed service; w is their
	// union, the maps' desired content.
	applied map[model.ServiceName]*entries
	w       *want
	// retry holds the services that could not be programmed; every Apply
	// tries them again.
	retry map[model.ServiceName]model.Service
	// svcCheck and beCheck are ids that may have fallen out of use.
	svcCheck map[model.ServiceName]struct{}
	beCheck  map[model.BackendKey]struct{}
	// names is id -> service name as of the last Apply, for readers on
	// other goroutines (metrics).
	names      atomic.Pointer[map[uint32]string]
	namesStale bool
}

// setCur takes snap as what the maps hold, keeping only checksums of its
// rings.
func (p *Programmer) setCur(snap *lbmap.Snapshot) {
	p.ringSums = make(map[uint32]uint64, len(snap.Rings))
	for id, ring := range snap.Rings {
		if len(ring) > 0 {
			p.ringSums[id] = ringSum(ring)
		}
	}
	snap.Rings = nil
	p.cur = snap
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
		log:      log,
		maps:     maps,
		cfg:      cfg,
		svcIDs:   idalloc.New[model.ServiceName](cfg.Capacities.Services - 1),
		beIDs:    idalloc.New[model.BackendKey](cfg.Capacities.Backends - 1),
		restored: make(map[lbmap.FrontendKey]uint32),
		applied:  make(map[model.ServiceName]*entries),
		w:        newWant(nil),
		retry:    make(map[model.ServiceName]model.Service),
		svcCheck: make(map[model.ServiceName]struct{}),
		beCheck:  make(map[model.BackendKey]struct{}),
		full:     true,
	}
	snap, err := lbmap.Read(maps)
	if err != nil {
		return nil, fmt.Errorf("read pinned maps: %w", err)
	}
	for id, v := range snap.Backends {
		if err := p.beIDs.Restore(lbmap.BackendKeyOf(v), id); err != nil {
			log.Warn("dropping unrestorable backend entry", zap.Uint32("backendID", id), zap.Error(err))
			continue
		}
		p.beCheck[lbmap.BackendKeyOf(v)] = struct{}{}
	}
	for k, v := range snap.Frontends {
		p.restored[k] = v.SvcId
		if _, held := p.svcIDs.Lookup(placeholder(v.SvcId)); !held {
			if err := p.svcIDs.Restore(placeholder(v.SvcId), v.SvcId); err != nil {
				log.Warn("dropping unrestorable service id", zap.Uint32("serviceID", v.SvcId), zap.Error(err))
				continue
			}
			p.svcCheck[placeholder(v.SvcId)] = struct{}{}
		}
	}
	p.setCur(snap)
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

// Apply makes the maps hold exactly state, comparing every service with
// what is programmed.
func (p *Programmer) Apply(state model.State) (Result, error) {
	if len(p.applied) == 0 && len(p.retry) == 0 && len(state.Services) > 0 {
		p.w = newWant(&state) // nothing programmed yet: size for state
		p.applied = make(map[model.ServiceName]*entries, len(state.Services))
	}
	ch := make(map[model.ServiceName]*model.Service, len(state.Services))
	seen := make(map[model.ServiceName]struct{}, len(state.Services))
	for i := range state.Services {
		s := &state.Services[i]
		seen[s.Name] = struct{}{}
		if e, ok := p.applied[s.Name]; ok && e.svc.Equal(s) {
			if _, failed := p.retry[s.Name]; !failed {
				continue
			}
		}
		ch[s.Name] = s
	}
	for name := range p.applied {
		if _, ok := seen[name]; !ok {
			ch[name] = nil
		}
	}
	for name := range p.retry {
		if _, ok := seen[name]; !ok {
			delete(p.retry, name)
			p.svcCheck[name] = struct{}{}
		}
	}
	return p.apply(ch)
}

// ApplyChanges makes the maps hold exactly state, given that only the
// services named in changed (added, updated or removed) differ from the
// state of the previous Apply or ApplyChanges: the others are not looked
// at. state must be canonical (sorted by name). Services that failed
// before are tried again.
func (p *Programmer) ApplyChanges(state model.State, changed []model.ServiceName) (Result, error) {
	byName := func(s model.Service, n model.ServiceName) int { return s.Name.Compare(n) }
	ch := make(map[model.ServiceName]*model.Service, len(changed))
	for _, name := range changed {
		i, ok := slices.BinarySearchFunc(state.Services, name, byName)
		if ok {
			s := &state.Services[i]
			if e, ok := p.applied[name]; ok && e.svc.Equal(s) {
				if _, failed := p.retry[name]; !failed {
					continue
				}
			}
			ch[name] = s
		} else {
			ch[name] = nil
		}
	}
	for name, s := range p.retry {
		if _, ok := ch[name]; !ok {
			ch[name] = &s
		}
	}
	return p.apply(ch)
}

// apply programs the changed services (nil: removed).
func (p *Programmer) apply(ch map[model.ServiceName]*model.Service) (Result, error) {
	res := Result{Failed: make(map[model.ServiceName]error)}
	if p.cur == nil {
		snap, err := lbmap.Read(p.maps)
		if err != nil {
			return res, fmt.Errorf("re-read maps: %w", err)
		}
		p.setCur(snap)
		p.full = true
	}
	t0 := time.Now()
	names := slices.SortedFunc(maps.Keys(ch), model.ServiceName.Compare)
	var d *dirty // nil: the write compares every key
	if !p.full {
		d = newDirty()
	}
	unused := func(k model.BackendKey) { p.beCheck[k] = struct{}{} }
	old := make(map[model.ServiceName]*entries)
	for _, name := range names {
		if e := p.applied[name]; e != nil {
			p.w.remove(e, d, unused)
			old[name] = e
		}
	}
	var jobs []ringJob
	var restore []model.ServiceName
	for _, name := range names {
		s := ch[name]
		if s == nil {
			delete(p.applied, name)
			delete(p.retry, name)
			p.svcCheck[name] = struct{}{}
			p.namesStale = true
			continue
		}
		e, err := p.compute(p.w, s, old[name], &jobs)
		if err != nil {
			res.Failed[name] = err
			p.retry[name] = *s
			if old[name] != nil {
				restore = append(restore, name)
			}
			continue
		}
		p.w.add(e, name, d)
		p.applied[name] = e
		delete(p.retry, name)
		if old[name] == nil || old[name].id != e.id {
			p.namesStale = true
		}
	}
	// A service that failed keeps what it had, except frontends another
	// service took over in this round.
	for _, name := range restore {
		o := *old[name]
		o.frontends = slices.DeleteFunc(slices.Clone(o.frontends), func(f feEntry) bool {
			_, taken := p.w.frontends[f.k]
			return taken
		})
		p.w.add(&o, name, d)
		p.applied[name] = &o
	}
	t1 := time.Now()
	res.Phases.Desired = t1.Sub(t0)

	wr := &writer{p: p, w: p.w, d: d, full: p.full, res: &res, jobs: jobs}
	err := wr.write()
	res.Phases.Write = time.Since(t1)
	n, cerr := p.flushStaleUDP(wr.stale)
	res.StaleUDPFlows = n
	if cerr != nil {
		p.log.Warn("stale UDP conntrack entries not removed", zap.Error(cerr))
	}
	for id := range wr.failed {
		if name, ok := p.w.owner[id]; ok {
			if e := p.applied[name]; e != nil {
				p.retry[name] = e.svc
			}
		}
	}
	if err != nil {
		// Read the maps again and compare everything next time.
		p.cur = nil
	} else {
		p.full = false
		p.releaseUnused()
	}
	res.Services, res.Backends, res.Frontends = len(p.w.services), len(p.w.backends), len(p.w.frontends)
	if p.namesStale || p.names.Load() == nil {
		names := make(map[uint32]string, len(p.w.owner))
		for id, n := range p.w.owner {
			names[id] = n.String()
		}
		p.names.Store(&names)
		p.namesStale = false
	}
	for name, ferr := range res.Failed {
		p.log.Warn("service not programmed", zap.Stringer("service", name), zap.Error(ferr))
	}
	return res, err
}

// releaseUnused frees the ids that may have fallen out of use, once
// nothing wants them and the maps no longer reference them.
func (p *Programmer) releaseUnused() {
	for name := range p.svcCheck {
		id, ok := p.svcIDs.Lookup(name)
		if !ok {
			delete(p.svcCheck, name)
			continue
		}
		if _, ok := p.applied[name]; ok {
			delete(p.svcCheck, name)
			continue
		}
		if _, ok := p.retry[name]; ok {
			continue // failed; keep its id for the retry
		}
		if _, still := p.cur.Services[id]; still {
			continue
		}
		p.svcIDs.Release(name)
		delete(p.svcCheck, name)
	}
	for key := range p.beCheck {
		id, ok := p.beIDs.Lookup(key)
		if !ok || p.w.beRefs[id] > 0 {
			delete(p.beCheck, key)
			continue
		}
		if _, still := p.cur.Backends[id]; still {
			continue
		}
		p.beIDs.Release(key)
		delete(p.beCheck, key)
	}
	// Restored ids no service claimed are in the checks since New.
	clear(p.restored)
}

var errPartial = errors.New("some map writes failed")

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
