package translate

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/straitlb/strait/model"
)

type testCase struct {
	name   string
	cfg    func(*Config)
	svcs   []*v1.Service
	slices []*discoveryv1.EndpointSlice
	want   []model.Service
	// problems are "SERVICE FIELD: substring" (or "SERVICE/SLICE FIELD:
	// substring"), in Translate's sorted order.
	problems []string
}

func allCases() []testCase {
	var all []testCase
	all = append(all, frontendCases...)
	all = append(all, portCases...)
	all = append(all, endpointCases...)
	all = append(all, policyCases...)
	all = append(all, topologyCases...)
	all = append(all, affinityAndRangeCases...)
	all = append(all, labelCases...)
	all = append(all, badInputCases...)
	return all
}

func TestTranslate(t *testing.T) {
	seen := map[string]bool{}
	for _, tc := range allCases() {
		if seen[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) { runCase(t, tc) })
	}
}

func runCase(t *testing.T, tc testCase) {
	t.Helper()
	cfg := testConfig()
	if tc.cfg != nil {
		tc.cfg(&cfg)
	}
	got, probs := Translate(cfg, tc.svcs, tc.slices)
	want := model.State{Services: tc.want}
	want.Canonicalize()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("state mismatch\ngot:\n%swant:\n%s", formatState(got), formatState(want))
	}
	if cfg.family() == v1.IPv4Protocol {
		for i := range got.Services {
			if err := got.Services[i].Validate(); err != nil {
				t.Errorf("output does not validate: %v", err)
			}
		}
	}
	checkProblems(t, probs, tc.problems)
}

func checkProblems(t *testing.T, got []Problem, want []string) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = matchProblem(got[i], want[i])
	}
	if !ok {
		var b strings.Builder
		for _, p := range got {
			fmt.Fprintf(&b, "  %s: %v\n", problemHead(p), p.Err)
		}
		t.Errorf("problems mismatch\ngot:\n%swant:\n  %s", b.String(), strings.Join(want, "\n  "))
	}
}

func problemHead(p Problem) string {
	obj := p.Service.Name
	if p.Slice != "" {
		obj += "/" + p.Slice
	}
	return obj + " " + p.Field
}

func matchProblem(p Problem, want string) bool {
	head, sub, _ := strings.Cut(want, ": ")
	return problemHead(p) == head && strings.Contains(p.Err.Error(), sub) && p.Error() != ""
}

// TestTranslateShuffle checks that input order does not matter.
func TestTranslateShuffle(t *testing.T) {
	for _, tc := range allCases() {
		cfg := testConfig()
		if tc.cfg != nil {
			tc.cfg(&cfg)
		}
		wantState, wantProbs := Translate(cfg, tc.svcs, tc.slices)
		rng := rand.New(rand.NewPCG(1, uint64(len(tc.name))))
		for range 20 {
			svcs := append([]*v1.Service(nil), tc.svcs...)
			sls := append([]*discoveryv1.EndpointSlice(nil), tc.slices...)
			rng.Shuffle(len(svcs), func(i, j int) { svcs[i], svcs[j] = svcs[j], svcs[i] })
			rng.Shuffle(len(sls), func(i, j int) { sls[i], sls[j] = sls[j], sls[i] })
			gotState, gotProbs := Translate(cfg, svcs, sls)
			if !reflect.DeepEqual(gotState, wantState) {
				t.Fatalf("%s: shuffled input gave another state:\n%s\nvs\n%s", tc.name, formatState(gotState), formatState(wantState))
			}
			if fmt.Sprint(gotProbs) != fmt.Sprint(wantProbs) {
				t.Fatalf("%s: shuffled input gave other problems:\n%v\nvs\n%v", tc.name, gotProbs, wantProbs)
			}
		}
	}
}

// TestTranslateBigShuffle shuffles every case's objects together (each
// case's objects in their own namespace) and compares with the union.
func TestTranslateBigShuffle(t *testing.T) {
	var svcs []*v1.Service
	var sls []*discoveryv1.EndpointSlice
	for i, tc := range allCases() {
		if tc.cfg != nil {
			continue
		}
		ns := fmt.Sprintf("case-%03d", i)
		for _, s := range tc.svcs {
			c := s.DeepCopy()
			c.Namespace = ns
			// Distinct clusterIPs/externalIPs could still collide between
			// cases; only the determinism is checked here.
			svcs = append(svcs, c)
		}
		for _, s := range tc.slices {
			c := s.DeepCopy()
			c.Namespace = ns
			sls = append(sls, c)
		}
	}
	cfg := testConfig()
	wantState, wantProbs := Translate(cfg, svcs, sls)
	if len(wantState.Services) == 0 {
		t.Fatal("no services")
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for range 10 {
		rng.Shuffle(len(svcs), func(i, j int) { svcs[i], svcs[j] = svcs[j], svcs[i] })
		rng.Shuffle(len(sls), func(i, j int) { sls[i], sls[j] = sls[j], sls[i] })
		gotState, gotProbs := Translate(cfg, svcs, sls)
		if !reflect.DeepEqual(gotState, wantState) {
			t.Fatal("shuffled input gave another state")
		}
		if fmt.Sprint(gotProbs) != fmt.Sprint(wantProbs) {
			t.Fatal("shuffled input gave other problems")
		}
	}
}

// TestTranslateDoesNotMutateInput guards the listers' shared objects.
func TestTranslateDoesNotMutateInput(t *testing.T) {
	for _, tc := range allCases() {
		var svcs []*v1.Service
		var sls []*discoveryv1.EndpointSlice
		for _, s := range tc.svcs {
			svcs = append(svcs, s.DeepCopy())
		}
		for _, s := range tc.slices {
			sls = append(sls, s.DeepCopy())
		}
		cfg := testConfig()
		if tc.cfg != nil {
			tc.cfg(&cfg)
		}
		Translate(cfg, svcs, sls)
		if !reflect.DeepEqual(svcs, tc.svcs) || !reflect.DeepEqual(sls, tc.slices) {
			t.Errorf("%s: input was modified", tc.name)
		}
	}
}

func TestTranslateNilInputs(t *testing.T) {
	st, probs := Translate(Config{}, []*v1.Service{nil}, []*discoveryv1.EndpointSlice{nil})
	if len(st.Services) != 0 || len(probs) != 0 {
		t.Fatalf("got %v %v", st, probs)
	}
}
