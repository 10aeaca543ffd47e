package integration

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/straitlb/strait/controlplane/proxier"
	"github.com/straitlb/strait/controlplane/source"
	"github.com/straitlb/strait/dataplane/lbmap"
	"github.com/straitlb/strait/dataplane/loader/loadertest"
	"github.com/straitlb/strait/dataplane/program"
	"github.com/straitlb/strait/internal/kubetest"
	"github.com/straitlb/strait/model"
)

var update = flag.Bool("update", false, "rewrite golden files")

// NodeName is the node every scenario's agent runs as; scenarios declare
// it (and other nodes) as Node objects.
const NodeName = "node1"

// recorder is a Dataplane that tells when an Apply happened.
type recorder struct {
	inner *program.Programmer
	mu    sync.Mutex
	n     int
	last  program.Result
	err   error
	ch    chan struct{}
}

func (r *recorder) Apply(s model.State) (program.Result, error) {
	res, err := r.inner.Apply(s)
	r.mu.Lock()
	r.n++
	r.last, r.err = res, err
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default:
	}
	return res, err
}

func (r *recorder) waitApplies(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		r.mu.Lock()
		done := r.n >= n
		r.mu.Unlock()
		if done {
			return
		}
		select {
		case <-r.ch:
		case <-deadline:
			t.Fatalf("no sync after 30 s (wanted %d applies)", n)
		}
	}
}

// runAgent runs the proxier against the cluster, programming maps, until
// the test ends.
func runAgent(t *testing.T, cp *kubetest.ControlPlane, maps lbmap.Maps) *recorder {
	t.Helper()
	log := zaptest.NewLogger(t)
	prog, err := program.New(log, maps, program.Config{})
	if err != nil {
		t.Fatal(err)
	}
	src, err := source.NewKubernetes(cp.Client, source.KubernetesConfig{NodeName: NodeName}, log)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{inner: prog, ch: make(chan struct{}, 1)}
	p, err := proxier.New(log, proxier.Config{NodeName: NodeName}, proxier.Deps{Source: src, Dataplane: rec})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return rec
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if string(want) != got {
		t.Errorf("dump differs from %s (run with -update if intended)\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func scenarios(t *testing.T) []string {
	files, err := filepath.Glob("testdata/scenarios/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	return files
}

// runScenario creates a scenario's objects on a fresh apiserver, runs the
// agent over maps and compares the dump with the scenario's golden file.
func runScenario(t *testing.T, file string, maps lbmap.Maps) {
	cp := kubetest.Start(t)
	objs, err := decodeFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := create(ctx, cp.Client, objs); err != nil {
		t.Fatal(err)
	}
	rec := runAgent(t, cp, maps)
	rec.waitApplies(t, 1)
	rec.mu.Lock()
	res, aerr := rec.last, rec.err
	rec.mu.Unlock()
	if aerr != nil || len(res.Failed) > 0 {
		t.Fatalf("apply: %v %v", aerr, res.Failed)
	}
	dump, err := lbmap.Dump(maps)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, strings.TrimSuffix(file, ".yaml")+".golden", dump)
}

// Objects in, canonical dump of the in-memory maps out.
func TestScenariosFakeMaps(t *testing.T) {
	for _, f := range scenarios(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			runScenario(t, f, lbmap.NewFake(lbmap.DefaultCapacities))
		})
	}
}

// The same scenarios into real eBPF maps give the same dumps.
func TestPrivilegedScenariosRealMaps(t *testing.T) {
	if *update {
		t.Skip("golden files are written from the fake maps")
	}
	for _, f := range scenarios(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			d := loadertest.Load(t, loadertest.PinDir(t))
			runScenario(t, f, d.Maps)
		})
	}
}
