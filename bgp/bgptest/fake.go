package bgptest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/straitlb/strait/bgp"
	"github.com/straitlb/strait/model"
)

// Options configures a Fake.
type Options struct {
	// AggregationLength and AggregationLengthV6 are the lengths
	// Cluster-policy prefixes may have besides host routes (0: 32 and 128,
	// i.e. host routes only).
	AggregationLength   int
	AggregationLengthV6 int
	// State, when set, is the initial desired state (see SetState).
	State *model.State
}

// Op names a recorded call.
type Op string

// Recorded operations.
const (
	OpSetPeers          Op = "SetPeers"
	OpSetAdvertisements Op = "SetAdvertisements"
	OpClose             Op = "Close"
)

// Call is one recorded, successful call.
type Call struct {
	Seq            int
	At             time.Time
	Op             Op
	Peers          []bgp.Peer
	Advertisements []bgp.Advertisement
}

// Fake is an in-memory bgp.Speaker that checks invariants. All sessions are
// established at once; each peer counts one UPDATE per prefix announced,
// changed or withdrawn towards it.
type Fake struct {
	t    testing.TB
	opts Options

	mu      sync.Mutex
	covered []netip.Addr // LoadBalancer addresses of the desired state
	haveSt  bool
	peers   []bgp.Peer // sorted by name
	advs    []bgp.Advertisement
	updates map[string]uint64
	calls   []Call
	closed  bool
	errNext error
}

var _ bgp.Speaker = (*Fake)(nil)

// New returns a fake speaker reporting violations to t.
func New(t testing.TB, opts Options) *Fake {
	f := &Fake{t: t, opts: opts, updates: make(map[string]uint64)}
	if opts.State != nil {
		f.SetState(*opts.State)
	}
	return f
}

// SetState sets the desired state every advertised prefix must cover: each
// prefix must contain at least one LoadBalancer frontend address of s.
func (f *Fake) SetState(s model.State) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.covered = f.covered[:0]
	for _, svc := range s.Services {
		for _, fe := range svc.Frontends {
			if fe.Kind == model.LoadBalancer {
				f.covered = append(f.covered, fe.Addr.Unmap())
			}
		}
	}
	f.haveSt = true
}

// FailNext makes the next SetPeers or SetAdvertisements call return err
// without doing anything (to test callers' retries). It is not a violation.
func (f *Fake) FailNext(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errNext = err
}

func (f *Fake) violation(format string, args ...any) error {
	f.t.Helper()
	err := fmt.Errorf("bgptest: invariant violated: "+format, args...)
	f.t.Errorf("%v", err)
	return err
}

func (f *Fake) record(op Op, peers []bgp.Peer, advs []bgp.Advertisement) {
	c := Call{Seq: len(f.calls) + 1, At: time.Now(), Op: op, Peers: slices.Clone(peers)}
	for _, a := range advs {
		c.Advertisements = append(c.Advertisements, a.Clone())
	}
	f.calls = append(f.calls, c)
}

// SetPeers implements bgp.Speaker.
func (f *Fake) SetPeers(ctx context.Context, peers []bgp.Peer) error {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return f.violation("SetPeers after Close")
	}
	if err := bgp.ValidatePeers(peers); err != nil {
		return f.violation("SetPeers: %v", err)
	}
	if err := f.takeErr(); err != nil {
		return err
	}
	next := make([]bgp.Peer, len(peers))
	for i, p := range peers {
		p.NodeSelector = nil
		next[i] = p
	}
	slices.SortFunc(next, func(a, b bgp.Peer) int { return strings.Compare(a.Name, b.Name) })
	// A reconfigured or removed peer's session restarts: its counters too.
	old := make(map[string]bgp.Peer, len(f.peers))
	for _, p := range f.peers {
		old[p.Name] = p
	}
	for _, p := range next {
		if o, ok := old[p.Name]; !ok || o != p {
			f.updates[p.Name] = 0
			for _, a := range f.advs {
				if sendsTo(a, p) {
					f.updates[p.Name]++
				}
			}
		}
		delete(old, p.Name)
	}
	for name := range old {
		delete(f.updates, name)
	}
	f.peers = next
	f.record(OpSetPeers, next, nil)
	return nil
}

func (f *Fake) takeErr() error {
	err := f.errNext
	f.errNext = nil
	return err
}

// sendsTo reports whether a real speaker would send a to p.
func sendsTo(a bgp.Advertisement, p bgp.Peer) bool {
	return a.ForPeer(p.Name) && a.Prefix.Addr().Is4() == p.Address.Is4()
}

// SetAdvertisements implements bgp.Speaker.
func (f *Fake) SetAdvertisements(ctx context.Context, advs []bgp.Advertisement) error {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return f.violation("SetAdvertisements after Close")
	}
	if err := bgp.ValidateAdvertisements(advs, f.peers); err != nil {
		return f.violation("SetAdvertisements: %v", err)
	}
	var errs []error
	for _, a := range advs {
		if err := f.checkLength(a.Prefix); err != nil {
			errs = append(errs, err)
		}
		if !f.isCovered(a.Prefix) {
			errs = append(errs, fmt.Errorf("%s covers no LoadBalancer address of the desired state", a.Prefix))
		}
		seen := make(map[string]bool, len(a.Peers))
		for _, p := range a.Peers {
			if seen[p] {
				errs = append(errs, fmt.Errorf("%s names peer %q twice", a.Prefix, p))
			}
			seen[p] = true
		}
	}
	if err := errors.Join(errs...); err != nil {
		return f.violation("SetAdvertisements: %v", err)
	}
	if err := f.takeErr(); err != nil {
		return err
	}
	next := make([]bgp.Advertisement, len(advs))
	for i, a := range advs {
		next[i] = a.Canonical()
	}
	bgp.SortAdvertisements(next)
	f.countUpdates(f.advs, next)
	f.advs = next
	f.record(OpSetAdvertisements, nil, next)
	return nil
}

func (f *Fake) checkLength(p netip.Prefix) error {
	host, agg := 32, f.opts.AggregationLength
	if !p.Addr().Is4() {
		host, agg = 128, f.opts.AggregationLengthV6
	}
	if agg == 0 {
		agg = host
	}
	if p.Bits() != host && p.Bits() != agg {
		if agg == host {
			return fmt.Errorf("%s is not a host prefix (aggregation length %d)", p, agg)
		}
		return fmt.Errorf("%s is neither a host prefix nor /%d", p, agg)
	}
	return nil
}

func (f *Fake) isCovered(p netip.Prefix) bool {
	if !f.haveSt {
		return false
	}
	for _, a := range f.covered {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// countUpdates counts, per peer, the prefixes announced, changed or
// withdrawn towards it.
func (f *Fake) countUpdates(old, next []bgp.Advertisement) {
	byPrefix := func(advs []bgp.Advertisement) map[netip.Prefix]bgp.Advertisement {
		m := make(map[netip.Prefix]bgp.Advertisement, len(advs))
		for _, a := range advs {
			m[a.Prefix] = a
		}
		return m
	}
	o, n := byPrefix(old), byPrefix(next)
	for _, p := range f.peers {
		for prefix, a := range n {
			b, had := o[prefix]
			switch {
			case !sendsTo(a, p):
				if had && sendsTo(b, p) {
					f.updates[p.Name]++ // withdrawn from p
				}
			case !had || !sendsTo(b, p) || !announcedSame(a, b):
				f.updates[p.Name]++
			}
		}
		for prefix, b := range o {
			if _, still := n[prefix]; !still && sendsTo(b, p) {
				f.updates[p.Name]++
			}
		}
	}
}

// announcedSame compares what the peer sees (peer lists aside).
func announcedSame(a, b bgp.Advertisement) bool {
	a.Peers, b.Peers = nil, nil
	return a.Equal(b)
}

// Status implements bgp.Speaker: every peer is established.
func (f *Fake) Status() bgp.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	var st bgp.Status
	for _, p := range f.peers {
		ps := bgp.PeerStatus{Name: p.Name, Address: p.Address, State: bgp.SessionEstablished, UpdatesSent: f.updates[p.Name]}
		for _, a := range f.advs {
			if sendsTo(a, p) {
				ps.Advertised = append(ps.Advertised, a.Prefix)
			}
		}
		st.Peers = append(st.Peers, ps)
	}
	return st
}

// Close implements bgp.Speaker. A second Close is a violation.
func (f *Fake) Close() error {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return f.violation("Close called twice")
	}
	f.closed = true
	f.record(OpClose, nil, nil)
	return nil
}

// Peers returns the current peers, sorted by name.
func (f *Fake) Peers() []bgp.Peer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.peers)
}

// Advertisements returns the current advertisements, canonical and sorted.
func (f *Fake) Advertisements() []bgp.Advertisement {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]bgp.Advertisement, len(f.advs))
	for i, a := range f.advs {
		out[i] = a.Clone()
	}
	return out
}

// Prefixes returns the current advertised prefixes, sorted.
func (f *Fake) Prefixes() []netip.Prefix {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]netip.Prefix, len(f.advs))
	for i, a := range f.advs {
		out[i] = a.Prefix
	}
	return out
}

// Calls returns every successful call so far, in order.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// AdvertisementCalls returns the successful SetAdvertisements calls, in
// order.
func (f *Fake) AdvertisementCalls() []Call {
	var out []Call
	for _, c := range f.Calls() {
		if c.Op == OpSetAdvertisements {
			out = append(out, c)
		}
	}
	return out
}
