package translate

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/straitlb/strait/model"
)

// claim is one model service's claim on a frontend.
type claim struct {
	b  *builtService
	fe model.Frontend
}

// resolveConflicts gives every frontend key to exactly one model service.
//
// Within one model service a repeated key (an externalIP listed twice, or
// also a LoadBalancer IP) is kept once, with the lowest Kind, so a
// LoadBalancer IP keeps its source ranges. Between model services,
// kube-proxy would program both and the last rule written wins; here the
// Service created first, then the lower namespace/name, then the lower
// port name and scope, then the lower Kind wins, and each loser gets a
// Problem. Model services left without frontends are dropped.
func resolveConflicts(built []*builtService, probs *problems) []*builtService {
	claims := make(map[model.FrontendKey][]claim)
	for _, b := range built {
		b.svc.Frontends = dedupeFrontends(b.svc.Frontends)
		for _, f := range b.svc.Frontends {
			claims[f.Key()] = append(claims[f.Key()], claim{b, f})
		}
	}

	lost := make(map[*builtService]map[model.FrontendKey]bool)
	for key, cs := range claims {
		if len(cs) < 2 {
			continue
		}
		slices.SortFunc(cs, func(x, y claim) int {
			return cmp.Or(
				compareServiceAge(x.b.owner.obj, y.b.owner.obj),
				x.b.svc.Name.Compare(y.b.svc.Name),
				cmp.Compare(x.fe.Kind, y.fe.Kind),
			)
		})
		winner := cs[0]
		for _, c := range cs[1:] {
			if lost[c.b] == nil {
				lost[c.b] = make(map[model.FrontendKey]bool)
			}
			lost[c.b][key] = true
			probs.add(c.b.owner.name, c.b.fields[key], fmt.Errorf(
				"%s frontend %s conflicts with %s frontend of %s, which wins (created earlier or sorts first)",
				c.fe.Kind, key, winner.fe.Kind, winner.b.svc.Name))
		}
	}

	out := built[:0]
	for _, b := range built {
		if l := lost[b]; l != nil {
			b.svc.Frontends = slices.DeleteFunc(b.svc.Frontends, func(f model.Frontend) bool { return l[f.Key()] })
		}
		if len(b.svc.Frontends) == 0 {
			continue
		}
		if !slices.ContainsFunc(b.svc.Frontends, func(f model.Frontend) bool { return f.Kind == model.LoadBalancer }) {
			b.svc.SourceRanges = nil
		}
		out = append(out, b)
	}
	return out
}

// dedupeFrontends keeps one frontend per key, the one with the lowest Kind.
func dedupeFrontends(fs []model.Frontend) []model.Frontend {
	slices.SortStableFunc(fs, func(a, b model.Frontend) int {
		return cmp.Or(a.Key().Compare(b.Key()), cmp.Compare(a.Kind, b.Kind))
	})
	return slices.CompactFunc(fs, func(a, b model.Frontend) bool { return a.Key() == b.Key() })
}
