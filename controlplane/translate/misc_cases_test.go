package translate

import (
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/straitlb/strait/model"
)

var lbFe = fe(model.LoadBalancer, "203.0.113.1:80", model.TCP)

// lbSvc is a LoadBalancer Service "web" with ingress 203.0.113.1, no nodePort.
func lbSvc(opts ...svcOpt) []*v1.Service {
	return webSvc(append([]svcOpt{lb, ingress("203.0.113.1")}, opts...)...)
}

var affinityAndRangeCases = []testCase{
	{
		name:   "Affinity: ClientIP without a timeout uses 10800s",
		svcs:   webSvc(clientIPAffinity(nil)),
		slices: []*discoveryv1.EndpointSlice{webSlice()},
		want:   []model.Service{{Name: name("web", "http"), Frontends: []model.Frontend{npWeb}, Backends: webBackends, AffinityTimeout: 10800 * time.Second}},
	},
	{
		name:   "Affinity: ClientIP timeoutSeconds",
		svcs:   webSvc(clientIPAffinity(i32(600))),
		slices: []*discoveryv1.EndpointSlice{webSlice()},
		want:   []model.Service{{Name: name("web", "http"), Frontends: []model.Frontend{npWeb}, Backends: webBackends, AffinityTimeout: 600 * time.Second}},
	},
	{
		name:   "Affinity: applies to both halves of a split service",
		svcs:   npSvc(etpLocal(), clientIPAffinity(i32(60))),
		slices: twoNodeEps,
		want: []model.Service{
			{Name: scoped("web", "http", ScopeInternal), Frontends: []model.Frontend{npWeb}, Backends: []model.Backend{localEp, remoteEp}, AffinityTimeout: time.Minute},
			{Name: scoped("web", "http", ScopeExternal), Frontends: []model.Frontend{npWebNode}, Backends: []model.Backend{localEp}, AffinityTimeout: time.Minute},
		},
	},
	{
		name: "Affinity: out-of-range timeout is a Problem and the default is used",
		svcs: []*v1.Service{
			service("zero", "10.96.0.1", clientIPAffinity(i32(0))),
			service("huge", "10.96.0.2", clientIPAffinity(i32(100000))),
		},
		want: []model.Service{
			{Name: name("huge", "http"), Frontends: []model.Frontend{cip("10.96.0.2:80")}, AffinityTimeout: 10800 * time.Second},
			{Name: name("zero", "http"), Frontends: []model.Frontend{cip("10.96.0.1:80")}, AffinityTimeout: 10800 * time.Second},
		},
		problems: []string{
			"huge spec.sessionAffinityConfig.clientIP.timeoutSeconds: timeout 100000s out of range",
			"zero spec.sessionAffinityConfig.clientIP.timeoutSeconds: timeout 0s out of range",
		},
	},
	{
		name:   "SourceRanges: trimmed, masked and set with LoadBalancer frontends",
		svcs:   lbSvc(sourceRanges(" 10.0.0.5/8 ", "192.0.2.0/24")),
		slices: []*discoveryv1.EndpointSlice{webSlice()},
		want: []model.Service{{
			Name: name("web", "http"), Frontends: []model.Frontend{npWeb, lbFe}, Backends: webBackends,
			SourceRanges: prefixes("10.0.0.0/8", "192.0.2.0/24"),
		}},
	},
	{
		name:   "SourceRanges: an invalid range is a Problem, the others are kept",
		svcs:   lbSvc(sourceRanges("bogus", "192.0.2.0/24")),
		slices: []*discoveryv1.EndpointSlice{webSlice()},
		want: []model.Service{{
			Name: name("web", "http"), Frontends: []model.Frontend{npWeb, lbFe}, Backends: webBackends,
			SourceRanges: prefixes("192.0.2.0/24"),
		}},
		problems: []string{`web spec.loadBalancerSourceRanges[0]: parse loadBalancerSourceRange "bogus"`},
	},
	{
		name:     "SourceRanges: when every range is invalid the service is open, as in kube-proxy",
		svcs:     lbSvc(sourceRanges("10.0.0.0/33")),
		slices:   []*discoveryv1.EndpointSlice{webSlice()},
		want:     []model.Service{{Name: name("web", "http"), Frontends: []model.Frontend{npWeb, lbFe}, Backends: webBackends}},
		problems: []string{`web spec.loadBalancerSourceRanges[0]: parse loadBalancerSourceRange "10.0.0.0/33"`},
	},
	{
		name:   "SourceRanges: a zero-length prefix allows all",
		svcs:   lbSvc(sourceRanges("192.0.2.0/24", "0.0.0.0/0")),
		slices: []*discoveryv1.EndpointSlice{webSlice()},
		want:   []model.Service{{Name: name("web", "http"), Frontends: []model.Frontend{npWeb, lbFe}, Backends: webBackends}},
	},
	{
		name:   "SourceRanges: only ranges of the other family allow all",
		svcs:   lbSvc(sourceRanges("2001:db8::/32")),
		slices: []*discoveryv1.EndpointSlice{webSlice()},
		want:   []model.Service{{Name: name("web", "http"), Frontends: []model.Frontend{npWeb, lbFe}, Backends: webBackends}},
	},
	{
		name:   "SourceRanges: a range containing the node IP also allows the LoadBalancer IPs",
		svcs:   lbSvc(sourceRanges("192.168.0.0/16")),
		slices: []*discoveryv1.EndpointSlice{webSlice()},
		want: []model.Service{{
			Name: name("web", "http"), Frontends: []model.Frontend{npWeb, lbFe}, Backends: webBackends,
			SourceRanges: prefixes("192.168.0.0/16", "203.0.113.1/32"),
		}},
	},
	{
		name:   "SourceRanges: only on the external half of a split service",
		svcs:   lbSvc(etpLocal(), sourceRanges("192.0.2.0/24")),
		slices: twoNodeEps,
		want: []model.Service{
			{Name: scoped("web", "http", ScopeInternal), Frontends: []model.Frontend{npWeb}, Backends: []model.Backend{localEp, remoteEp}},
			{Name: scoped("web", "http", ScopeExternal), Frontends: []model.Frontend{lbFe}, Backends: []model.Backend{localEp}, SourceRanges: prefixes("192.0.2.0/24")},
		},
	},
	{
		name:   "SourceRanges: ignored without LoadBalancer IPs",
		svcs:   webSvc(lb, externalIPs("198.51.100.1"), sourceRanges("192.0.2.0/24")),
		slices: []*discoveryv1.EndpointSlice{webSlice()},
		want: []model.Service{{
			Name: name("web", "http"), Frontends: []model.Frontend{npWeb, fe(model.ExternalIP, "198.51.100.1:80", model.TCP)}, Backends: webBackends,
		}},
	},
}

var labelCases = []testCase{
	{
		name: "Labels: with no ProxyName, any service-proxy-name label is ignored, even empty",
		svcs: []*v1.Service{
			service("mine", "10.96.0.1"),
			service("theirs", "10.96.0.2", svcLabel(LabelServiceProxyName, "other")),
			service("empty", "10.96.0.3", svcLabel(LabelServiceProxyName, "")),
		},
		want: []model.Service{{Name: name("mine", "http"), Frontends: []model.Frontend{cip("10.96.0.1:80")}}},
	},
	{
		name: "Labels: with a ProxyName, matching and unlabelled Services are ours",
		cfg:  func(c *Config) { c.ProxyName = "strait" },
		svcs: []*v1.Service{
			service("unlabelled", "10.96.0.1"),
			service("ours", "10.96.0.2", svcLabel(LabelServiceProxyName, "strait")),
			service("theirs", "10.96.0.3", svcLabel(LabelServiceProxyName, "other")),
		},
		want: []model.Service{
			{Name: name("ours", "http"), Frontends: []model.Frontend{cip("10.96.0.2:80")}},
			{Name: name("unlabelled", "http"), Frontends: []model.Frontend{cip("10.96.0.1:80")}},
		},
	},
	{
		// kube-proxy filters the Service informer only; a slice counts
		// through its Service.
		name:   "Labels: the service-proxy-name label on a slice is not consulted",
		svcs:   webSvc(),
		slices: []*discoveryv1.EndpointSlice{slice("web", "web-1", sliceLabel(LabelServiceProxyName, "other"), eps(ep("10.0.1.1", "node-b")))},
		want:   webOnly(be("10.0.1.1:8080", false)),
	},
}

var badInputCases = []testCase{
	{
		name: "Bad input: an invalid clusterIP is a Problem, other Services are translated",
		svcs: []*v1.Service{
			service("bad", "10.96.0.300"),
			service("bad-legacy", "nope", noFamilies()),
			service("web", webIP),
		},
		slices: []*discoveryv1.EndpointSlice{webSlice(), slice("bad", "bad-1", eps(ep("10.0.1.1", "node-b")))},
		want:   webOnly(be("10.0.1.1:8080", false)),
		problems: []string{
			`bad spec.clusterIPs[0]: parse clusterIP "10.96.0.300"`,
			`bad-legacy spec.clusterIP: parse clusterIP "nope"`,
		},
	},
	{
		name:     "Bad input: a clusterIP of the wrong family for spec.ipFamilies",
		svcs:     []*v1.Service{service("web", "", families([]v1.IPFamily{v1.IPv4Protocol}, "fd00::10"))},
		problems: []string{`web spec.clusterIPs[0]: clusterIP "fd00::10" is not IPv4`},
	},
	{
		name:   "Bad input: an invalid externalIP is a Problem, the others are kept; blank ones are skipped",
		svcs:   webSvc(externalIPs("198.51.100.1", "nope", " ", "fe80::1%eth0")),
		slices: []*discoveryv1.EndpointSlice{webSlice()},
		want: []model.Service{{
			Name: name("web", "http"), Frontends: []model.Frontend{npWeb, fe(model.ExternalIP, "198.51.100.1:80", model.TCP)}, Backends: webBackends,
		}},
		problems: []string{
			`web spec.externalIPs[1]: parse externalIP "nope"`,
			`web spec.externalIPs[3]: parse externalIP "fe80::1%eth0": zones are not allowed`,
		},
	},
	{
		name:   "Bad input: an invalid LoadBalancer ingress IP is a Problem",
		svcs:   webSvc(lb, ingress("203.0.113.999", "203.0.113.1")),
		slices: []*discoveryv1.EndpointSlice{webSlice()},
		want: []model.Service{{
			Name: name("web", "http"), Frontends: []model.Frontend{npWeb, lbFe}, Backends: webBackends,
		}},
		problems: []string{`web status.loadBalancer.ingress[0].ip: parse loadBalancer ingress IP "203.0.113.999"`},
	},
	{
		name: "Conflict: the older Service wins a shared frontend",
		svcs: []*v1.Service{
			service("a", "10.96.0.1", externalIPs("198.51.100.1"), created(10)),
			service("b", "10.96.0.2", externalIPs("198.51.100.1"), created(5)),
		},
		want: []model.Service{
			{Name: name("a", "http"), Frontends: []model.Frontend{cip("10.96.0.1:80")}},
			{Name: name("b", "http"), Frontends: []model.Frontend{cip("10.96.0.2:80"), fe(model.ExternalIP, "198.51.100.1:80", model.TCP)}},
		},
		problems: []string{"a spec.externalIPs[0]: ExternalIP frontend 198.51.100.1:80/TCP conflicts with ExternalIP frontend of default/b:http"},
	},
	{
		name: "Conflict: at equal age the lower namespace/name wins",
		svcs: []*v1.Service{
			service("b", "10.96.0.2", externalIPs("198.51.100.1")),
			service("a", "10.96.0.1", externalIPs("198.51.100.1"), inNS("zzz")),
			service("c", "10.96.0.3", externalIPs("198.51.100.1")),
		},
		want: []model.Service{
			{Name: name("b", "http"), Frontends: []model.Frontend{cip("10.96.0.2:80"), fe(model.ExternalIP, "198.51.100.1:80", model.TCP)}},
			{Name: name("c", "http"), Frontends: []model.Frontend{cip("10.96.0.3:80")}},
			{Name: model.ServiceName{Namespace: "zzz", Name: "a", Port: "http"}, Frontends: []model.Frontend{cip("10.96.0.1:80")}},
		},
		problems: []string{
			"c spec.externalIPs[0]: conflicts with ExternalIP frontend of default/b:http",
			"a spec.externalIPs[0]: conflicts with ExternalIP frontend of default/b:http",
		},
	},
	{
		name: "Conflict: an externalIP on a node address against another Service's NodePort",
		svcs: []*v1.Service{
			service("np", "10.96.0.1", np, ports(tcp("http", 80, 30080)), created(1)),
			service("eip", "10.96.0.2", externalIPs("192.168.0.10"), ports(tcp("http", 30080, 0)), created(2)),
		},
		want: []model.Service{
			{Name: name("eip", "http"), Frontends: []model.Frontend{cip("10.96.0.2:30080")}},
			{Name: name("np", "http"), Frontends: []model.Frontend{cip("10.96.0.1:80"), fe(model.NodePort, "192.168.0.10:30080", model.TCP)}},
		},
		problems: []string{"eip spec.externalIPs[0]: ExternalIP frontend 192.168.0.10:30080/TCP conflicts with NodePort frontend of default/np:http"},
	},
	{
		name:   "Conflict: one Service listing an IP as externalIP and LoadBalancer IP keeps it once, as LoadBalancer",
		svcs:   lbSvc(externalIPs("203.0.113.1"), sourceRanges("192.0.2.0/24")),
		slices: []*discoveryv1.EndpointSlice{webSlice()},
		want: []model.Service{{
			Name: name("web", "http"), Frontends: []model.Frontend{npWeb, lbFe}, Backends: webBackends,
			SourceRanges: prefixes("192.0.2.0/24"),
		}},
	},
	{
		name: "Conflict: a model service left without frontends is dropped",
		svcs: []*v1.Service{
			service("a", "10.96.0.1", created(1)),
			service("b", "10.96.0.2", externalIPs("10.96.0.1"), etpLocal(), created(2)),
		},
		slices: []*discoveryv1.EndpointSlice{slice("b", "b-1", eps(ep("10.0.1.1", "node-b")))},
		want: []model.Service{
			{Name: name("a", "http"), Frontends: []model.Frontend{cip("10.96.0.1:80")}},
			{Name: scoped("b", "http", ScopeInternal), Frontends: []model.Frontend{cip("10.96.0.2:80")}, Backends: []model.Backend{be("10.0.1.1:8080", false)}},
		},
		problems: []string{"b spec.externalIPs[0]: ExternalIP frontend 10.96.0.1:80/TCP conflicts with ClusterIP frontend of default/a:http"},
	},
	{
		name: "Conflict: two ports of one Service",
		svcs: []*v1.Service{service("web", webIP, np, externalIPs("192.168.0.10"),
			ports(tcp("a", 30080, 0), tcp("b", 80, 30080)))},
		want: []model.Service{
			{Name: name("web", "a"), Frontends: []model.Frontend{cip("10.96.0.10:30080"), fe(model.ExternalIP, "192.168.0.10:30080", model.TCP)}},
			{Name: name("web", "b"), Frontends: []model.Frontend{cip("10.96.0.10:80"), fe(model.ExternalIP, "192.168.0.10:80", model.TCP)}},
		},
		problems: []string{"web spec.ports[1].nodePort: NodePort frontend 192.168.0.10:30080/TCP conflicts with ExternalIP frontend of default/web:a"},
	},
}
