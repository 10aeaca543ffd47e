package proxier

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/clock"

	"github.com/straitlb/strait/controlplane/events"
	"github.com/straitlb/strait/controlplane/source"
	"github.com/straitlb/strait/model"
)

func serviceNames(s model.State) []string {
	var out []string
	for _, svc := range s.Services {
		out = append(out, svc.Name.String())
	}
	return out
}

func TestNothingAppliedBeforeSynced(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	e.start()

	// Periodic runs and explicit triggers do nothing before the source
	// has synced.
	for range 2 {
		e.waitIdle()
		e.clk.Step(DefaultSyncPeriod)
	}
	e.p.Trigger()
	e.noApply()
	if !e.health.Health().Healthy {
		t.Error("unhealthy while waiting for the source")
	}

	e.set(svc("web", "198.19.0.10"), slice("web-1", "web", "node-a", "198.18.0.1"))
	s := e.nextApply()
	if len(s.Services) != 1 || len(s.Services[0].Backends) != 1 || !s.Services[0].Backends[0].Local {
		t.Fatalf("first applied state = %+v, want web with one local backend", s)
	}
}

func TestBurstCollapses(t *testing.T) {
	e := newEnv(t, Config{MinSyncPeriod: time.Second}, nil)
	web := svc("web", "198.19.0.10")
	e.set(web, slice("web-1", "web", "node-a", "198.18.0.1"))
	e.start()
	e.nextApply()
	e.waitIdle()

	// 100 changes inside MinSyncPeriod.
	for i := 1; i <= 100; i++ {
		e.set(web, slice("web-1", "web", "node-a", podIPs(i)...))
	}
	if got := testutil.ToFloat64(e.m.PendingChanges); got != 1 {
		t.Errorf("pending changes = %v, want 1 (one object changed)", got)
	}
	e.noApply()
	e.clk.Step(time.Second)
	s := e.nextApply()
	if n := len(s.Services[0].Backends); n != 100 {
		t.Errorf("collapsed sync programmed %d backends, want the last state's 100", n)
	}
	e.waitIdle()
	e.noApply()
	if n := e.dp.count(); n != 2 {
		t.Errorf("%d Applies for 1 initial sync and a burst of 100 changes, want 2", n)
	}
	if got := testutil.ToFloat64(e.m.PendingChanges); got != 0 {
		t.Errorf("pending changes after the sync = %v", got)
	}
	if got := testutil.ToFloat64(e.m.BackendsProgrammed); got != 100 {
		t.Errorf("backends programmed = %v", got)
	}
	if got := e.histogram("strait_sync_duration_seconds").GetSampleCount(); got != 2 {
		t.Errorf("sync duration samples = %d, want 2", got)
	}
}

func TestRetryWithBackoffAfterApplyError(t *testing.T) {
	e := newEnv(t, Config{MinSyncPeriod: 500 * time.Millisecond, RetryInitial: time.Second}, nil)
	e.dp.failNext(errors.New("map full"), errors.New("map full"))
	e.clk.Step(10 * time.Second) // trigger times must follow the proxier's start
	e.start()
	e.set(svc("web", "198.19.0.10"), withTrigger(slice("web-1", "web", "node-a", "198.18.0.1"), t0.Add(5*time.Second)))

	e.nextApply() // fails at +10s: retry after 1s
	e.waitIdle()
	if got := testutil.ToFloat64(e.m.SyncErrors); got != 1 {
		t.Errorf("sync errors = %v, want 1", got)
	}
	e.clk.Step(999 * time.Millisecond)
	e.noApply()
	e.clk.Step(time.Millisecond)
	e.nextApply() // fails at +11s: retry after 2s
	e.waitIdle()
	e.clk.Step(time.Second)
	e.noApply()
	// Pending since +10s, 2s timeout: /healthz would answer 503 now.
	if e.health.Health().Healthy {
		t.Error("healthy although the dataplane has failed for 2s")
	}
	e.clk.Step(time.Second)
	e.nextApply() // succeeds at +13s
	e.waitIdle()
	if got := testutil.ToFloat64(e.m.SyncErrors); got != 2 {
		t.Errorf("sync errors = %v, want 2", got)
	}
	if !e.health.Health().Healthy {
		t.Error("unhealthy after a successful sync")
	}
	// The trigger time survived the failed syncs: measured once, 8s.
	h := e.histogram("strait_network_programming_duration_seconds")
	if h.GetSampleCount() != 1 || h.GetSampleSum() != 8 {
		t.Errorf("network programming latency: %d samples, sum %v; want 1, 8s", h.GetSampleCount(), h.GetSampleSum())
	}
	// Back to the periodic resync.
	e.clk.Step(DefaultSyncPeriod - time.Millisecond)
	e.noApply()
	e.clk.Step(time.Millisecond)
	e.nextApply()
}

func TestPeriodicResync(t *testing.T) {
	e := newEnv(t, Config{SyncPeriod: 10 * time.Second}, nil)
	e.set(svc("web", "198.19.0.10"))
	e.start()
	first := e.nextApply()
	for range 3 {
		e.waitIdle()
		e.clk.Step(9 * time.Second)
		e.noApply()
		e.clk.Step(time.Second)
		if s := e.nextApply(); strings.Join(serviceNames(s), ",") != strings.Join(serviceNames(first), ",") {
			t.Errorf("resync applied %v, want %v", serviceNames(s), serviceNames(first))
		}
	}
}

func TestProblemsAndFailuresBecomeEventsOnTheirService(t *testing.T) {
	e := newEnv(t, Config{SyncPeriod: 10 * time.Second, EventRepeatInterval: time.Minute}, nil)
	bad := svc("bad", "198.19.0.20", func(s *v1.Service) { s.Spec.ExternalIPs = []string{"not-an-ip"} })
	web := svc("web", "198.19.0.10")
	e.dp.failed = map[model.ServiceName]error{{Namespace: "default", Name: "web", Port: "http"}: errors.New("ring too big")}
	e.set(bad, web, slice("web-1", "web", "node-a", "198.18.0.1", "300.1.1.1"))
	e.start()

	s := e.nextApply()
	// One Service's problems keep no one out of the state.
	if got := strings.Join(serviceNames(s), ","); got != "default/bad:http,default/web:http" {
		t.Errorf("applied services = %s", got)
	}
	e.waitIdle()
	evs := e.rec.all()
	if len(evs) != 3 {
		t.Fatalf("events = %+v, want 3", evs)
	}
	find := func(reason, name string) event {
		t.Helper()
		for _, ev := range evs {
			if svc, ok := ev.regarding.(*v1.Service); ok && ev.reason == reason && svc.Name == name {
				return ev
			}
		}
		t.Fatalf("no %s event on Service %s in %+v", reason, name, evs)
		return event{}
	}
	ev := find(events.ReasonInvalidService, "bad")
	if ev.eventtype != v1.EventTypeWarning || ev.action != "Translate" || !strings.HasPrefix(ev.note, "spec.externalIPs[0]: ") ||
		ev.regarding.(*v1.Service).UID != "uid-bad" {
		t.Errorf("problem event = %+v", ev)
	}
	ev = find(events.ReasonInvalidService, "web")
	if !strings.HasPrefix(ev.note, "EndpointSlice web-1: endpoints[1].addresses[0]: ") {
		t.Errorf("endpointslice problem event = %+v", ev)
	}
	ev = find(events.ReasonProgrammingFailed, "web")
	if ev.action != "Program" || ev.note != "port http: ring too big" {
		t.Errorf("failure event = %+v", ev)
	}
	if got := testutil.ToFloat64(e.m.TranslateProblems); got != 2 {
		t.Errorf("translate problems gauge = %v", got)
	}

	// Persisting problems are not reported on every sync...
	e.clk.Step(10 * time.Second)
	e.nextApply()
	e.waitIdle()
	if n := len(e.rec.all()); n != 3 {
		t.Errorf("%d events after a resync with the same problems, want still 3", n)
	}
	// ...but again after EventRepeatInterval.
	for range 5 {
		e.clk.Step(10 * time.Second)
		e.nextApply()
		e.waitIdle()
	}
	if n := len(e.rec.all()); n != 6 {
		t.Errorf("%d events after EventRepeatInterval, want 6", n)
	}
}

func TestHealthCheckNodePorts(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	lb := svc("lb", "198.19.0.30", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = 30100
		s.Spec.Ports[0].NodePort = 30080
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "203.0.113.30"}}
	})
	other := svc("other", "198.19.0.31", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = 30101
	})
	e.svcHC.fail = map[types.NamespacedName]error{{Namespace: "default", Name: "other"}: errors.New("address already in use")}
	e.set(lb, other, slice("lb-1", "lb", "node-a", "198.18.0.1", "198.18.0.2"), slice("lb-2", "lb", "node-b", "198.18.0.3"))
	e.start()
	e.nextApply()
	e.waitIdle()

	e.svcHC.mu.Lock()
	ports, eps := e.svcHC.ports, e.svcHC.endpoints
	e.svcHC.mu.Unlock()
	lbName := types.NamespacedName{Namespace: "default", Name: "lb"}
	if len(ports) != 2 || ports[lbName] != 30100 {
		t.Errorf("health check ports = %v", ports)
	}
	if len(eps) != 1 || eps[lbName] != 2 {
		t.Errorf("local endpoints = %v, want default/lb: 2", eps)
	}
	var found bool
	for _, ev := range e.rec.all() {
		if ev.reason == events.ReasonFailedToStartServiceHealthcheck && ev.regarding.(*v1.Service).Name == "other" &&
			ev.note == `node node-a failed to start healthcheck "default/other" on port 30101: address already in use` {
			found = true
		}
	}
	if !found {
		t.Errorf("no healthcheck event for default/other in %+v", e.rec.all())
	}
}

func TestNodeAddressesAndNodePorts(t *testing.T) {
	np := func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = 30080
	}
	frontends := func(s model.State) []string {
		var out []string
		for _, f := range s.Services[0].Frontends {
			out = append(out, f.Kind.String()+" "+f.String())
		}
		slices.Sort(out)
		return out
	}
	n := node("node-a",
		v1.NodeAddress{Type: v1.NodeHostName, Address: "node-a"},
		v1.NodeAddress{Type: v1.NodeExternalIP, Address: "203.0.113.5"},
		v1.NodeAddress{Type: v1.NodeInternalIP, Address: "192.0.2.11"},
	)
	for name, tc := range map[string]struct {
		cfg  Config
		node bool
		want string
	}{
		"all node addresses": {Config{}, true,
			"ClusterIP 198.19.0.10:80/TCP,NodePort 192.0.2.11:30080/TCP,NodePort 203.0.113.5:30080/TCP"},
		"primary": {Config{NodePortAddresses: []string{"primary"}}, true,
			"ClusterIP 198.19.0.10:80/TCP,NodePort 192.0.2.11:30080/TCP"},
		"cidr": {Config{NodePortAddresses: []string{"203.0.113.0/24"}}, true,
			"ClusterIP 198.19.0.10:80/TCP,NodePort 203.0.113.5:30080/TCP"},
		"no node, configured IPs": {Config{NodeIPs: []netip.Addr{netip.MustParseAddr("192.0.2.99")}, NodePortAddresses: []string{"primary"}}, false,
			"ClusterIP 198.19.0.10:80/TCP,NodePort 192.0.2.99:30080/TCP"},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, tc.cfg, nil)
			if tc.node {
				e.set(svc("web", "198.19.0.10", np), n)
			} else {
				e.set(svc("web", "198.19.0.10", np))
			}
			e.start()
			if got := strings.Join(frontends(e.nextApply()), ","); got != tc.want {
				t.Errorf("frontends = %s\nwant        %s", got, tc.want)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	deps := Deps{Source: source.NewMemory(nil), Dataplane: newFakeDataplane()}
	for name, cfg := range map[string]Config{
		"no node":           {},
		"bad nodeport addr": {NodeName: "a", NodePortAddresses: []string{"eth0"}},
		"min > max":         {NodeName: "a", MinSyncPeriod: time.Minute, SyncPeriod: time.Second},
	} {
		if _, err := New(nil, cfg, deps); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	if _, err := New(nil, Config{NodeName: "a"}, Deps{}); err == nil {
		t.Error("New without source and dataplane succeeded")
	}
}

// TestKubernetesSource runs the proxier on the informer-backed source
// against a fake clientset: the first Apply already holds everything the
// API had, and later changes are programmed.
func TestKubernetesSource(t *testing.T) {
	client := fake.NewClientset(
		svc("web", "198.19.0.10"),
		slice("web-1", "web", "node-a", "198.18.0.1"),
		node("node-a", v1.NodeAddress{Type: v1.NodeInternalIP, Address: "192.0.2.11"}),
	)
	src, err := source.NewKubernetes(client, source.KubernetesConfig{NodeName: "node-a"}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Config{}, src)
	e.start()

	s := e.nextApply()
	if len(s.Services) != 1 || len(s.Services[0].Backends) != 1 {
		t.Fatalf("first Apply = %+v, want web with its backend", s)
	}
	if _, err := client.CoreV1().Services("default").Create(context.Background(), svc("dns", "198.19.0.53"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case s = <-e.dp.applied:
		case <-deadline:
			t.Fatal("the new Service was never programmed")
		}
		if len(s.Services) == 2 {
			break
		}
	}
	if got := strings.Join(serviceNames(s), ","); got != "default/dns:http,default/web:http" {
		t.Errorf("services = %s", got)
	}
}

// TestStandaloneFileSource runs the proxier on the file source: the same
// code path as Kubernetes mode after the source.
func TestStandaloneFileSource(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const web = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  clusterIP: 198.19.0.10\n  ports: [{name: http, port: 80, protocol: TCP}]\n"
	write("web.yaml", web)
	// The file source polls on its own (real) clock; the proxier's fake
	// clock stays with the sync loop alone.
	src, err := source.NewFile(source.FileConfig{Dir: dir, PollInterval: 5 * time.Millisecond}, clock.RealClock{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Config{}, src)
	e.start()
	if got := strings.Join(serviceNames(e.nextApply()), ","); got != "default/web:http" {
		t.Fatalf("first Apply = %s", got)
	}

	// A bad file changes nothing.
	write("dns.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: dns}\nspec: {clusterIP: 198.19.0.53, bogus: true}\n")
	deadline := time.Now().Add(10 * time.Second)
	for src.LastError() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the bad file was never read")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := src.LastError(); !strings.Contains(err.Error(), "dns.yaml") || !strings.Contains(err.Error(), `unknown field "spec.bogus"`) {
		t.Errorf("error = %v", err)
	}
	e.noApply()

	write("dns.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: dns}\nspec:\n  clusterIP: 198.19.0.53\n  ports: [{name: dns, port: 53, protocol: UDP}]\n")
	if got := strings.Join(serviceNames(e.nextApply()), ","); got != "default/dns:dns,default/web:http" {
		t.Errorf("Apply after the fix = %s", got)
	}
}
