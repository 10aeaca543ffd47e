package proxier

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap/zaptest"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/straitlb/strait/controlplane/healthcheck"
	"github.com/straitlb/strait/controlplane/metrics"
	"github.com/straitlb/strait/controlplane/source"
	"github.com/straitlb/strait/dataplane/program"
	"github.com/straitlb/strait/model"
)

var t0 = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

// fakeDataplane records every applied state. Results are scripted.
type fakeDataplane struct {
	mu      sync.Mutex
	states  []model.State
	errs    []error                     // results of the next Applies
	failed  map[model.ServiceName]error // reported in every Result
	applied chan model.State
	changes [][]model.ServiceName
}

func newFakeDataplane() *fakeDataplane {
	return &fakeDataplane{applied: make(chan model.State, 1000)}
}

func (d *fakeDataplane) Apply(s model.State) (program.Result, error) {
	d.mu.Lock()
	d.changes = append(d.changes, nil)
	d.mu.Unlock()
	return d.apply(s)
}

func (d *fakeDataplane) apply(s model.State) (program.Result, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.states = append(d.states, s)
	var err error
	if len(d.errs) > 0 {
		err, d.errs = d.errs[0], d.errs[1:]
	}
	res := program.Result{Failed: make(map[model.ServiceName]error)}
	for n, e := range d.failed {
		res.Failed[n] = e
	}
	res.Services = len(s.Services)
	for _, svc := range s.Services {
		res.Backends += len(svc.Backends)
	}
	d.applied <- s
	return res, err
}

// ApplyChanges records which services the proxier said changed (nil
// entries in changes mark full Applies) and applies the state.
func (d *fakeDataplane) ApplyChanges(s model.State, changed []model.ServiceName) (program.Result, error) {
	d.mu.Lock()
	if changed == nil {
		changed = []model.ServiceName{}
	}
	d.changes = append(d.changes, changed)
	d.mu.Unlock()
	return d.apply(s)
}

// changesOf returns what Apply i (from 0) was told changed: nil for a
// full Apply.
func (d *fakeDataplane) changesOf(i int) []model.ServiceName {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.changes[i]
}

func (d *fakeDataplane) failNext(errs ...error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.errs = append(d.errs, errs...)
}

func (d *fakeDataplane) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.states)
}

type event struct {
	regarding                       runtime.Object
	eventtype, reason, action, note string
}

type fakeRecorder struct {
	mu     sync.Mutex
	events []event
}

func (r *fakeRecorder) Eventf(regarding, _ runtime.Object, eventtype, reason, action, note string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, event{regarding, eventtype, reason, action, fmt.Sprintf(note, args...)})
}

func (r *fakeRecorder) all() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event(nil), r.events...)
}

type fakeServiceHealth struct {
	mu        sync.Mutex
	ports     map[types.NamespacedName]uint16
	endpoints map[types.NamespacedName]int
	fail      map[types.NamespacedName]error
	closed    bool
}

func (f *fakeServiceHealth) SyncServices(ports map[types.NamespacedName]uint16) map[types.NamespacedName]error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ports = ports
	var errs map[types.NamespacedName]error
	for nsn := range ports {
		if err := f.fail[nsn]; err != nil {
			if errs == nil {
				errs = make(map[types.NamespacedName]error)
			}
			errs[nsn] = err
		}
	}
	return errs
}

func (f *fakeServiceHealth) SyncEndpoints(eps map[types.NamespacedName]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.endpoints = eps
}

func (f *fakeServiceHealth) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
}

// env is a Proxier on a fake clock with fake collaborators.
type env struct {
	t      *testing.T
	clk    *testingclock.FakeClock
	src    source.Source
	mem    *source.Memory // src, when it is a Memory
	dp     *fakeDataplane
	rec    *fakeRecorder
	reg    *prometheus.Registry
	m      *metrics.Metrics
	health *healthcheck.ProxyHealth
	svcHC  *fakeServiceHealth
	p      *Proxier
	// applies counts the Applies nextApply has returned.
	applies int
}

func newEnv(t *testing.T, cfg Config, src source.Source) *env {
	t.Helper()
	e := &env{
		t:     t,
		clk:   testingclock.NewFakeClock(t0),
		src:   src,
		dp:    newFakeDataplane(),
		rec:   &fakeRecorder{},
		reg:   prometheus.NewRegistry(),
		svcHC: &fakeServiceHealth{},
	}
	if src == nil {
		e.mem = source.NewMemory(zaptest.NewLogger(t))
		e.src = e.mem
	}
	var err error
	if e.m, err = metrics.New(e.reg); err != nil {
		t.Fatal(err)
	}
	if e.health, err = healthcheck.NewProxyHealth(healthcheck.ProxyHealthConfig{Timeout: 2 * time.Second}, e.clk, e.m); err != nil {
		t.Fatal(err)
	}
	if cfg.NodeName == "" {
		cfg.NodeName = "node-a"
	}
	e.p, err = New(zaptest.NewLogger(t), cfg, Deps{
		Source: e.src, Dataplane: e.dp, Recorder: e.rec, Metrics: e.m,
		Health: e.health, ServiceHealth: e.svcHC, Clock: e.clk,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) start() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.p.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				e.t.Error(err)
			}
		case <-time.After(10 * time.Second):
			e.t.Error("Run did not return")
		}
	})
}

func (e *env) set(objs ...runtime.Object) {
	e.t.Helper()
	if err := e.mem.Set(objs); err != nil {
		e.t.Fatal(err)
	}
}

// nextApply waits for the next Apply.
func (e *env) nextApply() model.State {
	e.t.Helper()
	select {
	case s := <-e.dp.applied:
		e.applies++
		return s
	case <-time.After(10 * time.Second):
		e.t.Fatalf("timed out waiting for an Apply (%d so far)", e.dp.count())
	}
	return model.State{}
}

// noApply checks that no Apply happens for a while.
func (e *env) noApply() {
	e.t.Helper()
	select {
	case s := <-e.dp.applied:
		e.t.Fatalf("unexpected Apply of %d services", len(s.Services))
	case <-time.After(100 * time.Millisecond):
	}
}

// waitIdle waits until the sync loop has finished its run and armed its
// timer again (it is the only user of the fake clock's timers), so that
// stepping the clock is measured from the end of that run.
func (e *env) waitIdle() {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for e.clk.Waiters() != 1 {
		if time.Now().After(deadline) {
			e.t.Fatal("sync loop never went idle")
		}
		time.Sleep(time.Millisecond)
	}
}

func (e *env) histogram(name string) *dto.Histogram {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetHistogram()
		}
	}
	e.t.Fatalf("no metric %s", name)
	return nil
}

// Objects. Addresses: node 192.0.2.11, ClusterIPs 198.19.0.0/16, pods
// 198.18.0.0/16, LoadBalancer IPs 203.0.113.0/24.

func svc(name, clusterIP string, mutate ...func(*v1.Service)) *v1.Service {
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name),
			CreationTimestamp: metav1.NewTime(t0.Add(-time.Hour))},
		Spec: v1.ServiceSpec{
			Type:      v1.ServiceTypeClusterIP,
			ClusterIP: clusterIP, ClusterIPs: []string{clusterIP},
			Ports: []v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP}},
		},
	}
	for _, m := range mutate {
		m(s)
	}
	return s
}

// slice returns an EndpointSlice of svcName with ready endpoints at addrs
// on node, port http 8080.
func slice(name, svcName, node string, addrs ...string) *discoveryv1.EndpointSlice {
	eps := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: svcName}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(v1.ProtocolTCP)}},
	}
	for _, a := range addrs {
		eps.Endpoints = append(eps.Endpoints, discoveryv1.Endpoint{
			Addresses: []string{a}, NodeName: ptr.To(node),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
		})
	}
	return eps
}

func withTrigger(eps *discoveryv1.EndpointSlice, t time.Time) *discoveryv1.EndpointSlice {
	eps.Annotations = map[string]string{v1.EndpointsLastChangeTriggerTime: t.Format(time.RFC3339Nano)}
	return eps
}

func node(name string, addrs ...v1.NodeAddress) *v1.Node {
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"topology.kubernetes.io/zone": "z1"}},
		Status:     v1.NodeStatus{Addresses: addrs},
	}
}

func podIPs(n int) []string {
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, "198.18.0."+strconv.Itoa(i))
	}
	return out
}
