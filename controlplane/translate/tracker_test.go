package translate

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/straitlb/strait/model"
)

// world is a set of objects a random walk mutates.
type world struct {
	svcs   map[string]*v1.Service
	slices map[string]*discoveryv1.EndpointSlice
}

func (w *world) lists() ([]*v1.Service, []*discoveryv1.EndpointSlice) {
	return slices.Collect(maps.Values(w.svcs)), slices.Collect(maps.Values(w.slices))
}

func (w *world) get(nn types.NamespacedName) (*v1.Service, []*discoveryv1.EndpointSlice) {
	var out []*discoveryv1.EndpointSlice
	for _, s := range w.slices {
		if s.Namespace == nn.Namespace && s.Labels[discoveryv1.LabelServiceName] == nn.Name {
			out = append(out, s)
		}
	}
	return w.svcs[nn.Name], out
}

// randomService is one of a few shapes, with addresses from small pools so
// that frontends conflict now and then.
func randomService(r *rand.Rand, name string) *v1.Service {
	opts := []svcOpt{created(r.IntN(5))}
	switch r.IntN(6) {
	case 0:
		opts = append(opts, np, ports(tcp("http", 80, 30000+int32(r.IntN(3)))))
	case 1:
		opts = append(opts, lb, ingress(fmt.Sprintf("203.0.113.%d", r.IntN(3))), sourceRanges("198.51.100.0/24"))
	case 2:
		opts = append(opts, externalIPs(fmt.Sprintf("203.0.113.%d", r.IntN(3)), "bad-ip"))
	case 3:
		opts = append(opts, lb, etpLocal(), ingress(fmt.Sprintf("203.0.113.%d", r.IntN(3))), ports(tcp("http", 80, 30100), udp("dns", 53, 30101)))
	case 4:
		opts = append(opts, itpLocal())
	}
	if r.IntN(10) == 0 {
		opts = append(opts, svcLabel(LabelServiceProxyName, "other"))
	}
	return service(name, fmt.Sprintf("10.96.0.%d", r.IntN(8)), opts...)
}

func randomSlice(r *rand.Rand, svc, name string) *discoveryv1.EndpointSlice {
	var es []discoveryv1.Endpoint
	for range r.IntN(4) {
		node := []string{"node-a", "node-b"}[r.IntN(2)]
		var opts []epOpt
		if r.IntN(5) == 0 {
			opts = append(opts, terminating(r.IntN(2) == 0))
		}
		if r.IntN(4) == 0 {
			opts = append(opts, zones([]string{"zone-a", "zone-b"}[r.IntN(2)]))
		}
		es = append(es, ep(fmt.Sprintf("10.1.0.%d", r.IntN(12)), node, opts...))
	}
	if r.IntN(12) == 0 {
		es = append(es, ep("not-an-ip", "node-a"))
	}
	return slice(svc, name, sports(eport("http", 8080, v1.ProtocolTCP), eport("dns", 5353, v1.ProtocolUDP)), eps(es...))
}

// TestTrackerMatchesTranslate walks random changes through a Tracker and
// checks after each that its State and Problems equal Translate's over
// all objects, and that the names it reports changed are exactly the
// model services that differ from the previous State.
func TestTrackerMatchesTranslate(t *testing.T) {
	cfg := testConfig()
	var stats [3]int
	defer func() { t.Logf("changed names %d, problems %d, services %d", stats[0], stats[1], stats[2]) }()
	for seed := range uint64(30) {
		r := rand.New(rand.NewPCG(seed, 11))
		w := &world{svcs: map[string]*v1.Service{}, slices: map[string]*discoveryv1.EndpointSlice{}}
		tr := NewTracker()
		svcs, sls := w.lists()
		prev, _ := tr.Reset(cfg, svcs, sls)
		prev.Services = slices.Clone(prev.Services)
		for step := range 200 {
			changed := map[types.NamespacedName]bool{}
			for range 1 + r.IntN(3) {
				n := fmt.Sprintf("s%d", r.IntN(10))
				nn := types.NamespacedName{Namespace: testNS, Name: n}
				switch op := r.IntN(10); {
				case op < 3:
					w.svcs[n] = randomService(r, n)
				case op < 4:
					delete(w.svcs, n)
				case op < 8:
					sn := fmt.Sprintf("%s-%d", n, r.IntN(2))
					if old := w.slices[sn]; old != nil {
						// A slice relabelled to another Service
						// changes both.
						changed[types.NamespacedName{Namespace: testNS, Name: old.Labels[discoveryv1.LabelServiceName]}] = true
					}
					owner := n
					if r.IntN(8) == 0 {
						owner = fmt.Sprintf("s%d", r.IntN(10))
						changed[types.NamespacedName{Namespace: testNS, Name: owner}] = true
					}
					w.slices[sn] = randomSlice(r, owner, sn)
				default:
					sn := fmt.Sprintf("%s-%d", n, r.IntN(2))
					if old := w.slices[sn]; old != nil {
						changed[types.NamespacedName{Namespace: testNS, Name: old.Labels[discoveryv1.LabelServiceName]}] = true
					}
					delete(w.slices, sn)
				}
				changed[nn] = true
			}
			got, names := tr.Update(slices.Collect(maps.Keys(changed)), w.get)
			svcs, sls := w.lists()
			want, wantProbs := Translate(cfg, svcs, sls)
			if !reflect.DeepEqual(normalize(got), normalize(want)) {
				t.Fatalf("seed %d step %d: state differs\n got %v\nwant %v", seed, step, got, want)
			}
			if gp := tr.Problems(); !reflect.DeepEqual(problemStrings(gp), problemStrings(wantProbs)) {
				t.Fatalf("seed %d step %d: problems differ\n got %v\nwant %v", seed, step, problemStrings(gp), problemStrings(wantProbs))
			}
			if wantNames := changedNames(prev, got); !slices.Equal(names, wantNames) {
				t.Fatalf("seed %d step %d: changed %v, want %v", seed, step, names, wantNames)
			}
			// got is valid until the next Update: keep a copy.
			prev = model.State{Services: slices.Clone(got.Services)}
			stats[0] += len(names)
			stats[1] += len(wantProbs)
			stats[2] += len(got.Services)
		}
	}
}

// normalize makes empty and nil slices compare equal.
func normalize(s model.State) model.State {
	out := model.State{}
	for _, svc := range s.Services {
		c := svc
		if len(c.Backends) == 0 {
			c.Backends = nil
		}
		if len(c.SourceRanges) == 0 {
			c.SourceRanges = nil
		}
		out.Services = append(out.Services, c)
	}
	return out
}

func problemStrings(ps []Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Error())
	}
	return out
}

// changedNames are the model services added, removed or different.
func changedNames(a, b model.State) []model.ServiceName {
	diff := map[model.ServiceName]bool{}
	idx := map[model.ServiceName]*model.Service{}
	for i := range a.Services {
		idx[a.Services[i].Name] = &a.Services[i]
	}
	for i := range b.Services {
		s := &b.Services[i]
		if o, ok := idx[s.Name]; !ok || !o.Equal(s) {
			diff[s.Name] = true
		}
		delete(idx, s.Name)
	}
	for n := range idx {
		diff[n] = true
	}
	return slices.SortedFunc(maps.Keys(diff), model.ServiceName.Compare)
}
