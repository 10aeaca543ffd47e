package translate

import (
	"net/netip"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/straitlb/strait/model"
)

const webIP = "10.96.0.10"

// webSlice is the usual slice for Service "web": one ready endpoint on
// another node.
func webSlice() *discoveryv1.EndpointSlice {
	return slice("web", "web-1", eps(ep("10.0.1.1", "node-b")))
}

var webBackends = []model.Backend{be("10.0.1.1:8080", false)}

var frontendCases = []testCase{
	{
		name:   "ClusterIP: basic service with local and remote endpoints",
		svcs:   []*v1.Service{service("web", webIP)},
		slices: []*discoveryv1.EndpointSlice{slice("web", "web-1", eps(ep("10.0.1.1", "node-b"), ep("10.0.1.2", "node-a")))},
		want: []model.Service{{
			Name:      name("web", "http"),
			Frontends: []model.Frontend{cip("10.96.0.10:80")},
			Backends:  []model.Backend{be("10.0.1.1:8080", false), be("10.0.1.2:8080", true)},
		}},
	},
	{
		name:   "Headless: clusterIP None gets nothing",
		svcs:   []*v1.Service{service("web", v1.ClusterIPNone)},
		slices: []*discoveryv1.EndpointSlice{webSlice()},
	},
	{
		name: "Headless: empty clusterIP gets nothing",
		svcs: []*v1.Service{service("web", "")},
	},
	{
		name:   "ExternalName gets nothing even with a clusterIP",
		svcs:   []*v1.Service{service("web", webIP, typ(v1.ServiceTypeExternalName))},
		slices: []*discoveryv1.EndpointSlice{webSlice()},
	},
	{
		name: "NodePort: on every node address of the family",
		cfg: func(c *Config) {
			c.NodeAddresses = []netip.Addr{
				netip.MustParseAddr("192.168.0.10"), netip.MustParseAddr("10.1.0.10"), netip.MustParseAddr("fd00::10"),
			}
		},
		svcs:   []*v1.Service{service("web", webIP, np, ports(tcp("http", 80, 30080)))},
		slices: []*discoveryv1.EndpointSlice{webSlice()},
		want: []model.Service{{
			Name: name("web", "http"),
			Frontends: []model.Frontend{
				cip("10.96.0.10:80"),
				fe(model.NodePort, "192.168.0.10:30080", model.TCP),
				fe(model.NodePort, "10.1.0.10:30080", model.TCP),
			},
			Backends: webBackends,
		}},
	},
	{
		name:   "NodePort: no node address gives only the ClusterIP",
		cfg:    func(c *Config) { c.NodeAddresses = nil },
		svcs:   []*v1.Service{service("web", webIP, np, ports(tcp("http", 80, 30080)))},
		slices: []*discoveryv1.EndpointSlice{webSlice()},
		want:   []model.Service{{Name: name("web", "http"), Frontends: []model.Frontend{cip("10.96.0.10:80")}, Backends: webBackends}},
	},
	{
		name: "LoadBalancer: every ingress IP; hostname-only ingress skipped",
		svcs: []*v1.Service{service("web", webIP, lb, ports(tcp("http", 80, 30080)),
			ingress("203.0.113.1", "203.0.113.2"), ingressHostname("lb.example.com"))},
		slices: []*discoveryv1.EndpointSlice{webSlice()},
		want: []model.Service{{
			Name: name("web", "http"),
			Frontends: []model.Frontend{
				cip("10.96.0.10:80"),
				fe(model.NodePort, "192.168.0.10:30080", model.TCP),
				fe(model.LoadBalancer, "203.0.113.1:80", model.TCP),
				fe(model.LoadBalancer, "203.0.113.2:80", model.TCP),
			},
			Backends: webBackends,
		}},
	},
	{
		name: "LoadBalancer: ipMode Proxy ingress is not programmed",
		svcs: []*v1.Service{service("web", webIP, lb,
			ingressMode("203.0.113.1", v1.LoadBalancerIPModeProxy), ingressMode("203.0.113.2", v1.LoadBalancerIPModeVIP))},
		slices: []*discoveryv1.EndpointSlice{webSlice()},
		want: []model.Service{{
			Name:      name("web", "http"),
			Frontends: []model.Frontend{cip("10.96.0.10:80"), fe(model.LoadBalancer, "203.0.113.2:80", model.TCP)},
			Backends:  webBackends,
		}},
	},
	{
		name: "LoadBalancer: allocateLoadBalancerNodePorts=false gives no NodePort frontend",
		svcs: []*v1.Service{service("web", webIP, lb, ingress("203.0.113.1"), func(s *v1.Service) {
			f := false
			s.Spec.AllocateLoadBalancerNodePorts = &f
		})},
		slices: []*discoveryv1.EndpointSlice{webSlice()},
		want: []model.Service{{
			Name:      name("web", "http"),
			Frontends: []model.Frontend{cip("10.96.0.10:80"), fe(model.LoadBalancer, "203.0.113.1:80", model.TCP)},
			Backends:  webBackends,
		}},
	},
	{
		name:   "ExternalIPs: every externalIP of the family",
		svcs:   []*v1.Service{service("web", webIP, externalIPs("198.51.100.1", "198.51.100.2", "2001:db8::1"))},
		slices: []*discoveryv1.EndpointSlice{webSlice()},
		want: []model.Service{{
			Name: name("web", "http"),
			Frontends: []model.Frontend{
				cip("10.96.0.10:80"),
				fe(model.ExternalIP, "198.51.100.1:80", model.TCP),
				fe(model.ExternalIP, "198.51.100.2:80", model.TCP),
			},
			Backends: webBackends,
		}},
	},
	{
		// kube-proxy reads nodePort and status whatever the type; the API
		// server clears them on a type change, and this is just re-translation.
		name:   "Type: only ExternalName is special, fields are read as they are",
		svcs:   []*v1.Service{service("web", webIP, ports(tcp("http", 80, 30080)), ingress("203.0.113.1"))},
		slices: []*discoveryv1.EndpointSlice{webSlice()},
		want: []model.Service{{
			Name: name("web", "http"),
			Frontends: []model.Frontend{
				cip("10.96.0.10:80"),
				fe(model.NodePort, "192.168.0.10:30080", model.TCP),
				fe(model.LoadBalancer, "203.0.113.1:80", model.TCP),
			},
			Backends: webBackends,
		}},
	},
	{
		name: "Dual-stack: IPv4 as the secondary family; IPv6 addresses skipped",
		svcs: []*v1.Service{service("web", "", lb,
			families([]v1.IPFamily{v1.IPv6Protocol, v1.IPv4Protocol}, "fd00::10", webIP),
			externalIPs("2001:db8::1", "198.51.100.1"), ingress("2001:db8::2", "203.0.113.1"))},
		slices: []*discoveryv1.EndpointSlice{
			webSlice(),
			slice("web", "web-v6", addrType(discoveryv1.AddressTypeIPv6), eps(ep("fd00:1::1", "node-a"))),
		},
		want: []model.Service{{
			Name: name("web", "http"),
			Frontends: []model.Frontend{
				cip("10.96.0.10:80"),
				fe(model.ExternalIP, "198.51.100.1:80", model.TCP),
				fe(model.LoadBalancer, "203.0.113.1:80", model.TCP),
			},
			Backends: webBackends,
		}},
	},
	{
		name: "IPv6-only Service is skipped without a Problem",
		svcs: []*v1.Service{service("web", "fd00::10", ports(v1.ServicePort{Name: "s", Port: 9, Protocol: v1.ProtocolSCTP}))},
		slices: []*discoveryv1.EndpointSlice{
			slice("web", "web-v6", addrType(discoveryv1.AddressTypeIPv6), eps(ep("fd00:1::1", "node-a"))),
		},
	},
	{
		name:   "No ipFamilies: spec.clusterIP is used when of the family",
		svcs:   []*v1.Service{service("web", webIP, noFamilies())},
		slices: []*discoveryv1.EndpointSlice{webSlice()},
		want:   []model.Service{{Name: name("web", "http"), Frontends: []model.Frontend{cip("10.96.0.10:80")}, Backends: webBackends}},
	},
	{
		name: "No ipFamilies: spec.clusterIP of the other family is skipped",
		svcs: []*v1.Service{service("web", "fd00::10", noFamilies())},
	},
	{
		name:   "Sloppy IPv4: leading zeros are decimal, as in kube-proxy",
		svcs:   []*v1.Service{service("web", "010.096.000.010", externalIPs("198.051.100.001"))},
		slices: []*discoveryv1.EndpointSlice{webSlice()},
		want: []model.Service{{
			Name:      name("web", "http"),
			Frontends: []model.Frontend{cip("10.96.0.10:80"), fe(model.ExternalIP, "198.51.100.1:80", model.TCP)},
			Backends:  webBackends,
		}},
	},
	{
		name: "Family IPv6: the IPv6 half of a dual-stack Service",
		cfg: func(c *Config) {
			c.Family = v1.IPv6Protocol
			c.NodeAddresses = []netip.Addr{netip.MustParseAddr("192.168.0.10"), netip.MustParseAddr("fd00::10")}
		},
		svcs: []*v1.Service{service("web", "", np, ports(tcp("http", 80, 30080)),
			families([]v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}, webIP, "fd00::a"))},
		slices: []*discoveryv1.EndpointSlice{
			webSlice(),
			slice("web", "web-v6", addrType(discoveryv1.AddressTypeIPv6), eps(ep("fd00:1::1", "node-a"))),
		},
		want: []model.Service{{
			Name: name("web", "http"),
			Frontends: []model.Frontend{
				fe(model.ClusterIP, "[fd00::a]:80", model.TCP),
				fe(model.NodePort, "[fd00::10]:30080", model.TCP),
			},
			Backends: []model.Backend{be("[fd00:1::1]:8080", true)},
		}},
	},
}

var portCases = []testCase{
	{
		name: "Ports: one model service per port",
		svcs: []*v1.Service{service("web", webIP, ports(tcp("http", 80, 0), tcp("metrics", 9090, 0)))},
		slices: []*discoveryv1.EndpointSlice{slice("web", "web-1",
			sports(eport("http", 8080, v1.ProtocolTCP), eport("metrics", 9100, v1.ProtocolTCP)),
			eps(ep("10.0.1.1", "node-b")))},
		want: []model.Service{
			{Name: name("web", "http"), Frontends: []model.Frontend{cip("10.96.0.10:80")}, Backends: webBackends},
			{Name: name("web", "metrics"), Frontends: []model.Frontend{cip("10.96.0.10:9090")}, Backends: []model.Backend{be("10.0.1.1:9100", false)}},
		},
	},
	{
		name: "Ports: same port number over TCP and UDP",
		svcs: []*v1.Service{service("dns", webIP, ports(udp("dns", 53, 0), tcp("dns-tcp", 53, 0)))},
		slices: []*discoveryv1.EndpointSlice{slice("dns", "dns-1",
			sports(eport("dns", 5353, v1.ProtocolUDP), eport("dns-tcp", 5353, v1.ProtocolTCP)),
			eps(ep("10.0.1.1", "node-b")))},
		want: []model.Service{
			{Name: name("dns", "dns"), Frontends: []model.Frontend{fe(model.ClusterIP, "10.96.0.10:53", model.UDP)}, Backends: []model.Backend{be("10.0.1.1:5353", false)}},
			{Name: name("dns", "dns-tcp"), Frontends: []model.Frontend{fe(model.ClusterIP, "10.96.0.10:53", model.TCP)}, Backends: []model.Backend{be("10.0.1.1:5353", false)}},
		},
	},
	{
		name:     "Ports: SCTP is a Problem, the other ports are translated",
		svcs:     []*v1.Service{service("web", webIP, ports(v1.ServicePort{Name: "sig", Port: 2905, Protocol: v1.ProtocolSCTP}, tcp("http", 80, 0)))},
		slices:   []*discoveryv1.EndpointSlice{webSlice()},
		want:     []model.Service{{Name: name("web", "http"), Frontends: []model.Frontend{cip("10.96.0.10:80")}, Backends: webBackends}},
		problems: []string{"web spec.ports[0].protocol: SCTP not supported"},
	},
	{
		name:     "Ports: unknown protocol is a Problem",
		svcs:     []*v1.Service{service("web", webIP, ports(v1.ServicePort{Name: "x", Port: 1, Protocol: "ICMP"}))},
		problems: []string{`web spec.ports[0].protocol: unsupported protocol "ICMP"`},
	},
	{
		name:     "Ports: out-of-range port is a Problem",
		svcs:     []*v1.Service{service("web", webIP, ports(tcp("bad", 70000, 0), tcp("http", 80, 0)))},
		slices:   []*discoveryv1.EndpointSlice{webSlice()},
		want:     []model.Service{{Name: name("web", "http"), Frontends: []model.Frontend{cip("10.96.0.10:80")}, Backends: webBackends}},
		problems: []string{"web spec.ports[0].port: port 70000 out of range"},
	},
	{
		name:     "Ports: out-of-range nodePort is a Problem and gives no NodePort frontend",
		svcs:     []*v1.Service{service("web", webIP, np, ports(tcp("http", 80, 70000)))},
		slices:   []*discoveryv1.EndpointSlice{webSlice()},
		want:     []model.Service{{Name: name("web", "http"), Frontends: []model.Frontend{cip("10.96.0.10:80")}, Backends: webBackends}},
		problems: []string{"web spec.ports[0].nodePort: nodePort 70000 out of range"},
	},
	{
		name:     "Ports: duplicate port name, the later one wins as in kube-proxy",
		svcs:     []*v1.Service{service("web", webIP, ports(tcp("http", 80, 0), tcp("http", 81, 0)))},
		slices:   []*discoveryv1.EndpointSlice{webSlice()},
		want:     []model.Service{{Name: name("web", "http"), Frontends: []model.Frontend{cip("10.96.0.10:81")}, Backends: webBackends}},
		problems: []string{`web spec.ports[0].name: duplicate port name "http": spec.ports[1] is used`},
	},
	{
		name:   "Ports: an unnamed port matches the unnamed slice port",
		svcs:   []*v1.Service{service("web", webIP, ports(tcp("", 80, 0)))},
		slices: []*discoveryv1.EndpointSlice{slice("web", "web-1", sports(eport("", 8080, v1.ProtocolTCP)), eps(ep("10.0.1.1", "node-b")))},
		want:   []model.Service{{Name: name("web", ""), Frontends: []model.Frontend{cip("10.96.0.10:80")}, Backends: webBackends}},
	},
	{
		name:   "Ports: endpoint ports are matched by name",
		svcs:   []*v1.Service{service("web", webIP)},
		slices: []*discoveryv1.EndpointSlice{slice("web", "web-1", sports(eport("www", 8080, v1.ProtocolTCP)), eps(ep("10.0.1.1", "node-b")))},
		want:   []model.Service{{Name: name("web", "http"), Frontends: []model.Frontend{cip("10.96.0.10:80")}, IfEmpty: model.Reject}},
	},
	{
		name:   "Ports: endpoint ports are matched by protocol",
		svcs:   []*v1.Service{service("web", webIP)},
		slices: []*discoveryv1.EndpointSlice{slice("web", "web-1", sports(eport("http", 8080, v1.ProtocolUDP)), eps(ep("10.0.1.1", "node-b")))},
		want:   []model.Service{{Name: name("web", "http"), Frontends: []model.Frontend{cip("10.96.0.10:80")}, IfEmpty: model.Reject}},
	},
	{
		name: "Ports: an unset slice port protocol is TCP",
		svcs: []*v1.Service{service("web", webIP)},
		slices: []*discoveryv1.EndpointSlice{slice("web", "web-1", func(s *discoveryv1.EndpointSlice) {
			s.Ports[0].Protocol = nil
		}, eps(ep("10.0.1.1", "node-b")))},
		want: []model.Service{{Name: name("web", "http"), Frontends: []model.Frontend{cip("10.96.0.10:80")}, Backends: webBackends}},
	},
	{
		name: "Ports: a Service without ports gets nothing",
		svcs: []*v1.Service{service("web", webIP, ports())},
	},
}
