package model

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Protocol is an IP protocol number carried by a frontend.
type Protocol uint8

// Protocols supported by the dataplane.
const (
	TCP Protocol = 6
	UDP Protocol = 17
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	}
	return fmt.Sprintf("proto(%d)", uint8(p))
}

// ParseProtocol parses "TCP" or "UDP" (case-insensitive).
func ParseProtocol(s string) (Protocol, error) {
	switch strings.ToUpper(s) {
	case "TCP":
		return TCP, nil
	case "UDP":
		return UDP, nil
	}
	return 0, fmt.Errorf("unsupported protocol %q", s)
}

// FrontendKind says how a frontend address was derived.
type FrontendKind uint8

// Frontend kinds, as kube-proxy distinguishes them.
const (
	ClusterIP FrontendKind = iota + 1
	NodePort
	LoadBalancer
	ExternalIP
)

func (k FrontendKind) String() string {
	switch k {
	case ClusterIP:
		return "ClusterIP"
	case NodePort:
		return "NodePort"
	case LoadBalancer:
		return "LoadBalancer"
	case ExternalIP:
		return "ExternalIP"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// External reports whether traffic to this frontend kind is "external" in
// the sense of externalTrafficPolicy.
func (k FrontendKind) External() bool { return k != ClusterIP }

// Frontend is an (address, port, protocol) that the dataplane answers for.
type Frontend struct {
	Addr  netip.Addr
	Port  uint16
	Proto Protocol
	Kind  FrontendKind
}

// Key is the frontend's identity in the dataplane.
func (f Frontend) Key() FrontendKey { return FrontendKey{f.Addr, f.Port, f.Proto} }

func (f Frontend) String() string {
	return fmt.Sprintf("%s/%s", netip.AddrPortFrom(f.Addr, f.Port), f.Proto)
}

// FrontendKey identifies a frontend: two frontends with one key conflict.
type FrontendKey struct {
	Addr  netip.Addr
	Port  uint16
	Proto Protocol
}

func (k FrontendKey) String() string {
	return fmt.Sprintf("%s/%s", netip.AddrPortFrom(k.Addr, k.Port), k.Proto)
}

// Compare orders frontend keys by address, port, then protocol.
func (k FrontendKey) Compare(o FrontendKey) int {
	if c := k.Addr.Compare(o.Addr); c != 0 {
		return c
	}
	if k.Port != o.Port {
		return int(k.Port) - int(o.Port)
	}
	return int(k.Proto) - int(o.Proto)
}

// Backend is one endpoint a service balances to.
type Backend struct {
	Addr netip.Addr
	Port uint16
	// Local is true when the endpoint runs on this node: it is reached by
	// DNAT alone (no SNAT), and it is the only kind eTP/iTP=Local selects.
	Local bool
}

// Key identifies a backend independently of node-local IDs. Maglev tables
// are built from keys so every node computes the same table.
func (b Backend) Key() BackendKey { return BackendKey{b.Addr, b.Port} }

func (b Backend) String() string { return netip.AddrPortFrom(b.Addr, b.Port).String() }

// BackendKey identifies a backend address and port.
type BackendKey struct {
	Addr netip.Addr
	Port uint16
}

func (k BackendKey) String() string { return netip.AddrPortFrom(k.Addr, k.Port).String() }

// Compare orders backend keys by address then port.
func (k BackendKey) Compare(o BackendKey) int {
	if c := k.Addr.Compare(o.Addr); c != 0 {
		return c
	}
	return int(k.Port) - int(o.Port)
}

// EmptyAction is what the dataplane does with a new flow to a service that
// has no usable backend.
type EmptyAction uint8

const (
	// Reject answers with a TCP RST or an ICMP port unreachable, as
	// kube-proxy does for a service with no endpoints at all.
	Reject EmptyAction = iota
	// Drop silently discards, as kube-proxy does for a Local traffic policy
	// that has endpoints elsewhere but none on this node.
	Drop
)

func (a EmptyAction) String() string {
	if a == Drop {
		return "drop"
	}
	return "reject"
}

// ServiceName names a dataplane service: the Kubernetes Service, its port
// name and which half (internal or external) it is.
type ServiceName struct {
	Namespace string
	Name      string
	Port      string
	// Scope is "" for a service with one backend selection, or "internal" /
	// "external" when the traffic policies split it in two.
	Scope string
}

func (n ServiceName) String() string {
	s := n.Namespace + "/" + n.Name
	if n.Port != "" {
		s += ":" + n.Port
	}
	if n.Scope != "" {
		s += "[" + n.Scope + "]"
	}
	return s
}

// Compare orders names lexically field by field.
func (n ServiceName) Compare(o ServiceName) int {
	return cmpStrings(n.Namespace, o.Namespace, n.Name, o.Name, n.Port, o.Port, n.Scope, o.Scope)
}

func cmpStrings(pairs ...string) int {
	for i := 0; i+1 < len(pairs); i += 2 {
		if c := strings.Compare(pairs[i], pairs[i+1]); c != 0 {
			return c
		}
	}
	return 0
}

// Service is one dataplane service.
type Service struct {
	Name      ServiceName
	Frontends []Frontend
	// Backends are the usable endpoints, already filtered by readiness,
	// terminating fallback, traffic policy and topology.
	Backends []Backend
	// IfEmpty applies when Backends is empty.
	IfEmpty EmptyAction
	// AffinityTimeout > 0 enables ClientIP session affinity.
	AffinityTimeout time.Duration
	// SourceRanges, when not empty, restricts which client addresses may
	// reach the service's LoadBalancer frontends.
	SourceRanges []netip.Prefix
}

// State is the complete desired state of one node.
type State struct {
	Services []Service
}

// Canonicalize sorts everything in s in place so that equal states compare
// and print identically.
func (s *State) Canonicalize() {
	for i := range s.Services {
		s.Services[i].Canonicalize()
	}
	slices.SortFunc(s.Services, func(a, b Service) int { return a.Name.Compare(b.Name) })
}

// Canonicalize sorts the service's frontends, backends and source ranges
// in place.
func (s *Service) Canonicalize() {
	slices.SortFunc(s.Frontends, func(a, b Frontend) int { return a.Key().Compare(b.Key()) })
	slices.SortFunc(s.Backends, func(a, b Backend) int { return a.Key().Compare(b.Key()) })
	slices.SortFunc(s.SourceRanges, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
}

// Equal reports whether s and o are the same service, field by field (the
// order of the slices counts: compare canonical services).
func (s *Service) Equal(o *Service) bool {
	return s.Name == o.Name && s.IfEmpty == o.IfEmpty && s.AffinityTimeout == o.AffinityTimeout &&
		slices.Equal(s.Frontends, o.Frontends) && slices.Equal(s.Backends, o.Backends) &&
		slices.Equal(s.SourceRanges, o.SourceRanges)
}
