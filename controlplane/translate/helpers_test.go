package translate

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/straitlb/strait/model"
)

const testNS = "default"

var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func testConfig() Config {
	return Config{
		NodeName:      "node-a",
		NodeLabels:    map[string]string{v1.LabelTopologyZone: "zone-a"},
		NodeAddresses: []netip.Addr{netip.MustParseAddr("192.168.0.10")},
		NodeIP:        netip.MustParseAddr("192.168.0.10"),
	}
}

// --- Services ---

type svcOpt func(*v1.Service)

// service builds a ClusterIP Service with one TCP port "http" 80 unless
// ports() says otherwise.
func service(name, clusterIP string, opts ...svcOpt) *v1.Service {
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: name, CreationTimestamp: metav1.NewTime(epoch)},
		Spec: v1.ServiceSpec{
			Type:      v1.ServiceTypeClusterIP,
			ClusterIP: clusterIP,
			Ports:     []v1.ServicePort{tcp("http", 80, 0)},
		},
	}
	if clusterIP != "" && clusterIP != v1.ClusterIPNone {
		s.Spec.ClusterIPs = []string{clusterIP}
		fam := v1.IPv4Protocol
		if strings.Contains(clusterIP, ":") {
			fam = v1.IPv6Protocol
		}
		s.Spec.IPFamilies = []v1.IPFamily{fam}
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func tcp(name string, port, nodePort int32) v1.ServicePort {
	return v1.ServicePort{Name: name, Port: port, NodePort: nodePort, Protocol: v1.ProtocolTCP}
}

func udp(name string, port, nodePort int32) v1.ServicePort {
	return v1.ServicePort{Name: name, Port: port, NodePort: nodePort, Protocol: v1.ProtocolUDP}
}

func ports(ps ...v1.ServicePort) svcOpt { return func(s *v1.Service) { s.Spec.Ports = ps } }
func typ(t v1.ServiceType) svcOpt       { return func(s *v1.Service) { s.Spec.Type = t } }
func inNS(ns string) svcOpt             { return func(s *v1.Service) { s.Namespace = ns } }
func created(sec int) svcOpt {
	return func(s *v1.Service) { s.CreationTimestamp = metav1.NewTime(epoch.Add(time.Duration(sec) * time.Second)) }
}
func svcLabel(k, v string) svcOpt {
	return func(s *v1.Service) {
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		s.Labels[k] = v
	}
}
func etpLocal() svcOpt {
	return func(s *v1.Service) { s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal }
}
func itpLocal() svcOpt {
	return func(s *v1.Service) {
		p := v1.ServiceInternalTrafficPolicyLocal
		s.Spec.InternalTrafficPolicy = &p
	}
}
func externalIPs(ips ...string) svcOpt { return func(s *v1.Service) { s.Spec.ExternalIPs = ips } }
func ingress(ips ...string) svcOpt {
	return func(s *v1.Service) {
		for _, ip := range ips {
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, v1.LoadBalancerIngress{IP: ip})
		}
	}
}
func ingressMode(ip string, mode v1.LoadBalancerIPMode) svcOpt {
	return func(s *v1.Service) {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, v1.LoadBalancerIngress{IP: ip, IPMode: &mode})
	}
}
func ingressHostname(h string) svcOpt {
	return func(s *v1.Service) {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, v1.LoadBalancerIngress{Hostname: h})
	}
}
func sourceRanges(r ...string) svcOpt {
	return func(s *v1.Service) { s.Spec.LoadBalancerSourceRanges = r }
}
func clientIPAffinity(timeout *int32) svcOpt {
	return func(s *v1.Service) {
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		if timeout != nil {
			s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: timeout}}
		}
	}
}
func families(fams []v1.IPFamily, ips ...string) svcOpt {
	return func(s *v1.Service) {
		s.Spec.IPFamilies, s.Spec.ClusterIPs, s.Spec.ClusterIP = fams, ips, ips[0]
	}
}
func noFamilies() svcOpt {
	return func(s *v1.Service) { s.Spec.IPFamilies, s.Spec.ClusterIPs = nil, nil }
}
func publishNotReady() svcOpt { return func(s *v1.Service) { s.Spec.PublishNotReadyAddresses = true } }
func trafficDistribution(d string) svcOpt {
	return func(s *v1.Service) { s.Spec.TrafficDistribution = &d }
}
func lb(s *v1.Service) { s.Spec.Type = v1.ServiceTypeLoadBalancer }
func np(s *v1.Service) { s.Spec.Type = v1.ServiceTypeNodePort }

// --- EndpointSlices ---

type sliceOpt func(*discoveryv1.EndpointSlice)

// slice builds an IPv4 EndpointSlice for service svc with one TCP port
// "http" 8080 unless sports() says otherwise.
func slice(svc, name string, opts ...sliceOpt) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: testNS, Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{eport("http", 8080, v1.ProtocolTCP)},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func eport(name string, port int32, proto v1.Protocol) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: &name, Port: &port, Protocol: &proto}
}
func sports(ps ...discoveryv1.EndpointPort) sliceOpt {
	return func(s *discoveryv1.EndpointSlice) { s.Ports = ps }
}
func addrType(t discoveryv1.AddressType) sliceOpt {
	return func(s *discoveryv1.EndpointSlice) { s.AddressType = t }
}
func sliceLabel(k, v string) sliceOpt {
	return func(s *discoveryv1.EndpointSlice) { s.Labels[k] = v }
}
func sliceNS(ns string) sliceOpt { return func(s *discoveryv1.EndpointSlice) { s.Namespace = ns } }
func eps(es ...discoveryv1.Endpoint) sliceOpt {
	return func(s *discoveryv1.EndpointSlice) { s.Endpoints = append(s.Endpoints, es...) }
}

type epOpt func(*discoveryv1.Endpoint)

// ep builds a ready endpoint on node ("" for none).
func ep(addr, node string, opts ...epOpt) discoveryv1.Endpoint {
	t := true
	f := false
	e := discoveryv1.Endpoint{
		Addresses:  []string{addr},
		Conditions: discoveryv1.EndpointConditions{Ready: &t, Serving: &t, Terminating: &f},
	}
	if node != "" {
		e.NodeName = &node
	}
	for _, o := range opts {
		o(&e)
	}
	return e
}

func notReady(e *discoveryv1.Endpoint) {
	f := false
	e.Conditions.Ready, e.Conditions.Serving = &f, &f
}

// terminating marks an endpoint terminating (and so not ready), serving or not.
func terminating(serving bool) epOpt {
	return func(e *discoveryv1.Endpoint) {
		t, f := true, false
		e.Conditions.Ready, e.Conditions.Terminating = &f, &t
		e.Conditions.Serving = &serving
	}
}
func nilConditions(e *discoveryv1.Endpoint) { e.Conditions = discoveryv1.EndpointConditions{} }
func zones(z ...string) epOpt {
	return func(e *discoveryv1.Endpoint) {
		if e.Hints == nil {
			e.Hints = &discoveryv1.EndpointHints{}
		}
		for _, n := range z {
			e.Hints.ForZones = append(e.Hints.ForZones, discoveryv1.ForZone{Name: n})
		}
	}
}
func nodes(ns ...string) epOpt {
	return func(e *discoveryv1.Endpoint) {
		if e.Hints == nil {
			e.Hints = &discoveryv1.EndpointHints{}
		}
		for _, n := range ns {
			e.Hints.ForNodes = append(e.Hints.ForNodes, discoveryv1.ForNode{Name: n})
		}
	}
}
func moreAddrs(a ...string) epOpt {
	return func(e *discoveryv1.Endpoint) { e.Addresses = append(e.Addresses, a...) }
}

// --- expected model ---

func name(svc, port string) model.ServiceName {
	return model.ServiceName{Namespace: testNS, Name: svc, Port: port}
}

func scoped(svc, port, scope string) model.ServiceName {
	return model.ServiceName{Namespace: testNS, Name: svc, Port: port, Scope: scope}
}

func fe(kind model.FrontendKind, addrPort string, proto model.Protocol) model.Frontend {
	ap := netip.MustParseAddrPort(addrPort)
	return model.Frontend{Addr: ap.Addr(), Port: ap.Port(), Proto: proto, Kind: kind}
}

func cip(addrPort string) model.Frontend { return fe(model.ClusterIP, addrPort, model.TCP) }

func be(addrPort string, local bool) model.Backend {
	ap := netip.MustParseAddrPort(addrPort)
	return model.Backend{Addr: ap.Addr(), Port: ap.Port(), Local: local}
}

func prefixes(ps ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ps))
	for i, p := range ps {
		out[i] = netip.MustParsePrefix(p)
	}
	return out
}

func i32(v int32) *int32 { return &v }

// formatState prints a state one service per line for test failures.
func formatState(s model.State) string {
	var b strings.Builder
	for _, svc := range s.Services {
		var fes []string
		for _, f := range svc.Frontends {
			fes = append(fes, f.Kind.String()+":"+f.String())
		}
		var bes []string
		for _, x := range svc.Backends {
			l := ""
			if x.Local {
				l = "(local)"
			}
			bes = append(bes, x.String()+l)
		}
		fmt.Fprintf(&b, "  %s fe=%v be=%v ifEmpty=%s aff=%s src=%v\n",
			svc.Name, fes, bes, svc.IfEmpty, svc.AffinityTimeout, svc.SourceRanges)
	}
	return b.String()
}
