package translate

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/straitlb/strait/model"
)

// Labels that decide which objects a proxy handles.
const (
	// LabelServiceProxyName names the proxy that owns a Service; kube-proxy
	// handles only Services without it.
	LabelServiceProxyName = "service.kubernetes.io/service-proxy-name"
	// LabelHeadless marks the EndpointSlices of a headless Service.
	LabelHeadless = v1.IsHeadlessService
)

// Scopes of a model service split by traffic policy.
const (
	ScopeInternal = "internal"
	ScopeExternal = "external"
)

// DefaultAffinityTimeoutSeconds is the ClientIP affinity timeout the API
// server defaults to when a Service does not set one.
const DefaultAffinityTimeoutSeconds = 10800

// Config is what Translate needs to know about the node it translates for.
type Config struct {
	// NodeName selects local endpoints (endpoint.nodeName) and node hints.
	NodeName string
	// NodeLabels gives the node's zone (topology.kubernetes.io/zone).
	NodeLabels map[string]string
	// NodeAddresses are the addresses NodePorts answer on, as resolved by
	// NodePortAddresses.
	NodeAddresses []netip.Addr
	// NodeIP is the node's primary address of Family. It is optional and is
	// used only as kube-proxy uses it: when a loadBalancerSourceRange
	// contains it, the LoadBalancer IPs themselves are allowed as sources,
	// so that the node can reach a VIP that is routed back to itself.
	NodeIP netip.Addr
	// ProxyName is the service.kubernetes.io/service-proxy-name value we
	// own. Services without the label are always ours; Services with it
	// are ours only when it equals a non-empty ProxyName.
	ProxyName string
	// Family is the IP family to translate, as kube-proxy runs one proxier
	// per family. "" means IPv4 (the dataplane is IPv4-only for now):
	// everything of the other family is skipped without a Problem.
	Family v1.IPFamily
}

func (c Config) family() v1.IPFamily {
	if c.Family == "" {
		return v1.IPv4Protocol
	}
	return c.Family
}

// Problem is one thing wrong with one Kubernetes object. The rest of the
// object, and every other object, is still translated.
type Problem struct {
	// Service is the Service the problem belongs to (for an EndpointSlice,
	// the Service named by its kubernetes.io/service-name label).
	Service types.NamespacedName
	// Slice is the EndpointSlice's name when the problem is in one.
	Slice string
	// Field is the path of the offending field, like "spec.externalIPs[1]".
	Field string
	Err   error
}

func (p Problem) Error() string {
	obj := "service " + p.Service.String()
	if p.Slice != "" {
		obj = "endpointslice " + p.Service.Namespace + "/" + p.Slice + " (service " + p.Service.Name + ")"
	}
	return fmt.Sprintf("%s: %s: %v", obj, p.Field, p.Err)
}

func (p Problem) Unwrap() error { return p.Err }

func compareProblems(a, b Problem) int {
	return cmp.Or(
		strings.Compare(a.Service.Namespace, b.Service.Namespace),
		strings.Compare(a.Service.Name, b.Service.Name),
		strings.Compare(a.Slice, b.Slice),
		strings.Compare(a.Field, b.Field),
		strings.Compare(a.Err.Error(), b.Err.Error()),
	)
}

// problems collects Problems.
type problems []Problem

func (ps *problems) add(svc types.NamespacedName, field string, err error) {
	*ps = append(*ps, Problem{Service: svc, Field: field, Err: err})
}

func (ps *problems) addSlice(svc types.NamespacedName, slice, field string, err error) {
	*ps = append(*ps, Problem{Service: svc, Slice: slice, Field: field, Err: err})
}

// Translate computes the desired state of one node from the Services and
// EndpointSlices in the cluster. It is pure: it reads nothing else, changes
// none of its inputs, and returns the same canonical State and the same
// sorted Problems for the same inputs in any order.
func Translate(cfg Config, services []*v1.Service, endpointSlices []*discoveryv1.EndpointSlice) (model.State, []Problem) {
	var probs problems

	owned := make(map[types.NamespacedName]*serviceInfo)
	var infos []*serviceInfo
	for _, svc := range services {
		if svc == nil || !ownsService(cfg, svc) {
			continue
		}
		info := parseService(cfg, svc, &probs)
		if info == nil {
			continue
		}
		if prev, ok := owned[info.name]; ok {
			// A lister cannot hold two Services with one name; keep
			// the input deterministic anyway.
			if compareServiceAge(prev.obj, info.obj) <= 0 {
				continue
			}
			infos = slices.DeleteFunc(infos, func(i *serviceInfo) bool { return i == prev })
		}
		owned[info.name] = info
		infos = append(infos, info)
	}

	eps := collectEndpoints(cfg, owned, endpointSlices, &probs)

	var built []*builtService
	for _, info := range infos {
		built = append(built, buildService(cfg, info, eps)...)
	}
	built = resolveConflicts(built, &probs)

	var state model.State
	for _, b := range built {
		state.Services = append(state.Services, b.svc)
	}
	state.Canonicalize()
	slices.SortFunc(probs, compareProblems)
	probs = slices.CompactFunc(probs, func(a, b Problem) bool { return compareProblems(a, b) == 0 })
	return state, probs
}

// ownsService reports whether the Service's service-proxy-name label, if
// any, names this proxy. kube-proxy's informer selects only Services
// without the label.
func ownsService(cfg Config, svc *v1.Service) bool {
	name, labelled := svc.Labels[LabelServiceProxyName]
	if !labelled {
		return true
	}
	return cfg.ProxyName != "" && name == cfg.ProxyName
}

// compareServiceAge orders Services oldest first, then by namespace/name:
// the order in which conflicting frontends are granted.
func compareServiceAge(a, b *v1.Service) int {
	return cmp.Or(
		a.CreationTimestamp.Time.Compare(b.CreationTimestamp.Time),
		strings.Compare(a.Namespace, b.Namespace),
		strings.Compare(a.Name, b.Name),
		strings.Compare(string(a.UID), string(b.UID)),
		strings.Compare(a.ResourceVersion, b.ResourceVersion),
	)
}
