package integration

import (
	"context"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	v1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/straitlb/strait/controlplane/bgpconfig"
	"github.com/straitlb/strait/controlplane/events"
	"github.com/straitlb/strait/controlplane/lbipam"
	"github.com/straitlb/strait/internal/kubetest"
)

// applyLBIPAMDeploy creates the namespace and both RBAC files.
func applyLBIPAMDeploy(t *testing.T, c kubernetes.Interface) {
	t.Helper()
	var objs []runtime.Object
	for _, f := range []string{"namespace.yaml", "rbac.yaml", "rbac-lbipam.yaml"} {
		o, err := decodeFile(filepath.Join("..", "..", "deploy", f))
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o...)
	}
	if err := create(t.Context(), c, objs); err != nil {
		t.Fatal(err)
	}
}

// statusWrites counts PUTs to a status subresource made through a config.
func statusWrites(cfg *rest.Config, n *atomic.Int64) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/status") {
				n.Add(1)
			}
			return rt.RoundTrip(r)
		})
	})
	return cfg
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// startController runs a controller as the agent's ServiceAccount (so the
// test also proves rbac-lbipam.yaml suffices) until the returned cancel.
func startController(t *testing.T, cp *kubetest.ControlPlane, identity string, writes *atomic.Int64) (*lbipam.Controller, context.CancelFunc) {
	t.Helper()
	cfg := statusWrites(cp.ConfigAsServiceAccount(agentNS, agentSA), writes)
	client := kubernetes.NewForConfigOrDie(cfg)
	rec, err := events.NewKubernetes(client, "strait-lbipam")
	if err != nil {
		t.Fatal(err)
	}
	c, err := lbipam.New(lbipam.Config{
		Client: client, Dynamic: dynamic.NewForConfigOrDie(cfg), Identity: identity,
		LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 500 * time.Millisecond,
		Recorder: rec, Registry: prometheus.NewRegistry(), Logger: zaptest.NewLogger(t).Named(identity),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- rec.Run(ctx) }()
	go func() { done <- c.Run(ctx) }()
	stop := func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("%s: %v", identity, err)
			}
		}
	}
	var once atomic.Bool
	t.Cleanup(func() {
		if once.CompareAndSwap(false, true) {
			stop()
		}
	})
	return c, func() {
		if once.CompareAndSwap(false, true) {
			stop()
		}
	}
}

func lbService(name string, port int32, mut func(*v1.Service)) *v1.Service {
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: v1.ServiceSpec{Type: v1.ServiceTypeLoadBalancer,
			Ports: []v1.ServicePort{{Name: "p", Port: port, Protocol: v1.ProtocolTCP}}},
	}
	if mut != nil {
		mut(s)
	}
	return s
}

func ingress(t *testing.T, c kubernetes.Interface, name string) []string {
	t.Helper()
	s, err := c.CoreV1().Services("default").Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		return []string{"error: " + err.Error()}
	}
	var out []string
	for _, in := range s.Status.LoadBalancer.Ingress {
		out = append(out, in.IP)
	}
	return out
}

func waitIngress(t *testing.T, c kubernetes.Interface, name string, want ...string) {
	t.Helper()
	var got []string
	deadline := time.Now().Add(20 * time.Second)
	for {
		if got = ingress(t, c, name); slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("service %s: ingress %v, want %v", name, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The controller, running as the agent's ServiceAccount with leader
// election, writes status.loadBalancer.ingress; Services share an address
// by key; exhaustion gives an Event; deleting a Service or changing its
// type releases its address; other classes are left alone; pool status
// counts assignments.
func TestLBIPAMController(t *testing.T) {
	cp := kubetest.Start(t)
	dyn := installCRDs(t, cp)
	applyLBIPAMDeploy(t, cp.Client)
	ctx := t.Context()
	if _, err := applyCR(ctx, dyn, `{apiVersion: strait.io/v1alpha1, kind: LoadBalancerIPPool, metadata: {name: small}, spec: {ranges: ["203.0.113.1-203.0.113.2"]}}`); err != nil {
		t.Fatal(err)
	}
	var writes atomic.Int64
	ctrl, _ := startController(t, cp, "node-a", &writes)
	waitFor(t, 20*time.Second, "leadership", ctrl.IsLeader)

	svcs := cp.Client.CoreV1().Services("default")
	mk := func(s *v1.Service) {
		t.Helper()
		if _, err := svcs.Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	shared := func(s *v1.Service) { s.Annotations = map[string]string{lbipam.AnnotationAllowSharedIP: "k"} }
	mk(lbService("a", 80, shared))
	waitIngress(t, cp.Client, "a", "203.0.113.1")
	mk(lbService("b", 443, shared))
	waitIngress(t, cp.Client, "b", "203.0.113.1")
	mk(lbService("c", 80, nil))
	waitIngress(t, cp.Client, "c", "203.0.113.2")
	other := "example.com/other"
	mk(lbService("other-class", 80, func(s *v1.Service) { s.Spec.LoadBalancerClass = &other }))
	mk(lbService("full", 8080, nil))

	// Exhaustion: a Warning Event on the Service.
	waitFor(t, 20*time.Second, "PoolExhausted event", func() bool {
		evs, err := cp.Client.EventsV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "regarding.name=full"})
		return err == nil && slices.ContainsFunc(evs.Items, func(e eventsv1.Event) bool { return e.Reason == lbipam.ReasonExhausted })
	})
	if got := ingress(t, cp.Client, "full"); len(got) != 0 {
		t.Fatalf("exhausted Service got %v", got)
	}

	// Pool status.
	waitFor(t, 20*time.Second, "pool status", func() bool {
		u, err := dyn.Resource(bgpconfig.LoadBalancerIPPoolResource).Get(ctx, "small", metav1.GetOptions{})
		if err != nil {
			return false
		}
		p, err := bgpconfig.PoolFromUnstructured(u)
		return err == nil && p.Status.Assigned == 2 && p.Status.Available == 0
	})

	// Deleting c releases .2 for the waiting Service.
	if err := svcs.Delete(ctx, "c", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIngress(t, cp.Client, "full", "203.0.113.2")

	// a leaves type LoadBalancer: its status is cleared; b keeps the
	// shared address.
	a, err := svcs.Get(ctx, "a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a.Spec.Type = v1.ServiceTypeClusterIP
	if _, err := svcs.Update(ctx, a, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIngress(t, cp.Client, "a")
	waitIngress(t, cp.Client, "b", "203.0.113.1")
	if got := ingress(t, cp.Client, "other-class"); len(got) != 0 {
		t.Fatalf("Service of another class got %v", got)
	}

	// A requested address outside every pool: an Event, no address.
	mk(lbService("req", 80, func(s *v1.Service) {
		s.Annotations = map[string]string{lbipam.AnnotationLoadBalancerIPs: "198.51.100.1"}
	}))
	waitFor(t, 20*time.Second, "InvalidLoadBalancerRequest event", func() bool {
		evs, err := cp.Client.EventsV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "regarding.name=req"})
		return err == nil && slices.ContainsFunc(evs.Items, func(e eventsv1.Event) bool { return e.Reason == lbipam.ReasonInvalid })
	})
}

// Two controllers on one Lease: only the leader writes status; when it
// stops, the other takes over, keeps the existing assignments and
// allocates new Services.
func TestLBIPAMLeaderElection(t *testing.T) {
	cp := kubetest.Start(t)
	dyn := installCRDs(t, cp)
	applyLBIPAMDeploy(t, cp.Client)
	ctx := t.Context()
	if _, err := applyCR(ctx, dyn, `{apiVersion: strait.io/v1alpha1, kind: LoadBalancerIPPool, metadata: {name: p}, spec: {cidrs: ["203.0.113.0/29"]}}`); err != nil {
		t.Fatal(err)
	}
	var wa, wb atomic.Int64
	ca, stopA := startController(t, cp, "node-a", &wa)
	cb, stopB := startController(t, cp, "node-b", &wb)
	waitFor(t, 20*time.Second, "a leader", func() bool { return ca.IsLeader() || cb.IsLeader() })
	if ca.IsLeader() && cb.IsLeader() {
		t.Fatal("two leaders")
	}
	leader, follower, stopLeader, lw, fw := ca, cb, stopA, &wa, &wb
	if cb.IsLeader() {
		leader, follower, stopLeader, lw, fw = cb, ca, stopB, &wb, &wa
	}
	_ = leader
	svcs := cp.Client.CoreV1().Services("default")
	for _, n := range []string{"x", "y"} {
		if _, err := svcs.Create(ctx, lbService(n, 80, nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitIngress(t, cp.Client, "x", "203.0.113.0")
	waitIngress(t, cp.Client, "y", "203.0.113.1")
	if fw.Load() != 0 || lw.Load() == 0 {
		t.Fatalf("status writes: leader %d, follower %d", lw.Load(), fw.Load())
	}
	lease, err := cp.Client.CoordinationV1().Leases(agentNS).Get(ctx, lbipam.DefaultLeaseName, metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil {
		t.Fatalf("lease: %v %+v", err, lease)
	}

	// Failover: the leader stops (releasing the Lease).
	stopLeader()
	waitFor(t, 20*time.Second, "failover", follower.IsLeader)
	if _, err := svcs.Create(ctx, lbService("z", 80, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIngress(t, cp.Client, "z", "203.0.113.2")
	waitIngress(t, cp.Client, "x", "203.0.113.0")
	waitIngress(t, cp.Client, "y", "203.0.113.1")
}

// The agent's ServiceAccount, with rbac.yaml and rbac-lbipam.yaml, may do
// what the allocator needs and nothing more.
func TestLBIPAMRBACLeastPrivilege(t *testing.T) {
	cp := kubetest.Start(t)
	applyLBIPAMDeploy(t, cp.Client)
	user := kubetest.ServiceAccountUser(agentNS, agentSA)
	groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + agentNS, "system:authenticated"}
	type attr struct{ group, resource, sub, verb, ns, name string }
	can := func(a attr) bool {
		sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
			User: user, Groups: groups,
			ResourceAttributes: &authzv1.ResourceAttributes{Group: a.group, Resource: a.resource, Subresource: a.sub, Verb: a.verb, Namespace: a.ns, Name: a.name},
		}}
		r, err := cp.Client.AuthorizationV1().SubjectAccessReviews().Create(t.Context(), sar, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r.Status.Allowed
	}
	for _, a := range []attr{
		{"", "services", "status", "update", "default", "x"},
		{"", "namespaces", "", "list", "", ""}, {"", "namespaces", "", "watch", "", ""},
		{"strait.io", "loadbalancerippools", "", "list", "", ""}, {"strait.io", "loadbalancerippools", "", "watch", "", ""},
		{"strait.io", "loadbalancerippools", "status", "update", "", "p"},
		{"strait.io", "bgppeers", "", "watch", "", ""}, {"strait.io", "bgpadvertisements", "", "list", "", ""},
		{"coordination.k8s.io", "leases", "", "create", agentNS, ""},
		{"coordination.k8s.io", "leases", "", "get", agentNS, lbipam.DefaultLeaseName},
		{"coordination.k8s.io", "leases", "", "update", agentNS, lbipam.DefaultLeaseName},
		{"", "secrets", "", "get", agentNS, "bgp"}, {"", "secrets", "", "watch", agentNS, ""},
	} {
		if !can(a) {
			t.Errorf("agent cannot %+v, which it needs", a)
		}
	}
	for _, a := range []attr{
		{"", "secrets", "", "get", "default", "x"}, {"", "secrets", "", "list", "", ""},
		{"", "services", "", "update", "default", "x"}, {"", "services", "status", "patch", "default", "x"},
		{"", "services", "", "create", "default", ""}, {"", "namespaces", "", "update", "", "default"},
		{"strait.io", "loadbalancerippools", "", "create", "", ""}, {"strait.io", "loadbalancerippools", "", "update", "", "p"},
		{"strait.io", "loadbalancerippools", "", "delete", "", "p"}, {"strait.io", "bgppeers", "", "update", "", "p"},
		{"coordination.k8s.io", "leases", "", "update", agentNS, "other"},
		{"coordination.k8s.io", "leases", "", "create", "kube-system", ""},
		{"coordination.k8s.io", "leases", "", "delete", agentNS, lbipam.DefaultLeaseName},
		{"apiextensions.k8s.io", "customresourcedefinitions", "", "create", "", ""},
	} {
		if can(a) {
			t.Errorf("agent may %+v, which it does not need", a)
		}
	}
}
