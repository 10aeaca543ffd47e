package gobgp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	bgppkt "github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"
	"go.uber.org/zap"

	"github.com/straitlb/strait/bgp"
)

// Config configures a Speaker.
type Config struct {
	// NodeIP is the node's address; it is the default router ID.
	NodeIP netip.Addr
	// RouterID is the BGP identifier (default NodeIP). It must be IPv4.
	RouterID netip.Addr
	// ASN is GoBGP's global AS (default DefaultASN). Sessions use each
	// peer's LocalASN, which bgp.Peer requires, so it is a placeholder
	// GoBGP needs to run.
	ASN uint32
	// ListenPort, when > 0, makes the speaker also accept sessions on that
	// port. 0 (the default) means no listener: the node dials out.
	ListenPort int32
	// ListenAddresses are the listener's addresses (default: all).
	ListenAddresses []netip.Addr
	// Logger receives GoBGP's logs (nil: no logging).
	Logger *zap.Logger
}

// DefaultASN is the global AS when Config.ASN is 0 (the first private AS).
const DefaultASN = 64512

// ErrClosed is returned by a closed speaker.
var ErrClosed = errors.New("bgp speaker is closed")

// Names of the GoBGP policy objects the speaker owns.
const (
	importPolicyName = "strait-import"
	exportPolicyName = "strait-export"
	globalRIB        = "global"
)

// Speaker is a bgp.Speaker backed by an embedded GoBGP server.
type Speaker struct {
	srv      *server.BgpServer
	log      *zap.Logger
	routerID netip.Addr

	mu     sync.Mutex
	closed bool
	peers  map[netip.Addr]bgp.Peer // applied, NodeSelector cleared
	// advs are the applied advertisements, sorted by prefix
	// (bgp.ComparePrefix); spare is the array the next list is built in.
	advs, spare []entry
	attrs       map[string]*attrs // interned attributes of advs
	policyKey   string            // identifies the applied routing policy ("?": unknown)
	// What policyKey was computed from: the restricted advertisements
	// (sorted, canonical) and the peers.
	policyAdvs  []bgp.Advertisement
	policyPeers []peerID
}

// peerID is what the routing policy reads of a peer.
type peerID struct {
	addr netip.Addr
	name string
}

var _ bgp.Speaker = (*Speaker)(nil)

// New starts an embedded GoBGP server with no peers and no routes.
func New(ctx context.Context, cfg Config) (*Speaker, error) {
	rid := cfg.RouterID
	if !rid.IsValid() {
		rid = cfg.NodeIP
	}
	rid = rid.Unmap()
	if !rid.Is4() || rid.IsUnspecified() {
		return nil, fmt.Errorf("bgp speaker: router ID %q is not an IPv4 address (set RouterID or an IPv4 NodeIP)", rid)
	}
	if cfg.ListenPort < 0 || cfg.ListenPort > 65535 {
		return nil, fmt.Errorf("bgp speaker: listen port %d out of range", cfg.ListenPort)
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("component", "gobgp"))
	if lc := (net.ListenConfig{}); cfg.ListenPort > 0 && lc.MultipathTCP() {
		log.Warn("the BGP listener will use MPTCP (Go's default for listeners), which refuses TCP MD5 keys: " +
			"password-protected sessions work only when the node dials out; build with //go:debug multipathtcp=0 to listen with MD5")
	}
	s := &Speaker{
		srv:      server.NewBgpServer(server.LoggerOption(newLogger(log))),
		log:      log,
		routerID: rid,
		peers:    make(map[netip.Addr]bgp.Peer),
		attrs:    make(map[string]*attrs),
	}
	go s.srv.Serve()
	if err := s.srv.StartBgp(ctx, &api.StartBgpRequest{Global: apiGlobal(cfg, rid)}); err != nil {
		s.srv.Stop()
		return nil, fmt.Errorf("bgp speaker: start: %w", err)
	}
	// Learn nothing: received routes are rejected (only locally
	// originated paths pass the import policy), so nothing is
	// re-advertised and the Loc-RIB holds only the node's prefixes
	// (GoBGP still keeps each peer's Adj-RIB-In). Export is open until
	// some advertisement is restricted to some peers.
	req, key := routingPolicy(nil, nil)
	err := s.srv.SetPolicies(ctx, req)
	for _, a := range []*api.PolicyAssignment{
		{Name: globalRIB, Direction: api.PolicyDirection_IMPORT, Policies: []*api.Policy{{Name: importPolicyName}}, DefaultAction: api.RouteAction_REJECT},
		{Name: globalRIB, Direction: api.PolicyDirection_EXPORT, Policies: []*api.Policy{{Name: exportPolicyName}}, DefaultAction: api.RouteAction_ACCEPT},
	} {
		if err == nil {
			err = s.srv.AddPolicyAssignment(ctx, &api.AddPolicyAssignmentRequest{Assignment: a})
		}
	}
	if err != nil {
		s.srv.Stop()
		return nil, fmt.Errorf("bgp speaker: policies: %w", err)
	}
	s.policyKey = key
	return s, nil
}

// apiGlobal converts the global configuration.
func apiGlobal(cfg Config, rid netip.Addr) *api.Global {
	g := &api.Global{Asn: cfg.ASN, RouterId: rid.String(), ListenPort: -1}
	if g.Asn == 0 {
		g.Asn = DefaultASN
	}
	if cfg.ListenPort > 0 {
		g.ListenPort = cfg.ListenPort
		for _, a := range cfg.ListenAddresses {
			g.ListenAddresses = append(g.ListenAddresses, a.String())
		}
	}
	return g
}

// RouterID returns the BGP identifier in use.
func (s *Speaker) RouterID() netip.Addr { return s.routerID }

func family(a netip.Addr) *api.Family {
	if a.Unmap().Is4() {
		return &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	}
	return &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
}

func seconds(d time.Duration) uint64 { return uint64(d / time.Second) }

// apiPeer converts a peer (defaults applied) to GoBGP's neighbor
// configuration.
func apiPeer(p bgp.Peer) *api.Peer {
	p = p.WithDefaults()
	afi := &api.AfiSafi{Config: &api.AfiSafiConfig{Family: family(p.Address), Enabled: true}}
	ap := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: p.Address.String(),
			PeerAsn:         p.PeerASN,
			LocalAsn:        p.LocalASN,
			AuthPassword:    p.Password,
			Description:     p.Name,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry:      seconds(p.ConnectRetry),
			HoldTime:          seconds(p.HoldTime),
			KeepaliveInterval: seconds(p.KeepaliveTime),
		}},
		Transport: &api.Transport{RemotePort: uint32(p.Port)},
		AfiSafis:  []*api.AfiSafi{afi},
	}
	if p.SourceAddress.IsValid() {
		ap.Transport.LocalAddress = p.SourceAddress.String()
	}
	if p.EBGPMultihopTTL != 0 {
		ap.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(p.EBGPMultihopTTL)}
	}
	if p.GracefulRestart {
		ap.GracefulRestart = &api.GracefulRestart{Enabled: true, RestartTime: uint32(bgp.DefaultGRRestartTime / time.Second)}
		afi.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
	}
	return ap
}

// apiPath converts an advertisement to a locally originated path: ORIGIN
// IGP, next hop unspecified (GoBGP puts the session's local address), the
// communities, large communities and local preference. age is the path's
// timestamp.
func apiPath(a bgp.Advertisement, withdraw bool, age time.Time) (*api.Path, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	a = a.Canonical()
	addr, bits := a.Prefix.Addr(), uint8(a.Prefix.Bits())
	attrs := []bgppkt.PathAttributeInterface{bgppkt.NewPathAttributeOrigin(bgppkt.BGP_ORIGIN_ATTR_TYPE_IGP)}
	var nlri bgppkt.AddrPrefixInterface
	if addr.Is4() {
		nlri = bgppkt.NewIPAddrPrefix(bits, addr.String())
		attrs = append(attrs, bgppkt.NewPathAttributeNextHop("0.0.0.0"))
	} else {
		nlri = bgppkt.NewIPv6AddrPrefix(bits, addr.String())
		attrs = append(attrs, bgppkt.NewPathAttributeMpReachNLRI("::", []bgppkt.AddrPrefixInterface{nlri}))
	}
	if len(a.Communities) > 0 {
		attrs = append(attrs, bgppkt.NewPathAttributeCommunities(a.Communities))
	}
	if len(a.LargeCommunities) > 0 {
		lcs := make([]*bgppkt.LargeCommunity, len(a.LargeCommunities))
		for i, c := range a.LargeCommunities {
			lcs[i] = bgppkt.NewLargeCommunity(c.GlobalAdmin, c.LocalData1, c.LocalData2)
		}
		attrs = append(attrs, bgppkt.NewPathAttributeLargeCommunities(lcs))
	}
	if a.LocalPref != nil {
		attrs = append(attrs, bgppkt.NewPathAttributeLocalPref(*a.LocalPref))
	}
	return apiutil.NewPath(nlri, withdraw, attrs, age)
}

// sendsTo reports whether a goes to p: p is selected and of a's family.
func sendsTo(a bgp.Advertisement, p bgp.Peer) bool {
	return a.ForPeer(p.Name) && a.Prefix.Addr().Is4() == p.Address.Unmap().Is4()
}

// routingPolicy returns the complete GoBGP routing policy and a key that
// identifies it. The import policy accepts only locally originated paths
// (its assignment rejects the rest). The export policy keeps each peer from
// getting the prefixes not meant for it: per restricted peer, a statement
// matching the peer (neighbor set) and those prefixes (prefix set) rejects
// them; with no restriction it has no statement.
func routingPolicy(advs []bgp.Advertisement, peers []bgp.Peer) (*api.SetPoliciesRequest, string) {
	peers = slices.Clone(peers)
	slices.SortFunc(peers, func(a, b bgp.Peer) int { return a.Address.Compare(b.Address) })
	advs = slices.Clone(advs)
	bgp.SortAdvertisements(advs)
	req := &api.SetPoliciesRequest{}
	imp := &api.Policy{Name: importPolicyName, Statements: []*api.Statement{{
		Name:       "strait-accept-local",
		Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
		Actions:    &api.Actions{RouteAction: api.RouteAction_ACCEPT},
	}}}
	exp := &api.Policy{Name: exportPolicyName}
	var key strings.Builder
	for _, p := range peers {
		var deny []*api.Prefix
		for _, a := range advs {
			if a.Prefix.Addr().Is4() == p.Address.Unmap().Is4() && !a.ForPeer(p.Name) {
				bits := uint32(a.Prefix.Bits())
				deny = append(deny, &api.Prefix{IpPrefix: a.Prefix.String(), MaskLengthMin: bits, MaskLengthMax: bits})
				fmt.Fprintf(&key, "%s>%s;", p.Address, a.Prefix)
			}
		}
		if len(deny) == 0 {
			continue
		}
		id := p.Address.String()
		nbr, pfx := "strait-peer-"+id, "strait-deny-"+id
		req.DefinedSets = append(req.DefinedSets,
			&api.DefinedSet{DefinedType: api.DefinedType_NEIGHBOR, Name: nbr, List: []string{netip.PrefixFrom(p.Address, p.Address.BitLen()).String()}},
			&api.DefinedSet{DefinedType: api.DefinedType_PREFIX, Name: pfx, Prefixes: deny})
		exp.Statements = append(exp.Statements, &api.Statement{
			Name: "strait-deny-" + id,
			Conditions: &api.Conditions{
				NeighborSet: &api.MatchSet{Type: api.MatchSet_ANY, Name: nbr},
				PrefixSet:   &api.MatchSet{Type: api.MatchSet_ANY, Name: pfx},
			},
			Actions: &api.Actions{RouteAction: api.RouteAction_REJECT},
		})
	}
	req.Policies = []*api.Policy{imp, exp}
	return req, key.String()
}

// peerIDs returns what routingPolicy reads of peers, sorted by address.
func peerIDs(peers []bgp.Peer) []peerID {
	ids := make([]peerID, len(peers))
	for i, p := range peers {
		ids[i] = peerID{p.Address, p.Name}
	}
	slices.SortFunc(ids, func(a, b peerID) int {
		return cmp.Or(a.addr.Compare(b.addr), strings.Compare(a.name, b.name))
	})
	return ids
}

// restricted returns the advertisements that name peers: the others do not
// change the routing policy.
func restricted(advs []entry) []bgp.Advertisement {
	var out []bgp.Advertisement
	for _, e := range advs {
		if len(e.attrs.peers) > 0 {
			out = append(out, e.adv())
		}
	}
	return out
}

// applyPolicyLocked installs the routing policy for the restricted
// advertisements (sorted, canonical: the others do not change it) and peers
// if it changed. same says restricted are those the current key was
// computed from, which saves computing it again when the peers are also
// the same.
func (s *Speaker) applyPolicyLocked(ctx context.Context, same bool, restricted func() []bgp.Advertisement, peers []bgp.Peer) error {
	ids := peerIDs(peers)
	if same && s.policyKey != "?" && slices.Equal(ids, s.policyPeers) {
		return nil // the key would be the same
	}
	advs := restricted()
	req, key := routingPolicy(advs, peers)
	s.policyAdvs, s.policyPeers = advs, ids
	if key == s.policyKey {
		return nil
	}
	if err := s.srv.SetPolicies(ctx, req); err != nil {
		s.policyKey = "?" // unknown: re-apply next time
		return fmt.Errorf("set routing policy: %w", err)
	}
	s.policyKey = key
	return nil
}

func (s *Speaker) peerListLocked() []bgp.Peer {
	out := make([]bgp.Peer, 0, len(s.peers))
	for _, p := range s.peers {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b bgp.Peer) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// SetPeers implements bgp.Speaker.
func (s *Speaker) SetPeers(ctx context.Context, peers []bgp.Peer) error {
	if err := bgp.ValidatePeers(peers); err != nil {
		return fmt.Errorf("set peers: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	want := make(map[netip.Addr]bgp.Peer, len(peers))
	for _, p := range peers {
		p.NodeSelector = nil
		want[p.Address] = p
	}
	var errs []error
	for _, old := range s.peerListLocked() {
		if p, ok := want[old.Address]; ok && p == old {
			continue
		}
		err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: old.Address.String()})
		if err != nil {
			errs = append(errs, fmt.Errorf("delete peer %s: %w", old, err))
			continue
		}
		delete(s.peers, old.Address)
	}
	// The export policy must know the new peers before they come up.
	r := restricted(s.advs)
	same := slices.EqualFunc(r, s.policyAdvs, bgp.Advertisement.Equal)
	if err := s.applyPolicyLocked(ctx, same, func() []bgp.Advertisement { return r }, peers); err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, p := range peers {
		p.NodeSelector = nil
		if _, ok := s.peers[p.Address]; ok {
			continue
		}
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: apiPeer(p)}); err != nil {
			errs = append(errs, fmt.Errorf("add peer %s: %w", p, err))
			continue
		}
		s.peers[p.Address] = p
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("set peers: %w", err)
	}
	return nil
}

// SetAdvertisements implements bgp.Speaker. The work is proportional to the
// changes, plus one comparison per prefix when advs is sorted by prefix
// (as bgp.Controller passes them); otherwise a sorted copy is made first.
func (s *Speaker) SetAdvertisements(ctx context.Context, advs []bgp.Advertisement) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	peers := s.peerListLocked()
	sorted := advs
	d, st := s.diffLocked(sorted, peers)
	if st == diffUnsorted {
		sorted = slices.Clone(advs)
		bgp.SortAdvertisements(sorted)
		d, st = s.diffLocked(sorted, peers)
	}
	if st != diffOK {
		err := bgp.ValidateAdvertisements(advs, peers)
		if err == nil { // cannot happen: diffLocked checks the same
			err = errors.New("invalid advertisements")
		}
		return fmt.Errorf("set advertisements: %w", err)
	}

	var errs []error
	for i := range d.ops {
		o := &d.ops[i]
		if o.kind != opWithdraw && o.kind != opReplace {
			continue
		}
		if err := s.withdrawLocked(ctx, s.advs[o.at].adv()); err != nil {
			errs = append(errs, err)
			continue
		}
		o.withdrawn = true
	}
	err := s.applyPolicyLocked(ctx, d.samePolicy, func() []bgp.Advertisement {
		var out []bgp.Advertisement
		for _, a := range sorted {
			if len(a.Peers) > 0 {
				out = append(out, a.Canonical())
			}
		}
		return out
	}, peers)
	if err != nil {
		s.commitLocked(d.ops)
		return fmt.Errorf("set advertisements: %w", errors.Join(append(errs, err)...))
	}
	now := time.Now()
	for i := range d.ops {
		o := &d.ops[i]
		if o.kind != opAnnounce && o.kind != opReplace {
			continue
		}
		path, err := apiPath(o.adv, false, now)
		if err == nil {
			_, err = s.srv.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: path})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("announce %s: %w", o.adv.Prefix, err))
			continue
		}
		o.announced = true
	}
	for i := range d.ops {
		d.ops[i].regrouped = d.ops[i].kind == opRegroup
	}
	s.commitLocked(d.ops)
	for _, addr := range slices.SortedFunc(maps.Keys(d.resend), netip.Addr.Compare) {
		err := s.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: addr.String(), Soft: true, Direction: api.ResetPeerRequest_OUT})
		if err != nil {
			errs = append(errs, fmt.Errorf("resend to %s: %w", addr, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("set advertisements: %w", err)
	}
	return nil
}

// sameAttributes reports whether a and b differ in their peers only.
func sameAttributes(a, b bgp.Advertisement) bool {
	a.Peers, b.Peers = nil, nil
	return a.Equal(b)
}

func (s *Speaker) withdrawLocked(ctx context.Context, a bgp.Advertisement) error {
	path, err := apiPath(a, true, time.Now())
	if err == nil {
		err = s.srv.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: path.Family, Path: path})
	}
	if err != nil {
		return fmt.Errorf("withdraw %s: %w", a.Prefix, err)
	}
	return nil
}

// Status implements bgp.Speaker.
func (s *Speaker) Status() bgp.Status {
	st := bgp.Status{RouterID: s.routerID}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return st
	}
	names := make(map[netip.Addr]string, len(s.peers))
	for a, p := range s.peers {
		names[a] = p.Name
	}
	s.mu.Unlock()

	ctx := context.Background()
	var list []*api.Peer
	err := s.srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) { list = append(list, p) })
	if err != nil {
		s.log.Warn("list peers", zap.Error(err))
		return st
	}
	for _, p := range list {
		if p.Conf == nil || p.State == nil {
			continue
		}
		addr, err := netip.ParseAddr(p.Conf.NeighborAddress)
		if err != nil {
			continue
		}
		ps := bgp.PeerStatus{Name: names[addr], Address: addr, State: sessionState(p.State.SessionState)}
		if ps.Name == "" {
			ps.Name = p.Conf.Description
		}
		if m := p.State.Messages; m != nil {
			if m.Sent != nil {
				ps.UpdatesSent = m.Sent.Update
			}
			if m.Received != nil {
				ps.UpdatesReceived = m.Received.Update
			}
		}
		if p.Timers != nil && p.Timers.State != nil && p.Timers.State.Uptime != nil && p.Timers.State.Uptime.Seconds > 0 {
			ps.Since = p.Timers.State.Uptime.AsTime()
		}
		if ps.State == bgp.SessionEstablished {
			ps.Advertised = s.adjOut(ctx, addr)
		}
		st.Peers = append(st.Peers, ps)
	}
	sort.Slice(st.Peers, func(i, j int) bool { return st.Peers[i].Name < st.Peers[j].Name })
	return st
}

// adjOut lists the prefixes advertised to the peer at addr.
func (s *Speaker) adjOut(ctx context.Context, addr netip.Addr) []netip.Prefix {
	var out []netip.Prefix
	err := s.srv.ListPath(ctx, &api.ListPathRequest{TableType: api.TableType_ADJ_OUT, Name: addr.String(), Family: family(addr)},
		func(d *api.Destination) {
			if p, err := netip.ParsePrefix(d.Prefix); err == nil {
				out = append(out, p)
			}
		})
	if err != nil {
		s.log.Debug("list adj-rib-out", zap.Stringer("peer", addr), zap.Error(err))
	}
	slices.SortFunc(out, bgp.ComparePrefix)
	return out
}

func sessionState(s api.PeerState_SessionState) bgp.SessionState {
	switch s {
	case api.PeerState_IDLE:
		return bgp.SessionIdle
	case api.PeerState_CONNECT:
		return bgp.SessionConnect
	case api.PeerState_ACTIVE:
		return bgp.SessionActive
	case api.PeerState_OPENSENT:
		return bgp.SessionOpenSent
	case api.PeerState_OPENCONFIRM:
		return bgp.SessionOpenConfirm
	case api.PeerState_ESTABLISHED:
		return bgp.SessionEstablished
	}
	return bgp.SessionUnknown
}

// Close implements bgp.Speaker: every session is shut down with a CEASE
// notification (the routers withdraw the node's routes at once) and any
// listener is closed.
func (s *Speaker) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.srv.StopBgp(context.Background(), &api.StopBgpRequest{})
	s.peers, s.advs, s.spare, s.attrs, s.policyAdvs = nil, nil, nil, nil, nil
	return err
}

// zapLogger adapts zap to GoBGP's log.Logger.
type zapLogger struct {
	l     *zap.Logger
	level atomic.Uint32
}

var _ gobgplog.Logger = (*zapLogger)(nil)

func newLogger(l *zap.Logger) *zapLogger {
	z := &zapLogger{l: l}
	lvl := gobgplog.ErrorLevel
	switch {
	case l.Core().Enabled(zap.DebugLevel):
		lvl = gobgplog.DebugLevel
	case l.Core().Enabled(zap.InfoLevel):
		lvl = gobgplog.InfoLevel
	case l.Core().Enabled(zap.WarnLevel):
		lvl = gobgplog.WarnLevel
	}
	z.level.Store(uint32(lvl))
	return z
}

func zapFields(f gobgplog.Fields) []zap.Field {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]zap.Field, 0, len(keys))
	for _, k := range keys {
		name := k
		if k == gobgplog.FieldFacility {
			name = "facility"
		}
		out = append(out, zap.Any(name, f[k]))
	}
	return out
}

func (z *zapLogger) enabled(l gobgplog.LogLevel) bool { return gobgplog.LogLevel(z.level.Load()) >= l }

// Panic logs and panics: GoBGP calls it on internal logic bugs.
func (z *zapLogger) Panic(msg string, f gobgplog.Fields) { z.l.Panic(msg, zapFields(f)...) }

// Fatal logs at error level and returns: an embedded speaker must not exit
// the process (GoBGP calls it, e.g., when a policy fails to load, and then
// returns an error).
func (z *zapLogger) Fatal(msg string, f gobgplog.Fields) {
	z.l.Error(msg, append(zapFields(f), zap.Bool("gobgpFatal", true))...)
}

func (z *zapLogger) Error(msg string, f gobgplog.Fields) {
	if z.enabled(gobgplog.ErrorLevel) {
		z.l.Error(msg, zapFields(f)...)
	}
}

func (z *zapLogger) Warn(msg string, f gobgplog.Fields) {
	if z.enabled(gobgplog.WarnLevel) {
		z.l.Warn(msg, zapFields(f)...)
	}
}

func (z *zapLogger) Info(msg string, f gobgplog.Fields) {
	if z.enabled(gobgplog.InfoLevel) {
		z.l.Info(msg, zapFields(f)...)
	}
}

func (z *zapLogger) Debug(msg string, f gobgplog.Fields) {
	if z.enabled(gobgplog.DebugLevel) {
		z.l.Debug(msg, zapFields(f)...)
	}
}

func (z *zapLogger) SetLevel(l gobgplog.LogLevel) { z.level.Store(uint32(l)) }
func (z *zapLogger) GetLevel() gobgplog.LogLevel  { return gobgplog.LogLevel(z.level.Load()) }
