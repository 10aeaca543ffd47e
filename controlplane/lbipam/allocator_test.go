package lbipam

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/straitlb/strait/controlplane/bgpconfig"
)

func pool(t *testing.T, name string, ranges ...string) bgpconfig.Pool {
	t.Helper()
	p := bgpconfig.Pool{Name: name, AutoAssign: true}
	for _, r := range ranges {
		rr, err := bgpconfig.ParseRange(r)
		if err != nil {
			t.Fatal(err)
		}
		p.Ranges = append(p.Ranges, rr)
	}
	return p
}

func svc(name string, ports ...int32) Service {
	s := Service{Key: types.NamespacedName{Namespace: "ns", Name: name}}
	for _, p := range ports {
		s.Ports = append(s.Ports, Port{Protocol: v1.ProtocolTCP, Port: p})
	}
	return s
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func mustAssign(t *testing.T, a *Allocator, s Service, want ...string) {
	t.Helper()
	got, err := a.Assign(s)
	if err != nil {
		t.Fatalf("assign %s: %v", s.Key, err)
	}
	if !slices.Equal(got, addrs(want...)) {
		t.Fatalf("assign %s: got %v, want %v", s.Key, got, want)
	}
}

func wantReason(t *testing.T, err error, reason string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Reason != reason {
		t.Fatalf("got error %v, want reason %s", err, reason)
	}
}

// Lowest free address first; Assign is idempotent; exhaustion is an error
// and a release frees the address for the next Service.
func TestAllocateExhaustRelease(t *testing.T) {
	a := NewAllocator([]bgpconfig.Pool{pool(t, "p", "10.0.0.1-10.0.0.2")})
	mustAssign(t, a, svc("a"), "10.0.0.1")
	mustAssign(t, a, svc("a"), "10.0.0.1")
	mustAssign(t, a, svc("b"), "10.0.0.2")
	_, err := a.Assign(svc("c"))
	wantReason(t, err, ReasonExhausted)
	if got := a.Release(svc("a").Key); !slices.Equal(got, addrs("10.0.0.1")) {
		t.Fatalf("released %v", got)
	}
	mustAssign(t, a, svc("c"), "10.0.0.1")
	if st := a.Stats(); st[0].Assigned != 2 || st[0].Available != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// avoidBuggyIPs skips .0 and .255; capacity excludes them.
func TestAvoidBuggyIPs(t *testing.T) {
	p := pool(t, "p", "10.0.0.255-10.0.1.1")
	p.AvoidBuggyIPs = true
	a := NewAllocator([]bgpconfig.Pool{p})
	mustAssign(t, a, svc("a"), "10.0.1.1")
	if st := a.Stats(); st[0].Available != 0 || st[0].Assigned != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// Requested addresses come from any pool (autoAssign or not); a taken one
// is a conflict; one in no pool is invalid.
func TestRequestedIP(t *testing.T) {
	manual := pool(t, "manual", "192.0.2.0-192.0.2.9")
	manual.AutoAssign = false
	a := NewAllocator([]bgpconfig.Pool{pool(t, "auto", "10.0.0.0-10.0.0.9"), manual})
	s := svc("a")
	s.RequestedIPs = addrs("192.0.2.7")
	mustAssign(t, a, s, "192.0.2.7")
	s2 := svc("b")
	s2.RequestedIPs = addrs("192.0.2.7")
	_, err := a.Assign(s2)
	wantReason(t, err, ReasonConflict)
	s2.RequestedIPs = addrs("198.51.100.1")
	_, err = a.Assign(s2)
	wantReason(t, err, ReasonInvalid)
	// A changed request moves the Service.
	s.RequestedIPs = addrs("192.0.2.8")
	mustAssign(t, a, s, "192.0.2.8")
	// Non-autoAssign pools are not used without a request.
	mustAssign(t, a, svc("c"), "10.0.0.0")
}

// A requested pool may be non-autoAssign; an unknown pool is invalid; a
// requested address outside the requested pool is invalid.
func TestRequestedPool(t *testing.T) {
	manual := pool(t, "manual", "192.0.2.0-192.0.2.9")
	manual.AutoAssign = false
	a := NewAllocator([]bgpconfig.Pool{pool(t, "auto", "10.0.0.0-10.0.0.9"), manual})
	s := svc("a")
	s.Pool = "manual"
	mustAssign(t, a, s, "192.0.2.0")
	s.Pool = "nope"
	_, err := a.Assign(s)
	wantReason(t, err, ReasonInvalid)
	s.Pool, s.RequestedIPs = "auto", addrs("192.0.2.5")
	_, err = a.Assign(s)
	wantReason(t, err, ReasonInvalid)
}

// Services with the same sharing key share an address when their ports do
// not clash; a clash or another key gets another address; a request for a
// shared address with a different key is a conflict.
func TestSharing(t *testing.T) {
	a := NewAllocator([]bgpconfig.Pool{pool(t, "p", "10.0.0.1-10.0.0.3")})
	s1, s2, s3, s4 := svc("a", 80), svc("b", 443), svc("c", 80), svc("d", 22)
	s1.SharingKey, s2.SharingKey, s3.SharingKey = "k", "k", "k"
	mustAssign(t, a, s1, "10.0.0.1")
	mustAssign(t, a, s2, "10.0.0.1")
	mustAssign(t, a, s3, "10.0.0.2") // port 80 clashes with a
	mustAssign(t, a, s4, "10.0.0.3") // no key: never shared
	s5 := svc("e", 8080)
	s5.SharingKey, s5.RequestedIPs = "other", addrs("10.0.0.1")
	_, err := a.Assign(s5)
	wantReason(t, err, ReasonConflict)
	s5.SharingKey = "k"
	mustAssign(t, a, s5, "10.0.0.1")
	// Releasing one holder keeps the address for the others.
	a.Release(s1.Key)
	if st := a.Stats(); st[0].Assigned != 3 {
		t.Fatalf("stats %+v", st)
	}
	// A port change that clashes moves the Service.
	s2.Ports = []Port{{Protocol: v1.ProtocolTCP, Port: 8080}}
	if got, err := a.Assign(s2); err == nil && slices.Equal(got, addrs("10.0.0.1")) {
		t.Fatalf("clashing port kept the shared address")
	}
	// UDP and TCP on the same port do not clash.
	s6 := svc("f")
	s6.SharingKey, s6.Ports = "k", []Port{{Protocol: v1.ProtocolUDP, Port: 8080}}
	s6.RequestedIPs = addrs("10.0.0.1")
	mustAssign(t, a, s6, "10.0.0.1")
}

// Restore claims status addresses before anything is allocated, so a
// restart never moves a working address, even one a new Service would
// otherwise get first; invalid status addresses are replaced.
func TestRestore(t *testing.T) {
	a := NewAllocator([]bgpconfig.Pool{pool(t, "p", "10.0.0.1-10.0.0.3")})
	old := svc("old")
	old.Current = addrs("10.0.0.1")
	stale := svc("stale")
	stale.Current = addrs("203.0.113.1") // in no pool
	if !a.Restore(old) || a.Restore(stale) {
		t.Fatal("restore")
	}
	mustAssign(t, a, svc("new"), "10.0.0.2")
	mustAssign(t, a, old, "10.0.0.1")
	mustAssign(t, a, stale, "10.0.0.3")
	// Two Services claiming the same address: the first restored wins.
	b := NewAllocator([]bgpconfig.Pool{pool(t, "p", "10.0.0.1-10.0.0.3")})
	x, y := svc("x"), svc("y")
	x.Current, y.Current = addrs("10.0.0.1"), addrs("10.0.0.1")
	if !b.Restore(x) || b.Restore(y) {
		t.Fatal("restore conflict")
	}
	mustAssign(t, b, y, "10.0.0.2")
}

// Selectors restrict pools; a pool that stops selecting a Service (or
// disappears) moves it on its next Assign.
func TestSelectorsAndPoolChanges(t *testing.T) {
	sel, _ := metav1.LabelSelectorAsSelector(&metav1.LabelSelector{MatchLabels: map[string]string{"tier": "web"}})
	nsSel, _ := metav1.LabelSelectorAsSelector(&metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}})
	web := pool(t, "a-web", "10.0.0.1-10.0.0.1")
	web.ServiceSelector = sel
	prod := pool(t, "b-prod", "10.0.1.1-10.0.1.1")
	prod.NamespaceSelector = nsSel
	any := pool(t, "c-any", "10.0.2.1-10.0.2.9")
	a := NewAllocator([]bgpconfig.Pool{web, prod, any})
	s := svc("a")
	s.Labels, s.NamespaceLabels = map[string]string{"tier": "web"}, map[string]string{"env": "prod"}
	mustAssign(t, a, s, "10.0.0.1")
	s2 := svc("b")
	s2.NamespaceLabels = map[string]string{"env": "prod"}
	mustAssign(t, a, s2, "10.0.1.1")
	mustAssign(t, a, svc("c"), "10.0.2.1")
	// The label goes: s moves.
	s.Labels = nil
	mustAssign(t, a, s, "10.0.2.2")
	// No pool at all.
	only := pool(t, "only", "10.9.0.1-10.9.0.1")
	only.ServiceSelector = labels.Nothing()
	b := NewAllocator([]bgpconfig.Pool{only})
	_, err := b.Assign(svc("x"))
	wantReason(t, err, ReasonNoPool)
	// Pool removed: the address is in no pool and moves.
	a.SetPools([]bgpconfig.Pool{any})
	s2.Current = addrs("10.0.1.1")
	mustAssign(t, a, s2, "10.0.2.3")
}

// Dual-stack: RequireDualStack needs both families, PreferDualStack takes
// what there is.
func TestFamilies(t *testing.T) {
	a := NewAllocator([]bgpconfig.Pool{pool(t, "v4", "10.0.0.1-10.0.0.9"), pool(t, "v6", "2001:db8::1-2001:db8::9")})
	s := svc("a")
	s.Families, s.RequireAllFamilies = []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}, true
	mustAssign(t, a, s, "10.0.0.1", "2001:db8::1")
	b := NewAllocator([]bgpconfig.Pool{pool(t, "v4", "10.0.0.1-10.0.0.9")})
	_, err := b.Assign(s)
	wantReason(t, err, ReasonNoPool)
	if got := b.Assigned(s.Key); got != nil {
		t.Fatalf("failed Service holds %v", got)
	}
	s.RequireAllFamilies = false
	mustAssign(t, b, s, "10.0.0.1")
}

func kubeSvc(mut func(*v1.Service)) *v1.Service {
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s"},
		Spec: v1.ServiceSpec{Type: v1.ServiceTypeLoadBalancer, Ports: []v1.ServicePort{{Port: 80}},
			IPFamilies: []v1.IPFamily{v1.IPv4Protocol}},
	}
	mut(s)
	return s
}

// Only LoadBalancer Services of no class or Strait's class are wanted.
func TestClassFilter(t *testing.T) {
	other, ours := "example.com/lb", DefaultClass
	for _, c := range []struct {
		svc  *v1.Service
		f    ClassFilter
		want bool
	}{
		{kubeSvc(func(*v1.Service) {}), ClassFilter{}, true},
		{kubeSvc(func(*v1.Service) {}), ClassFilter{IgnoreUnset: true}, false},
		{kubeSvc(func(s *v1.Service) { s.Spec.LoadBalancerClass = &ours }), ClassFilter{IgnoreUnset: true}, true},
		{kubeSvc(func(s *v1.Service) { s.Spec.LoadBalancerClass = &other }), ClassFilter{}, false},
		{kubeSvc(func(s *v1.Service) { s.Spec.Type = v1.ServiceTypeClusterIP }), ClassFilter{}, false},
	} {
		if got := c.f.Wants(c.svc); got != c.want {
			t.Errorf("%+v %v: got %v", c.f, c.svc.Spec, got)
		}
	}
}

// Annotations and the deprecated field are read; bad requests are errors.
func TestServiceFromKube(t *testing.T) {
	s, err := ServiceFromKube(kubeSvc(func(s *v1.Service) {
		s.Annotations = map[string]string{AnnotationLoadBalancerIPs: "203.0.113.7, 2001:db8::7", AnnotationAddressPool: "p", AnnotationAllowSharedIP: "k"}
		s.Spec.LoadBalancerIP = "198.51.100.1"
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "203.0.113.7"}, {Hostname: "x"}}
	}), nil)
	if err != nil || !slices.Equal(s.RequestedIPs, addrs("203.0.113.7", "2001:db8::7")) || s.Pool != "p" || s.SharingKey != "k" ||
		!slices.Equal(s.Current, addrs("203.0.113.7")) || !slices.Equal(s.Ports, []Port{{v1.ProtocolTCP, 80}}) {
		t.Fatalf("%+v %v", s, err)
	}
	s, err = ServiceFromKube(kubeSvc(func(s *v1.Service) { s.Spec.LoadBalancerIP = "198.51.100.1" }), nil)
	if err != nil || !slices.Equal(s.RequestedIPs, addrs("198.51.100.1")) {
		t.Fatalf("%+v %v", s, err)
	}
	for _, bad := range []string{"nope", "10.0.0.1,10.0.0.2", "::"} {
		_, err = ServiceFromKube(kubeSvc(func(s *v1.Service) { s.Annotations = map[string]string{AnnotationLoadBalancerIPs: bad} }), nil)
		wantReason(t, err, ReasonInvalid)
	}
}
