package translate

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/straitlb/strait/model"
)

// portKey joins EndpointSlice ports to Service ports, as kube-proxy's
// ServicePortName does: by Service, port name and protocol.
type portKey struct {
	svc   types.NamespacedName
	port  string
	proto v1.Protocol
}

// endpoint is kube-proxy's BaseEndpointInfo.
type endpoint struct {
	addr        netip.Addr
	port        uint16
	local       bool
	ready       bool
	serving     bool
	terminating bool
	zoneHints   []string // nil: no hint
	nodeHints   []string // nil: no hint
}

func (e endpoint) key() model.BackendKey { return model.BackendKey{Addr: e.addr, Port: e.port} }

func (e endpoint) backend() model.Backend {
	return model.Backend{Addr: e.addr, Port: e.port, Local: e.local}
}

// collectEndpoints groups the endpoints of the owned Services' slices by
// Service port, following kube-proxy's EndpointSliceCache: only slices of
// the family's address type (so never FQDN), not labelled headless, and
// joined to their Service by the kubernetes.io/service-name label; only
// the first address of an endpoint counts; a port without a name or a
// number is ignored; an endpoint seen twice is kept once, a
// non-terminating copy replacing a terminating one.
func collectEndpoints(cfg Config, owned map[types.NamespacedName]*serviceInfo, in []*discoveryv1.EndpointSlice, probs *problems) map[portKey][]endpoint {
	want := discoveryv1.AddressTypeIPv4
	if cfg.family() == v1.IPv6Protocol {
		want = discoveryv1.AddressTypeIPv6
	}
	var ordered []*discoveryv1.EndpointSlice
	for _, s := range in {
		if s == nil || s.AddressType != want {
			continue
		}
		if _, headless := s.Labels[LabelHeadless]; headless {
			continue
		}
		svc := s.Labels[discoveryv1.LabelServiceName]
		if svc == "" || owned[types.NamespacedName{Namespace: s.Namespace, Name: svc}] == nil {
			continue
		}
		ordered = append(ordered, s)
	}
	// kube-proxy walks slices in map order; a fixed order makes the
	// choice between duplicate endpoints deterministic.
	slices.SortFunc(ordered, func(a, b *discoveryv1.EndpointSlice) int {
		return cmp.Or(
			strings.Compare(a.Namespace, b.Namespace),
			strings.Compare(a.Name, b.Name),
			strings.Compare(string(a.UID), string(b.UID)),
			strings.Compare(a.ResourceVersion, b.ResourceVersion),
		)
	})

	sets := make(map[portKey]map[model.BackendKey]endpoint)
	for _, s := range ordered {
		svc := types.NamespacedName{Namespace: s.Namespace, Name: s.Labels[discoveryv1.LabelServiceName]}
		eps := sliceEndpoints(cfg, s, svc, probs)
		for i, p := range s.Ports {
			field := fmt.Sprintf("ports[%d]", i)
			if p.Name == nil {
				probs.addSlice(svc, s.Name, field+".name", errors.New("port has no name"))
				continue
			}
			if p.Port == nil || *p.Port < 1 || *p.Port > 65535 {
				err := errors.New("port is unset (all-ports endpoints are not supported)")
				if p.Port != nil {
					err = fmt.Errorf("port %d out of range [1, 65535]", *p.Port)
				}
				probs.addSlice(svc, s.Name, field+".port", err)
				continue
			}
			proto := v1.ProtocolTCP
			if p.Protocol != nil && *p.Protocol != "" {
				proto = *p.Protocol
			}
			k := portKey{svc, *p.Name, proto}
			set := sets[k]
			if set == nil {
				set = make(map[model.BackendKey]endpoint)
				sets[k] = set
			}
			for _, ep := range eps {
				ep.port = uint16(*p.Port)
				if _, exists := set[ep.key()]; !exists || !ep.terminating {
					set[ep.key()] = ep
				}
			}
		}
	}

	out := make(map[portKey][]endpoint, len(sets))
	for k, set := range sets {
		list := make([]endpoint, 0, len(set))
		for _, ep := range set {
			list = append(list, ep)
		}
		slices.SortFunc(list, func(a, b endpoint) int { return a.key().Compare(b.key()) })
		out[k] = list
	}
	return out
}

// sliceEndpoints parses a slice's endpoints (without ports); bad ones are
// Problems and left out.
func sliceEndpoints(cfg Config, s *discoveryv1.EndpointSlice, svc types.NamespacedName, probs *problems) []endpoint {
	var out []endpoint
	for i, e := range s.Endpoints {
		if len(e.Addresses) == 0 {
			probs.addSlice(svc, s.Name, fmt.Sprintf("endpoints[%d].addresses", i), errors.New("endpoint has no address"))
			continue
		}
		field := fmt.Sprintf("endpoints[%d].addresses[0]", i)
		a, err := parseIP(e.Addresses[0])
		if err != nil {
			probs.addSlice(svc, s.Name, field, fmt.Errorf("parse endpoint address %q: %w", e.Addresses[0], err))
			continue
		}
		if familyOf(a) != cfg.family() {
			probs.addSlice(svc, s.Name, field, fmt.Errorf("endpoint address %q is not of addressType %s", e.Addresses[0], s.AddressType))
			continue
		}
		c := e.Conditions
		ep := endpoint{
			addr:        a,
			local:       cfg.NodeName != "" && e.NodeName != nil && *e.NodeName == cfg.NodeName,
			ready:       c.Ready == nil || *c.Ready,
			serving:     c.Serving == nil || *c.Serving,
			terminating: c.Terminating != nil && *c.Terminating,
		}
		if h := e.Hints; h != nil {
			for _, z := range h.ForZones {
				ep.zoneHints = append(ep.zoneHints, z.Name)
			}
			for _, n := range h.ForNodes {
				ep.nodeHints = append(ep.nodeHints, n.Name)
			}
		}
		out = append(out, ep)
	}
	return out
}
