package translate

import (
	"slices"

	v1 "k8s.io/api/core/v1"

	"github.com/straitlb/strait/model"
)

// builtService is a model service with what conflict resolution needs.
type builtService struct {
	svc   model.Service
	owner *serviceInfo
	// fields maps each frontend to the field it came from.
	fields map[model.FrontendKey]string
}

func (b *builtService) addFrontend(f model.Frontend, field string) {
	b.svc.Frontends = append(b.svc.Frontends, f)
	if _, ok := b.fields[f.Key()]; !ok {
		b.fields[f.Key()] = field
	}
}

// buildService turns each port of the Service into one model service, or
// two (Scope internal and external) when the traffic policies give
// ClusterIP traffic and external traffic different backends.
func buildService(cfg Config, info *serviceInfo, eps map[portKey][]endpoint) []*builtService {
	zone := cfg.NodeLabels[v1.LabelTopologyZone]
	var out []*builtService
	for _, p := range info.ports {
		name := model.ServiceName{Namespace: info.name.Namespace, Name: info.name.Name, Port: p.name}

		internal := newBuilt(info, name)
		internal.addFrontend(model.Frontend{Addr: info.clusterIP.addr, Port: p.port, Proto: p.mproto, Kind: model.ClusterIP}, info.clusterIP.field)

		external := newBuilt(info, name)
		if p.nodePort != 0 {
			for _, a := range cfg.NodeAddresses {
				a = a.Unmap().WithZone("")
				if a.IsValid() && familyOf(a) == cfg.family() {
					external.addFrontend(model.Frontend{Addr: a, Port: p.nodePort, Proto: p.mproto, Kind: model.NodePort}, p.nodePortField)
				}
			}
		}
		for _, vip := range info.lbVIPs {
			external.addFrontend(model.Frontend{Addr: vip.addr, Port: p.port, Proto: p.mproto, Kind: model.LoadBalancer}, vip.field)
		}
		for _, eip := range info.externalIPs {
			external.addFrontend(model.Frontend{Addr: eip.addr, Port: p.port, Proto: p.mproto, Kind: model.ExternalIP}, eip.field)
		}
		if len(info.lbVIPs) > 0 {
			external.svc.SourceRanges = slices.Clone(info.sourceRanges)
		}

		externallyAccessible := p.nodePort != 0 || len(info.lbVIPs) > 0 || len(info.externalIPs) > 0
		usesCluster := !info.internalPolicyLocal || externallyAccessible
		usesLocal := info.internalPolicyLocal || (info.externalPolicyLocal && externallyAccessible)
		cat := categorize(eps[portKey{info.name, p.name, p.proto}], usesCluster, usesLocal, cfg.NodeName, zone)

		internal.svc.Backends = backends(cat.cluster)
		if info.internalPolicyLocal {
			internal.svc.Backends = backends(cat.local)
		}
		external.svc.Backends = backends(cat.cluster)
		if info.externalPolicyLocal {
			external.svc.Backends = backends(cat.local)
		}
		// With no usable endpoint anywhere kube-proxy rejects; with
		// some elsewhere but none for a Local policy it drops. IfEmpty
		// is left at its zero value when there are backends.
		if cat.hasAny {
			if len(internal.svc.Backends) == 0 {
				internal.svc.IfEmpty = model.Drop
			}
			if len(external.svc.Backends) == 0 {
				external.svc.IfEmpty = model.Drop
			}
		}

		switch {
		case len(external.svc.Frontends) == 0:
			out = append(out, internal)
		case slices.Equal(internal.svc.Backends, external.svc.Backends):
			for _, f := range external.svc.Frontends {
				internal.addFrontend(f, external.fields[f.Key()])
			}
			internal.svc.SourceRanges = external.svc.SourceRanges
			out = append(out, internal)
		default:
			internal.svc.Name.Scope = ScopeInternal
			external.svc.Name.Scope = ScopeExternal
			out = append(out, internal, external)
		}
	}
	return out
}

func newBuilt(info *serviceInfo, name model.ServiceName) *builtService {
	return &builtService{
		svc:    model.Service{Name: name, AffinityTimeout: info.affinity},
		owner:  info,
		fields: make(map[model.FrontendKey]string),
	}
}

// backends returns the model backends of eps, sorted by key (eps is).
func backends(eps []endpoint) []model.Backend {
	if len(eps) == 0 {
		return nil
	}
	out := make([]model.Backend, len(eps))
	for i, e := range eps {
		out[i] = e.backend()
	}
	return out
}
