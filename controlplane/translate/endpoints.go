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

	lists := make(map[portKey][]endpoint)
	for _, s := range ordered {
		svc := types.NamespacedName{Namespace: s.Namespace, Name: s.Labels[discoveryv1.LabelServiceName]}
		eps := sliceEndpoints(cfg, s, svc, probs)
		for i, p := range s.Ports {
			if p.Name == nil {
				probs.addSlice(svc, s.Name, fmt.Sprintf("ports[%d].name", i), errors.New("port has no name"))
				continue
			}
			if p.Port == nil || *p.Port < 1 || *p.Port > 65535 {
				err := errors.New("port is unset (all-ports endpoints are not supported)")
				if p.Port != nil {
					err = fmt.Errorf("port %d out of range [1, 65535]", *p.Port)
				}
				probs.addSlice(svc, s.Name, fmt.Sprintf("ports[%d].port", i), err)
				continue
			}
			proto := v1.ProtocolTCP
			if p.Protocol != nil && *p.Protocol != "" {
				proto = *p.Protocol
			}
			k := portKey{svc, *p.Name, proto}
			for _, ep := range eps {
				ep.port = uint16(*p.Port)
				lists[k] = append(lists[k], ep)
			}
		}
	}
	for k, list := range lists {
		lists[k] = dedupeEndpoints(list)
	}
	return lists
}

// dedupeEndpoints sorts list by key and keeps one endpoint per key: of the
// copies, in slice order, the last one not terminating, else the first.
func dedupeEndpoints(list []endpoint) []endpoint {
	slices.SortStableFunc(list, func(a, b endpoint) int { return a.key().Compare(b.key()) })
	out := list[:0]
	for i := 0; i < len(list); {
		j, keep := i+1, list[i]
		for ; j < len(list) && list[j].key() == list[i].key(); j++ {
			if !list[j].terminating {
				keep = list[j]
			}
		}
		out = append(out, keep)
		i = j
	}
	return out
}

// sliceEndpoints parses a slice's endpoints (without ports); bad ones are
// Problems and left out.
func sliceEndpoints(cfg Config, s *discoveryv1.EndpointSlice, svc types.NamespacedName, probs *problems) []endpoint {
	out := make([]endpoint, 0, len(s.Endpoints))
	for i, e := range s.Endpoints {
		if len(e.Addresses) == 0 {
			probs.addSlice(svc, s.Name, fmt.Sprintf("endpoints[%d].addresses", i), errors.New("endpoint has no address"))
			continue
		}
		a, err := parseIP(e.Addresses[0])
		if err != nil {
			probs.addSlice(svc, s.Name, fmt.Sprintf("endpoints[%d].addresses[0]", i), fmt.Errorf("parse endpoint address %q: %w", e.Addresses[0], err))
			continue
		}
		if familyOf(a) != cfg.family() {
			probs.addSlice(svc, s.Name, fmt.Sprintf("endpoints[%d].addresses[0]", i), fmt.Errorf("endpoint address %q is not of addressType %s", e.Addresses[0], s.AddressType))
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
