package bgp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
)

// Defaults applied by Peer.WithDefaults.
const (
	DefaultPort          = 179
	DefaultHoldTime      = 90 * time.Second
	DefaultConnectRetry  = 5 * time.Second
	MinHoldTime          = 3 * time.Second
	MaxHoldTime          = 65535 * time.Second
	MaxPasswordLen       = 80 // TCP_MD5SIG_MAXKEYLEN
	DefaultGRRestartTime = 120 * time.Second
)

// Peer is one BGP session: a router the node dials out to.
type Peer struct {
	// Name identifies the peer in Advertisement.Peers, Status and metrics.
	Name string
	// Address is the router's address; it also selects the address family
	// of the prefixes the session carries.
	Address netip.Addr
	// Port is the router's TCP port (0: 179).
	Port uint16
	// PeerASN is the router's AS; LocalASN is the node's AS on this session.
	// Equal ASNs make an iBGP session.
	PeerASN  uint32
	LocalASN uint32
	// HoldTime (0: 90s; otherwise at least 3s) and KeepaliveTime (0: a
	// third of HoldTime) are whole seconds.
	HoldTime      time.Duration
	KeepaliveTime time.Duration
	// ConnectRetry is how long the speaker waits between connection
	// attempts (0: 5s; whole seconds). The speaker only dials out.
	ConnectRetry time.Duration
	// Password, when set, protects the session with TCP MD5 (RFC 2385).
	// The caller reads it from a Secret; it is never logged.
	Password string
	// EBGPMultihopTTL, when not 0, is the TTL of an eBGP session to a router
	// that is not directly connected.
	EBGPMultihopTTL uint8
	// SourceAddress, when valid, is the local address the session is dialed
	// from. It must be of Address's family.
	SourceAddress netip.Addr
	// GracefulRestart advertises the graceful restart capability (RFC 4724,
	// restart time 120s): the router keeps the node's routes while the
	// speaker restarts.
	GracefulRestart bool
	// NodeSelector selects the nodes that peer with this router (nil: every
	// node). Speakers ignore it: Controller and SelectPeers apply it.
	NodeSelector labels.Selector
}

// String names the peer without its password.
func (p Peer) String() string {
	return fmt.Sprintf("%s(%s AS%d)", p.Name, netip.AddrPortFrom(p.Address, p.portOrDefault()), p.PeerASN)
}

func (p Peer) portOrDefault() uint16 {
	if p.Port == 0 {
		return DefaultPort
	}
	return p.Port
}

// IBGP reports whether the session is internal (equal ASNs).
func (p Peer) IBGP() bool { return p.PeerASN == p.LocalASN }

// WithDefaults returns p with zero port, timers and connect retry set to
// their defaults.
func (p Peer) WithDefaults() Peer {
	p.Port = p.portOrDefault()
	if p.HoldTime == 0 {
		p.HoldTime = DefaultHoldTime
	}
	if p.KeepaliveTime == 0 {
		p.KeepaliveTime = (p.HoldTime / 3).Truncate(time.Second)
	}
	if p.ConnectRetry == 0 {
		p.ConnectRetry = DefaultConnectRetry
	}
	return p
}

// Validate checks one peer.
func (p Peer) Validate() error {
	var errs []error
	if p.Name == "" {
		errs = append(errs, errors.New("empty name"))
	}
	if !p.Address.IsValid() || p.Address.IsUnspecified() || p.Address.Zone() != "" {
		errs = append(errs, fmt.Errorf("invalid address %q", p.Address))
	}
	if p.PeerASN == 0 {
		errs = append(errs, errors.New("peer ASN 0"))
	}
	if p.LocalASN == 0 {
		errs = append(errs, errors.New("local ASN 0"))
	}
	d := p.WithDefaults()
	for _, t := range []struct {
		name string
		v    time.Duration
	}{{"hold time", d.HoldTime}, {"keepalive time", d.KeepaliveTime}, {"connect retry", d.ConnectRetry}} {
		if t.v%time.Second != 0 {
			errs = append(errs, fmt.Errorf("%s %s is not whole seconds", t.name, t.v))
		}
	}
	if d.HoldTime < MinHoldTime || d.HoldTime > MaxHoldTime {
		errs = append(errs, fmt.Errorf("hold time %s out of range [%s, %s]", d.HoldTime, MinHoldTime, MaxHoldTime))
	}
	if d.KeepaliveTime < time.Second || d.KeepaliveTime >= d.HoldTime {
		errs = append(errs, fmt.Errorf("keepalive time %s must be at least 1s and less than hold time %s", d.KeepaliveTime, d.HoldTime))
	}
	if d.ConnectRetry < time.Second {
		errs = append(errs, fmt.Errorf("connect retry %s is less than 1s", d.ConnectRetry))
	}
	if len(p.Password) > MaxPasswordLen {
		errs = append(errs, fmt.Errorf("password longer than %d bytes", MaxPasswordLen))
	}
	if p.EBGPMultihopTTL != 0 && p.IBGP() {
		errs = append(errs, errors.New("eBGP multihop on an iBGP session"))
	}
	if p.SourceAddress.IsValid() && p.Address.IsValid() && p.SourceAddress.Is4() != p.Address.Is4() {
		errs = append(errs, fmt.Errorf("source address %s is not of the family of %s", p.SourceAddress, p.Address))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("peer %q: %w", p.Name, err)
	}
	return nil
}

// ValidatePeers checks every peer and that names and addresses are unique.
func ValidatePeers(peers []Peer) error {
	var errs []error
	names := make(map[string]bool, len(peers))
	addrs := make(map[netip.Addr]string, len(peers))
	for _, p := range peers {
		if err := p.Validate(); err != nil {
			errs = append(errs, err)
		}
		if names[p.Name] {
			errs = append(errs, fmt.Errorf("peer name %q used twice", p.Name))
		}
		names[p.Name] = true
		if other, ok := addrs[p.Address]; ok {
			errs = append(errs, fmt.Errorf("peers %q and %q have the same address %s", other, p.Name, p.Address))
		}
		addrs[p.Address] = p.Name
	}
	return errors.Join(errs...)
}

// SelectPeers returns the peers whose NodeSelector matches the node (nil
// selects every node), with NodeSelector cleared, in input order.
func SelectPeers(peers []Peer, node NodeStatus) []Peer {
	var out []Peer
	set := labels.Set(node.Labels)
	for _, p := range peers {
		if p.NodeSelector != nil && !p.NodeSelector.Matches(set) {
			continue
		}
		p.NodeSelector = nil
		out = append(out, p)
	}
	return out
}

// LargeCommunity is a BGP large community (RFC 8092), "global:local1:local2".
type LargeCommunity struct {
	GlobalAdmin, LocalData1, LocalData2 uint32
}

func (c LargeCommunity) String() string {
	return fmt.Sprintf("%d:%d:%d", c.GlobalAdmin, c.LocalData1, c.LocalData2)
}

// Compare orders large communities field by field.
func (c LargeCommunity) Compare(o LargeCommunity) int {
	return cmp.Or(cmp.Compare(c.GlobalAdmin, o.GlobalAdmin), cmp.Compare(c.LocalData1, o.LocalData1), cmp.Compare(c.LocalData2, o.LocalData2))
}

// Advertisement is one prefix the node announces.
type Advertisement struct {
	// Prefix is masked (no host bits).
	Prefix netip.Prefix
	// Communities are standard communities (RFC 1997) as uint32,
	// high 16 bits the AS: see ParseCommunity.
	Communities      []uint32
	LargeCommunities []LargeCommunity
	// LocalPref is sent on iBGP sessions only (nil: the speaker's default,
	// 100).
	LocalPref *uint32
	// Peers names the peers the prefix goes to; empty means every peer.
	Peers []string
}

func (a Advertisement) String() string {
	s := a.Prefix.String()
	if len(a.Communities) > 0 {
		s += fmt.Sprintf(" communities=%s", FormatCommunities(a.Communities))
	}
	if len(a.LargeCommunities) > 0 {
		s += fmt.Sprintf(" large=%v", a.LargeCommunities)
	}
	if a.LocalPref != nil {
		s += fmt.Sprintf(" localpref=%d", *a.LocalPref)
	}
	if len(a.Peers) > 0 {
		s += fmt.Sprintf(" peers=%v", a.Peers)
	}
	return s
}

// ForPeer reports whether the advertisement goes to the named peer,
// address family aside.
func (a Advertisement) ForPeer(name string) bool {
	return len(a.Peers) == 0 || slices.Contains(a.Peers, name)
}

// Clone returns a deep copy.
func (a Advertisement) Clone() Advertisement {
	a.Communities = slices.Clone(a.Communities)
	a.LargeCommunities = slices.Clone(a.LargeCommunities)
	a.Peers = slices.Clone(a.Peers)
	if a.LocalPref != nil {
		v := *a.LocalPref
		a.LocalPref = &v
	}
	return a
}

// Canonical returns a copy with communities, large communities and peers
// sorted and deduplicated, so that equal advertisements compare equal.
func (a Advertisement) Canonical() Advertisement {
	a = a.Clone()
	slices.Sort(a.Communities)
	a.Communities = slices.Compact(a.Communities)
	slices.SortFunc(a.LargeCommunities, LargeCommunity.Compare)
	a.LargeCommunities = slices.Compact(a.LargeCommunities)
	slices.Sort(a.Peers)
	a.Peers = slices.Compact(a.Peers)
	if len(a.Communities) == 0 {
		a.Communities = nil
	}
	if len(a.LargeCommunities) == 0 {
		a.LargeCommunities = nil
	}
	if len(a.Peers) == 0 {
		a.Peers = nil
	}
	return a
}

// Equal reports whether a and b announce the same thing (order of
// communities and peers aside). It allocates nothing when both are
// canonical.
func (a Advertisement) Equal(b Advertisement) bool {
	if a.Prefix != b.Prefix || (a.LocalPref == nil) != (b.LocalPref == nil) {
		return false
	}
	if a.LocalPref != nil && *a.LocalPref != *b.LocalPref {
		return false
	}
	return sameSet(a.Communities, b.Communities, cmp.Compare[uint32]) &&
		sameSet(a.LargeCommunities, b.LargeCommunities, LargeCommunity.Compare) &&
		sameSet(a.Peers, b.Peers, strings.Compare)
}

// sameSet reports whether x and y hold the same elements, order and
// duplicates aside.
func sameSet[T comparable](x, y []T, cmp func(T, T) int) bool {
	if strictlySorted(x, cmp) && strictlySorted(y, cmp) {
		return slices.Equal(x, y)
	}
	x, y = slices.Clone(x), slices.Clone(y)
	slices.SortFunc(x, cmp)
	slices.SortFunc(y, cmp)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

func strictlySorted[T any](s []T, cmp func(T, T) int) bool {
	for i := 1; i < len(s); i++ {
		if cmp(s[i-1], s[i]) >= 0 {
			return false
		}
	}
	return true
}

// Validate checks one advertisement on its own.
func (a Advertisement) Validate() error {
	if !a.Prefix.IsValid() {
		return fmt.Errorf("advertisement: invalid prefix %q", a.Prefix)
	}
	if a.Prefix.Addr().Zone() != "" || a.Prefix.Addr().Is4In6() {
		return fmt.Errorf("advertisement %s: zoned or IPv4-mapped prefix", a.Prefix)
	}
	if a.Prefix != a.Prefix.Masked() {
		return fmt.Errorf("advertisement %s: host bits set (want %s)", a.Prefix, a.Prefix.Masked())
	}
	for _, p := range a.Peers {
		if p == "" {
			return fmt.Errorf("advertisement %s: empty peer name", a.Prefix)
		}
	}
	return nil
}

// ValidateAdvertisements checks every advertisement, that no prefix is
// listed twice and that every named peer is one of peers.
func ValidateAdvertisements(advs []Advertisement, peers []Peer) error {
	known := make(map[string]bool, len(peers))
	for _, p := range peers {
		known[p.Name] = true
	}
	seen := make(map[netip.Prefix]bool, len(advs))
	var errs []error
	for _, a := range advs {
		if err := a.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[a.Prefix] {
			errs = append(errs, fmt.Errorf("advertisement %s: prefix listed twice", a.Prefix))
		}
		seen[a.Prefix] = true
		for _, p := range a.Peers {
			if !known[p] {
				errs = append(errs, fmt.Errorf("advertisement %s: unknown peer %q", a.Prefix, p))
			}
		}
	}
	return errors.Join(errs...)
}

// SortAdvertisements sorts by prefix (address, then length).
func SortAdvertisements(advs []Advertisement) {
	slices.SortFunc(advs, func(a, b Advertisement) int { return ComparePrefix(a.Prefix, b.Prefix) })
}

// ComparePrefix orders prefixes by address, then length.
func ComparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// SessionState is the BGP finite state machine state of a session.
type SessionState uint8

// Session states (RFC 4271 section 8).
const (
	SessionUnknown SessionState = iota
	SessionIdle
	SessionConnect
	SessionActive
	SessionOpenSent
	SessionOpenConfirm
	SessionEstablished
)

var sessionStateNames = [...]string{"unknown", "idle", "connect", "active", "opensent", "openconfirm", "established"}

func (s SessionState) String() string {
	if int(s) < len(sessionStateNames) {
		return sessionStateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// MarshalText writes the state's name, so status output reads
// "Established" rather than a number.
func (s SessionState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads what MarshalText wrote.
func (s *SessionState) UnmarshalText(b []byte) error {
	for _, st := range SessionStates() {
		if st.String() == string(b) {
			*s = st
			return nil
		}
	}
	return fmt.Errorf("unknown BGP session state %q", b)
}

// SessionStates lists every state, in FSM order.
func SessionStates() []SessionState {
	return []SessionState{SessionUnknown, SessionIdle, SessionConnect, SessionActive, SessionOpenSent, SessionOpenConfirm, SessionEstablished}
}

// Status is a snapshot of a speaker.
type Status struct {
	RouterID netip.Addr
	// Peers is sorted by name.
	Peers []PeerStatus
}

// Peer returns the named peer's status.
func (s Status) Peer(name string) (PeerStatus, bool) {
	for _, p := range s.Peers {
		if p.Name == name {
			return p, true
		}
	}
	return PeerStatus{}, false
}

// PeerStatus is one session's state.
type PeerStatus struct {
	Name    string
	Address netip.Addr
	State   SessionState
	// Since is when the session was last established (zero if never).
	Since time.Time
	// Advertised are the prefixes currently advertised to the peer (its
	// Adj-RIB-Out), sorted. Empty unless the session is established.
	Advertised []netip.Prefix
	// UpdatesSent and UpdatesReceived count UPDATE messages on the current
	// peer configuration (they restart from 0 when the peer is
	// reconfigured).
	UpdatesSent     uint64
	UpdatesReceived uint64
}

// Speaker announces prefixes to BGP peers. All methods are declarative and
// safe for concurrent use.
type Speaker interface {
	// SetPeers makes peers the complete set of sessions: new ones are
	// added, missing ones shut down (their routes withdrawn), changed ones
	// re-established. Peers are matched by address; NodeSelector is
	// ignored.
	SetPeers(ctx context.Context, peers []Peer) error
	// SetAdvertisements makes advs the complete set of announced prefixes:
	// new prefixes are announced, changed ones re-announced, missing ones
	// withdrawn. It fails without changing anything when advs is invalid
	// (see ValidateAdvertisements against the current peers). It does not
	// keep advs, which the caller may reuse once it returns, nor modify
	// it. Advertisements sorted by prefix (SortAdvertisements), as
	// Controller passes them, are compared with the current ones in a
	// single pass.
	SetAdvertisements(ctx context.Context, advs []Advertisement) error
	// Status reports the sessions and what each was sent.
	Status() Status
	// Close shuts every session down and stops the speaker.
	Close() error
}
