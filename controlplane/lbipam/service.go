package lbipam

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// DefaultClass is the spec.loadBalancerClass of the Services Strait
// allocates for (besides those with no class, unless told otherwise).
const DefaultClass = "strait.io/lb"

// Annotations read on Services.
const (
	// AnnotationLoadBalancerIPs requests addresses: a comma-separated list,
	// at most one per family. It overrides spec.loadBalancerIP
	// (deprecated, also honoured).
	AnnotationLoadBalancerIPs = "strait.io/loadBalancerIPs"
	// AnnotationAddressPool requests a pool by name; the pool need not
	// be autoAssign.
	AnnotationAddressPool = "strait.io/address-pool"
	// AnnotationAllowSharedIP is a sharing key: Services with the same
	// key may share an address when their ports and protocols do not
	// clash.
	AnnotationAllowSharedIP = "strait.io/allow-shared-ip"
)

// Port is one port a Service exposes on its address.
type Port struct {
	Protocol v1.Protocol
	Port     int32
}

func (p Port) String() string { return fmt.Sprintf("%s/%d", p.Protocol, p.Port) }

// Service is what the allocator knows about a Service of type
// LoadBalancer.
type Service struct {
	Key types.NamespacedName
	// Labels and NamespaceLabels are matched by pools' selectors.
	Labels, NamespaceLabels map[string]string
	// Families are the families that get an address, primary first.
	// Families after the first are optional unless RequireAllFamilies
	// (PreferDualStack vs RequireDualStack). Empty: IPv4.
	Families           []v1.IPFamily
	RequireAllFamilies bool
	// RequestedIPs are the addresses asked for (at most one per family);
	// when set they replace Families.
	RequestedIPs []netip.Addr
	// Pool is the requested pool ("": any autoAssign pool).
	Pool string
	// SharingKey allows sharing an address ("": never shared).
	SharingKey string
	Ports      []Port
	// Current are the addresses in status.loadBalancer.ingress: kept if
	// still valid, so that a restart never moves a working address.
	Current []netip.Addr
}

// ClassFilter selects the Services Strait allocates for.
type ClassFilter struct {
	// Class is Strait's loadBalancerClass ("": DefaultClass).
	Class string
	// IgnoreUnset leaves alone Services with no loadBalancerClass (the
	// cluster has another default load balancer).
	IgnoreUnset bool
}

// Wants reports whether svc is a LoadBalancer Service of Strait's class.
func (f ClassFilter) Wants(svc *v1.Service) bool {
	if svc.Spec.Type != v1.ServiceTypeLoadBalancer {
		return false
	}
	class := f.Class
	if class == "" {
		class = DefaultClass
	}
	if svc.Spec.LoadBalancerClass == nil {
		return !f.IgnoreUnset
	}
	return *svc.Spec.LoadBalancerClass == class
}

// ServiceFromKube converts a Service the filter wants. The error (an
// *Error with ReasonInvalid) describes an invalid request; the returned
// Service is then still usable for Release.
func ServiceFromKube(svc *v1.Service, nsLabels map[string]string) (Service, error) {
	s := Service{
		Key:             types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name},
		Labels:          svc.Labels,
		NamespaceLabels: nsLabels,
		Families:        slices.Clone(svc.Spec.IPFamilies),
		Pool:            strings.TrimSpace(svc.Annotations[AnnotationAddressPool]),
		SharingKey:      strings.TrimSpace(svc.Annotations[AnnotationAllowSharedIP]),
	}
	pol := svc.Spec.IPFamilyPolicy
	switch {
	case pol != nil && *pol == v1.IPFamilyPolicyRequireDualStack:
		s.RequireAllFamilies = true
	case pol == nil || *pol == v1.IPFamilyPolicySingleStack:
		if len(s.Families) > 1 {
			s.Families = s.Families[:1]
		}
	}
	for _, p := range svc.Spec.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = v1.ProtocolTCP
		}
		s.Ports = append(s.Ports, Port{Protocol: proto, Port: p.Port})
	}
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(in.IP); err == nil {
			s.Current = append(s.Current, a)
		}
	}
	req, field := svc.Annotations[AnnotationLoadBalancerIPs], "annotation "+AnnotationLoadBalancerIPs
	if strings.TrimSpace(req) == "" {
		req, field = svc.Spec.LoadBalancerIP, "spec.loadBalancerIP"
	}
	var v4, v6 bool
	for _, f := range strings.Split(req, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil || a.Zone() != "" || a.Is4In6() || a.IsUnspecified() {
			return s, errorf(ReasonInvalid, "%s: %q is not an IP address", field, f)
		}
		if (a.Is4() && v4) || (a.Is6() && v6) {
			return s, errorf(ReasonInvalid, "%s: more than one address of a family", field)
		}
		v4, v6 = v4 || a.Is4(), v6 || a.Is6()
		s.RequestedIPs = append(s.RequestedIPs, a)
	}
	return s, nil
}

// Reasons of allocation errors; they are also the Events' reasons.
const (
	ReasonInvalid   = "InvalidLoadBalancerRequest"
	ReasonNoPool    = "NoMatchingPool"
	ReasonExhausted = "PoolExhausted"
	ReasonConflict  = "AddressConflict"
)

// Error is why a Service got no address.
type Error struct {
	Reason string
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

func errorf(reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Msg: fmt.Sprintf(format, args...)}
}
