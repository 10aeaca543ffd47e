package translate

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/straitlb/strait/internal/parallel"
	"github.com/straitlb/strait/model"
)

// Tracker translates incrementally: it keeps the translation of every
// Service and, told which Services changed, translates only those again,
// then re-resolves the frontend conflicts they touch. What it returns is
// always exactly what Translate returns for the same objects (a property
// its tests check), at a cost proportional to the change.
//
// A Tracker is not safe for concurrent use. A State it returns is valid
// until the next Update or Reset: an Update that only changes services in
// place rewrites the elements of the previous State's slice (copying ten
// thousand services on every change would cost milliseconds of copying
// and garbage collection). Keep a copy of what must outlive a sync. The
// services' own slices are never modified.
type Tracker struct {
	cfg     Config
	entries map[types.NamespacedName]*trackEntry
	// claims are the claimants of every frontend key, across Services.
	claims map[model.FrontendKey][]claimRef
	// out is the output by model service; state is it, sorted.
	out   map[model.ServiceName]*model.Service
	state model.State
	// withProbs are the entries with problems.
	withProbs map[types.NamespacedName]*trackEntry
}

// trackEntry is one owned Service's translation.
type trackEntry struct {
	info *serviceInfo
	// built are its model services before conflict resolution, their
	// frontends deduplicated and every slice sorted.
	built []*builtService
	// probs are the Service's and its slices' problems; conflict
	// problems come from resolve.
	probs []Problem
	// conf are the frontend conflicts it lost, as of its last resolve.
	conf []Problem
	// names are the model services it currently outputs.
	names []model.ServiceName
}

type claimRef struct {
	b    *builtService
	kind model.FrontendKind
}

// NewTracker returns an empty Tracker; call Reset first.
func NewTracker() *Tracker {
	return &Tracker{
		entries:   make(map[types.NamespacedName]*trackEntry),
		claims:    make(map[model.FrontendKey][]claimRef),
		out:       make(map[model.ServiceName]*model.Service),
		withProbs: make(map[types.NamespacedName]*trackEntry),
	}
}

// Config returns the Config of the last Reset.
func (t *Tracker) Config() Config { return t.cfg }

// Reset translates every object anew under cfg, as Translate does.
func (t *Tracker) Reset(cfg Config, services []*v1.Service, endpointSlices []*discoveryv1.EndpointSlice) (model.State, []Problem) {
	t.cfg = cfg
	clear(t.entries)
	clear(t.claims)
	clear(t.out)
	clear(t.withProbs)
	bySvc := make(map[types.NamespacedName][]*discoveryv1.EndpointSlice)
	for _, s := range endpointSlices {
		if s == nil {
			continue
		}
		nn := types.NamespacedName{Namespace: s.Namespace, Name: s.Labels[discoveryv1.LabelServiceName]}
		bySvc[nn] = append(bySvc[nn], s)
	}
	// Keep one object per name, as Translate does, then translate the
	// Services on every CPU: they are independent until conflicts.
	pick := make(map[types.NamespacedName]*v1.Service, len(services))
	for _, svc := range services {
		if svc == nil {
			continue
		}
		nn := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
		if prev := pick[nn]; prev != nil && compareServiceAge(prev, svc) <= 0 {
			continue
		}
		pick[nn] = svc
	}
	todo := slices.Collect(maps.Values(pick))
	done := make([]*trackEntry, len(todo))
	parallel.For(len(todo), func(i int) {
		nn := types.NamespacedName{Namespace: todo[i].Namespace, Name: todo[i].Name}
		done[i] = t.translate(todo[i], bySvc[nn])
	})
	for _, e := range done {
		if e != nil {
			t.entries[e.info.name] = e
		}
	}
	for _, e := range t.entries {
		t.claim(e)
	}
	for _, e := range t.entries {
		t.resolve(e, nil)
	}
	t.state = model.State{Services: make([]model.Service, 0, len(t.out))}
	for _, s := range t.out {
		t.state.Services = append(t.state.Services, *s)
	}
	slices.SortFunc(t.state.Services, func(a, b model.Service) int { return a.Name.Compare(b.Name) })
	return t.state, t.Problems()
}

// Update translates again the Services named in changed (added, updated
// or deleted), reading each with get, which returns the Service (nil when
// it is gone) and the EndpointSlices labelled with its name. It returns
// the new State and the model services that differ from the previous
// State (added, updated or removed).
func (t *Tracker) Update(changed []types.NamespacedName,
	get func(types.NamespacedName) (*v1.Service, []*discoveryv1.EndpointSlice)) (model.State, []model.ServiceName) {
	affected := make(map[model.FrontendKey]struct{})
	redo := make(map[types.NamespacedName]*trackEntry)
	for _, nn := range changed {
		redo[nn] = nil
		if old := t.entries[nn]; old != nil {
			t.unclaim(old, affected)
			delete(t.entries, nn)
			delete(t.withProbs, nn)
			redo[nn] = old
		}
		svc, slices := get(nn)
		if svc == nil {
			continue
		}
		if e := t.translate(svc, slices); e != nil {
			t.entries[nn] = e
			t.claim(e)
			for _, b := range e.built {
				for _, f := range b.svc.Frontends {
					affected[f.Key()] = struct{}{}
				}
			}
		}
	}
	// Services whose conflicts may have changed resolve again.
	for k := range affected {
		for _, c := range t.claims[k] {
			nn := c.b.owner.name
			if _, ok := redo[nn]; !ok {
				redo[nn] = t.entries[nn]
			}
		}
	}
	diff := make(map[model.ServiceName]struct{})
	for nn, old := range redo {
		var oldNames []model.ServiceName
		if old != nil {
			oldNames = old.names
		}
		if e := t.entries[nn]; e != nil {
			t.resolve(e, diff)
		}
		for _, name := range oldNames {
			if e := t.entries[nn]; e == nil || !slices.Contains(e.names, name) {
				delete(t.out, name)
				diff[name] = struct{}{}
			}
		}
	}
	names := slices.SortedFunc(maps.Keys(diff), model.ServiceName.Compare)
	t.state = t.merge(names)
	return t.state, names
}

// merge returns the new sorted State: the previous one with the services
// named (sorted) replaced from t.out, added or removed. Replacements alone
// are made in place.
func (t *Tracker) merge(names []model.ServiceName) model.State {
	prev := t.state.Services
	byName := func(s model.Service, n model.ServiceName) int { return s.Name.Compare(n) }
	idx := make([]int, 0, len(names))
	for _, name := range names {
		i, found := slices.BinarySearchFunc(prev, name, byName)
		if _, ok := t.out[name]; !found || !ok {
			idx = nil
			break
		}
		idx = append(idx, i)
	}
	if idx != nil || len(names) == 0 {
		for k, i := range idx {
			prev[i] = *t.out[names[k]]
		}
		return t.state
	}
	next := make([]model.Service, 0, len(t.out))
	i := 0
	for _, name := range names {
		for i < len(prev) && prev[i].Name.Compare(name) < 0 {
			next = append(next, prev[i])
			i++
		}
		if i < len(prev) && prev[i].Name == name {
			i++
		}
		if s, ok := t.out[name]; ok {
			next = append(next, *s)
		}
	}
	next = append(next, prev[i:]...)
	return model.State{Services: next}
}

// Problems returns every current problem, sorted.
func (t *Tracker) Problems() []Problem {
	var out problems
	for _, e := range t.withProbs {
		out = append(out, e.probs...)
		out = append(out, e.conf...)
	}
	slices.SortFunc(out, compareProblems)
	return slices.CompactFunc(out, func(a, b Problem) bool { return compareProblems(a, b) == 0 })
}

// translate parses one Service and builds its model services; nil when
// it is not ours or not proxied.
func (t *Tracker) translate(svc *v1.Service, endpointSlices []*discoveryv1.EndpointSlice) *trackEntry {
	if !ownsService(t.cfg, svc) {
		return nil
	}
	var probs problems
	info := parseService(t.cfg, svc, &probs)
	if info == nil {
		if len(probs) > 0 {
			// Unproxyable, yet worth reporting: keep the problems.
			return &trackEntry{info: &serviceInfo{name: types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}, obj: svc}, probs: probs}
		}
		return nil
	}
	owned := map[types.NamespacedName]*serviceInfo{info.name: info}
	eps := collectEndpoints(t.cfg, owned, endpointSlices, &probs)
	built := buildService(t.cfg, info, eps)
	for _, b := range built {
		b.svc.Frontends = dedupeFrontends(b.svc.Frontends)
		b.svc.Canonicalize()
	}
	return &trackEntry{info: info, built: built, probs: probs}
}

func (t *Tracker) claim(e *trackEntry) {
	for _, b := range e.built {
		for _, f := range b.svc.Frontends {
			t.claims[f.Key()] = append(t.claims[f.Key()], claimRef{b, f.Kind})
		}
	}
}

func (t *Tracker) unclaim(e *trackEntry, affected map[model.FrontendKey]struct{}) {
	for _, b := range e.built {
		for _, f := range b.svc.Frontends {
			k := f.Key()
			affected[k] = struct{}{}
			cs := slices.DeleteFunc(t.claims[k], func(c claimRef) bool { return c.b == b })
			if len(cs) == 0 {
				delete(t.claims, k)
			} else {
				t.claims[k] = cs
			}
		}
	}
}

// winner is the claim that gets key k (see resolveConflicts).
func (t *Tracker) winner(k model.FrontendKey) claimRef {
	cs := t.claims[k]
	w := cs[0]
	for _, c := range cs[1:] {
		if cmp.Or(
			compareServiceAge(c.b.owner.obj, w.b.owner.obj),
			c.b.svc.Name.Compare(w.b.svc.Name),
			cmp.Compare(c.kind, w.kind),
		) < 0 {
			w = c
		}
	}
	return w
}

// resolve computes e's output from its built services and the winners of
// their frontends, recording in diff (when not nil) the names whose output
// changed.
func (t *Tracker) resolve(e *trackEntry, diff map[model.ServiceName]struct{}) {
	var names []model.ServiceName
	for _, b := range e.built {
		s := b.svc
		lost := 0
		for _, f := range b.svc.Frontends {
			if t.winner(f.Key()).b != b {
				lost++
			}
		}
		if lost > 0 {
			s.Frontends = make([]model.Frontend, 0, len(b.svc.Frontends)-lost)
			for _, f := range b.svc.Frontends {
				if t.winner(f.Key()).b == b {
					s.Frontends = append(s.Frontends, f)
				}
			}
		}
		if len(s.Frontends) == 0 {
			continue
		}
		if !slices.ContainsFunc(s.Frontends, func(f model.Frontend) bool { return f.Kind == model.LoadBalancer }) {
			s.SourceRanges = nil
		}
		names = append(names, s.Name)
		if prev, ok := t.out[s.Name]; ok && prev.Equal(&s) {
			continue
		}
		t.out[s.Name] = &s
		if diff != nil {
			diff[s.Name] = struct{}{}
		}
	}
	e.names = names
	var conf problems
	t.conflicts(e, &conf)
	e.conf = conf
	if len(e.probs) > 0 || len(e.conf) > 0 {
		t.withProbs[e.info.name] = e
	} else {
		delete(t.withProbs, e.info.name)
	}
}

// conflicts adds a Problem for every frontend e's services lost.
func (t *Tracker) conflicts(e *trackEntry, probs *problems) {
	for _, b := range e.built {
		for _, f := range b.svc.Frontends {
			w := t.winner(f.Key())
			if w.b == b {
				continue
			}
			probs.add(e.info.name, b.fields[f.Key()], fmt.Errorf(
				"%s frontend %s conflicts with %s frontend of %s, which wins (created earlier or sorts first)",
				f.Kind, f.Key(), w.kind, w.b.svc.Name))
		}
	}
}
