package healthcheck

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

func newServiceHealth(t *testing.T) (*ServiceHealth, *ProxyHealth, *testingclock.FakeClock) {
	t.Helper()
	clk := testingclock.NewFakeClock(t0)
	ph, err := NewProxyHealth(ProxyHealthConfig{Timeout: time.Minute}, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	sh, err := NewServiceHealth(ServiceHealthConfig{}, ph, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	// Listen on a free loopback port instead of the node port itself.
	sh.listen = func(ctx context.Context, network, addr string) (net.Listener, error) {
		if _, port, _ := net.SplitHostPort(addr); port == "1" {
			return nil, errors.New("address already in use")
		}
		return (&net.ListenConfig{}).Listen(ctx, "tcp4", "127.0.0.1:0")
	}
	t.Cleanup(sh.Close)
	return sh, ph, clk
}

func fetch(t *testing.T, sh *ServiceHealth, nsn types.NamespacedName) (int, string, http.Header) {
	t.Helper()
	addrs := sh.Addrs(nsn)
	if len(addrs) != 1 {
		t.Fatalf("%s listens on %v, want one address", nsn, addrs)
	}
	resp, err := http.Get("http://" + addrs[0].String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body), resp.Header
}

func TestServiceHealthAnswers(t *testing.T) {
	sh, ph, clk := newServiceHealth(t)
	web := types.NamespacedName{Namespace: "default", Name: "web"}
	if errs := sh.SyncServices(map[types.NamespacedName]uint16{web: 30000}); errs != nil {
		t.Fatal(errs)
	}

	code, body, hdr := fetch(t, sh, web)
	want := "{\n\t\"service\": {\n\t\t\"namespace\": \"default\",\n\t\t\"name\": \"web\"\n\t},\n\t\"localEndpoints\": 0,\n\t\"serviceProxyHealthy\": true\n}"
	if code != 503 || body != want || hdr.Get("X-Load-Balancing-Endpoint-Weight") != "0" || hdr.Get("Content-Type") != "application/json" {
		t.Errorf("no endpoints: %d %q %v", code, body, hdr)
	}

	sh.SyncEndpoints(map[types.NamespacedName]int{web: 2, {Namespace: "x", Name: "unknown"}: 1})
	code, body, hdr = fetch(t, sh, web)
	want = "{\n\t\"service\": {\n\t\t\"namespace\": \"default\",\n\t\t\"name\": \"web\"\n\t},\n\t\"localEndpoints\": 2,\n\t\"serviceProxyHealthy\": true\n}"
	if code != 200 || body != want || hdr.Get("X-Load-Balancing-Endpoint-Weight") != "2" {
		t.Errorf("two endpoints: %d %q %v", code, body, hdr)
	}

	// An overdue proxier fails every service health check.
	ph.Updated()
	ph.QueuedUpdate()
	clk.Step(time.Minute)
	code, body, _ = fetch(t, sh, web)
	if code != 503 || body != ServiceBody(web, 2, false) {
		t.Errorf("unhealthy proxier: %d %q", code, body)
	}
	ph.Updated()

	// Not listed in SyncEndpoints: no endpoints.
	sh.SyncEndpoints(nil)
	if code, body, _ := fetch(t, sh, web); code != 503 || body != ServiceBody(web, 0, true) {
		t.Errorf("endpoints gone: %d %q", code, body)
	}
}

func TestServiceHealthSync(t *testing.T) {
	sh, _, _ := newServiceHealth(t)
	a := types.NamespacedName{Namespace: "default", Name: "a"}
	b := types.NamespacedName{Namespace: "default", Name: "b"}
	bad := types.NamespacedName{Namespace: "default", Name: "bad"}

	errs := sh.SyncServices(map[types.NamespacedName]uint16{a: 30001, b: 30002, bad: 1})
	if len(errs) != 1 || errs[bad] == nil {
		t.Fatalf("errors = %v, want one for %s", errs, bad)
	}
	// The failure of one service does not keep the others down.
	if code, _, _ := fetch(t, sh, a); code != 503 {
		t.Errorf("a: %d", code)
	}
	aAddr := sh.Addrs(a)[0].String()
	bAddr := sh.Addrs(b)[0].String()

	// Unchanged services keep their server; a new port reopens; removed
	// services close.
	errs = sh.SyncServices(map[types.NamespacedName]uint16{a: 30001, b: 30003})
	if errs != nil {
		t.Fatal(errs)
	}
	if got := sh.Addrs(a)[0].String(); got != aAddr {
		t.Errorf("unchanged service reopened: %s -> %s", aAddr, got)
	}
	if got := sh.Addrs(b)[0].String(); got == bAddr {
		t.Error("a service whose port changed was not reopened")
	}
	if _, err := http.Get("http://" + bAddr + "/"); err == nil {
		t.Error("the old server of b still answers")
	}
	sh.SyncServices(nil)
	if sh.Addrs(a) != nil {
		t.Error("a still open after removal")
	}
	if _, err := http.Get("http://" + aAddr + "/"); err == nil {
		t.Error("a still answers after removal")
	}
}

func TestServiceHealthRealListen(t *testing.T) {
	ph, err := NewProxyHealth(ProxyHealthConfig{Timeout: time.Minute}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	sh, err := NewServiceHealth(ServiceHealthConfig{Addresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}, ph, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	web := types.NamespacedName{Namespace: "default", Name: "web"}
	if errs := sh.SyncServices(map[types.NamespacedName]uint16{web: uint16(port)}); errs != nil {
		t.Skipf("port %d taken meanwhile: %v", port, errs)
	}
	sh.SyncEndpoints(map[types.NamespacedName]int{web: 1})
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/anything")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("status = %d", resp.StatusCode)
	}
}

func TestNodePortsAndLocalEndpoints(t *testing.T) {
	lb := func(name string, etp v1.ServiceExternalTrafficPolicy, hc int32, mutate ...func(*v1.Service)) *v1.Service {
		s := &v1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec: v1.ServiceSpec{
				Type: v1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: etp, HealthCheckNodePort: hc,
				ClusterIP: "198.19.0.10", Ports: []v1.ServicePort{{Name: "http", Port: 80}},
			},
		}
		for _, m := range mutate {
			m(s)
		}
		return s
	}
	services := []*v1.Service{
		lb("local", v1.ServiceExternalTrafficPolicyLocal, 30100),
		lb("cluster", v1.ServiceExternalTrafficPolicyCluster, 30101),
		lb("noport", v1.ServiceExternalTrafficPolicyLocal, 0),
		lb("other-proxy", v1.ServiceExternalTrafficPolicyLocal, 30102, func(s *v1.Service) {
			s.Labels = map[string]string{"service.kubernetes.io/service-proxy-name": "other"}
		}),
		lb("v6", v1.ServiceExternalTrafficPolicyLocal, 30103, func(s *v1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "fd00::10", []string{"fd00::10"}
		}),
		lb("dual", v1.ServiceExternalTrafficPolicyLocal, 30104, func(s *v1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "fd00::11", []string{"fd00::11", "198.19.0.11"}
		}),
		lb("noports", v1.ServiceExternalTrafficPolicyLocal, 30105, func(s *v1.Service) { s.Spec.Ports = nil }),
		lb("nodeport", v1.ServiceExternalTrafficPolicyLocal, 30106, func(s *v1.Service) { s.Spec.Type = v1.ServiceTypeNodePort }),
	}
	got := NodePorts(services, "", "")
	want := map[types.NamespacedName]uint16{{Namespace: "default", Name: "local"}: 30100, {Namespace: "default", Name: "dual"}: 30104}
	if len(got) != len(want) || got[types.NamespacedName{Namespace: "default", Name: "local"}] != 30100 || got[types.NamespacedName{Namespace: "default", Name: "dual"}] != 30104 {
		t.Errorf("NodePorts = %v, want %v", got, want)
	}
	if got := NodePorts(services, v1.IPv4Protocol, "other"); len(got) != 3 {
		t.Errorf("NodePorts as proxy other = %v, want other-proxy too", got)
	}

	ep := func(addr, node string, ready *bool) discoveryv1.Endpoint {
		e := discoveryv1.Endpoint{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: ready}}
		if node != "" {
			e.NodeName = ptr.To(node)
		}
		return e
	}
	port := []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}}
	mk := func(name, svc string, at discoveryv1.AddressType, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
			AddressType: at, Ports: ports, Endpoints: eps,
		}
	}
	slices := []*discoveryv1.EndpointSlice{
		mk("local-1", "local", discoveryv1.AddressTypeIPv4, port,
			ep("198.18.0.1", "node-a", nil),           // ready by default
			ep("198.18.0.2", "node-a", ptr.To(true)),  // ready
			ep("198.18.0.3", "node-a", ptr.To(false)), // not ready (terminating or not)
			ep("198.18.0.4", "node-b", ptr.To(true)),  // elsewhere
			ep("198.18.0.5", "", ptr.To(true))),       // no node
		mk("local-2", "local", discoveryv1.AddressTypeIPv4, port,
			ep("198.18.0.1", "node-a", ptr.To(true))), // same address in another slice counts once
		mk("noport", "other", discoveryv1.AddressTypeIPv4, nil, ep("198.18.0.9", "node-a", nil)),
		mk("v6", "other", discoveryv1.AddressTypeIPv6, port, ep("fd00::1", "node-a", nil)),
	}
	counts := LocalReadyEndpoints(slices, "node-a", "")
	if len(counts) != 1 || counts[types.NamespacedName{Namespace: "default", Name: "local"}] != 2 {
		t.Errorf("LocalReadyEndpoints = %v, want default/local: 2", counts)
	}
}
