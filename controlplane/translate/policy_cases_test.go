package translate

import (
	v1 "k8s.io/api/core/v1"

	"github.com/straitlb/strait/model"
)

var (
	npWeb      = cip("10.96.0.10:80")
	npWebNode  = fe(model.NodePort, "192.168.0.10:30080", model.TCP)
	localEp    = be("10.0.1.1:8080", true)
	remoteEp   = be("10.0.1.2:8080", false)
	twoNodeEps = webEps(ep("10.0.1.1", "node-a"), ep("10.0.1.2", "node-b"))
)

// npSvc is a NodePort Service "web" with nodePort 30080.
func npSvc(opts ...svcOpt) []*v1.Service {
	return webSvc(append([]svcOpt{np, ports(tcp("http", 80, 30080))}, opts...)...)
}

var policyCases = []testCase{
	{
		name:   "eTP Local: external frontends use only local endpoints, ClusterIP all (split)",
		svcs:   npSvc(etpLocal()),
		slices: twoNodeEps,
		want: []model.Service{
			{Name: scoped("web", "http", ScopeInternal), Frontends: []model.Frontend{npWeb}, Backends: []model.Backend{localEp, remoteEp}},
			{Name: scoped("web", "http", ScopeExternal), Frontends: []model.Frontend{npWebNode}, Backends: []model.Backend{localEp}},
		},
	},
	{
		name:   "eTP Local: endpoints elsewhere but none local drops external traffic",
		svcs:   npSvc(etpLocal()),
		slices: webEps(ep("10.0.1.2", "node-b")),
		want: []model.Service{
			{Name: scoped("web", "http", ScopeInternal), Frontends: []model.Frontend{npWeb}, Backends: []model.Backend{remoteEp}},
			{Name: scoped("web", "http", ScopeExternal), Frontends: []model.Frontend{npWebNode}, IfEmpty: model.Drop},
		},
	},
	{
		name:   "eTP Local: all endpoints local gives one service",
		svcs:   npSvc(etpLocal()),
		slices: webEps(ep("10.0.1.1", "node-a")),
		want:   []model.Service{{Name: name("web", "http"), Frontends: []model.Frontend{npWeb, npWebNode}, Backends: []model.Backend{localEp}}},
	},
	{
		name: "eTP Local: no endpoints at all rejects",
		svcs: npSvc(etpLocal()),
		want: []model.Service{{Name: name("web", "http"), Frontends: []model.Frontend{npWeb, npWebNode}, IfEmpty: model.Reject}},
	},
	{
		name:   "eTP Local: applies to a ClusterIP Service with externalIPs",
		svcs:   webSvc(etpLocal(), externalIPs("198.51.100.1")),
		slices: twoNodeEps,
		want: []model.Service{
			{Name: scoped("web", "http", ScopeInternal), Frontends: []model.Frontend{npWeb}, Backends: []model.Backend{localEp, remoteEp}},
			{Name: scoped("web", "http", ScopeExternal), Frontends: []model.Frontend{fe(model.ExternalIP, "198.51.100.1:80", model.TCP)}, Backends: []model.Backend{localEp}},
		},
	},
	{
		// apiservice.ExternalPolicyLocal: type ClusterIP without
		// externalIPs is not externally accessible, whatever its status.
		name:   "eTP Local: ignored for a ClusterIP Service without externalIPs",
		svcs:   webSvc(etpLocal(), ingress("203.0.113.1")),
		slices: twoNodeEps,
		want: []model.Service{{
			Name:      name("web", "http"),
			Frontends: []model.Frontend{npWeb, fe(model.LoadBalancer, "203.0.113.1:80", model.TCP)},
			Backends:  []model.Backend{localEp, remoteEp},
		}},
	},
	{
		name:   "eTP Local: local serving-terminating fallback is separate from Cluster's",
		svcs:   npSvc(etpLocal()),
		slices: webEps(ep("10.0.1.1", "node-a", terminating(true)), ep("10.0.1.2", "node-b")),
		want: []model.Service{
			{Name: scoped("web", "http", ScopeInternal), Frontends: []model.Frontend{npWeb}, Backends: []model.Backend{remoteEp}},
			{Name: scoped("web", "http", ScopeExternal), Frontends: []model.Frontend{npWebNode}, Backends: []model.Backend{localEp}},
		},
	},
	{
		name:   "iTP Local: ClusterIP uses only local endpoints",
		svcs:   webSvc(itpLocal()),
		slices: twoNodeEps,
		want:   webOnly(localEp),
	},
	{
		name:   "iTP Local: endpoints elsewhere but none local drops ClusterIP traffic",
		svcs:   webSvc(itpLocal()),
		slices: webEps(ep("10.0.1.2", "node-b")),
		want:   []model.Service{{Name: name("web", "http"), Frontends: []model.Frontend{npWeb}, IfEmpty: model.Drop}},
	},
	{
		name:   "iTP Local with eTP Cluster: split, external uses all endpoints",
		svcs:   npSvc(itpLocal()),
		slices: twoNodeEps,
		want: []model.Service{
			{Name: scoped("web", "http", ScopeInternal), Frontends: []model.Frontend{npWeb}, Backends: []model.Backend{localEp}},
			{Name: scoped("web", "http", ScopeExternal), Frontends: []model.Frontend{npWebNode}, Backends: []model.Backend{localEp, remoteEp}},
		},
	},
	{
		name:   "iTP and eTP Local: one service with the local endpoints",
		svcs:   npSvc(itpLocal(), etpLocal()),
		slices: twoNodeEps,
		want:   []model.Service{{Name: name("web", "http"), Frontends: []model.Frontend{npWeb, npWebNode}, Backends: []model.Backend{localEp}}},
	},
	{
		name:   "iTP and eTP Local: none local drops everything",
		svcs:   npSvc(itpLocal(), etpLocal()),
		slices: webEps(ep("10.0.1.2", "node-b")),
		want:   []model.Service{{Name: name("web", "http"), Frontends: []model.Frontend{npWeb, npWebNode}, IfEmpty: model.Drop}},
	},
}

var topologyCases = []testCase{
	{
		name:   "Topology: zone hints used when every ready endpoint has one and one matches",
		svcs:   webSvc(),
		slices: webEps(ep("10.0.1.1", "node-b", zones("zone-a")), ep("10.0.1.2", "node-c", zones("zone-b"))),
		want:   webOnly(be("10.0.1.1:8080", false)),
	},
	{
		name:   "Topology: zone hints ignored when a ready endpoint has none",
		svcs:   webSvc(),
		slices: webEps(ep("10.0.1.1", "node-b", zones("zone-a")), ep("10.0.1.2", "node-c")),
		want:   webOnly(be("10.0.1.1:8080", false), be("10.0.1.2:8080", false)),
	},
	{
		name:   "Topology: zone hints ignored when none is for this zone",
		svcs:   webSvc(),
		slices: webEps(ep("10.0.1.1", "node-b", zones("zone-b")), ep("10.0.1.2", "node-c", zones("zone-c"))),
		want:   webOnly(be("10.0.1.1:8080", false), be("10.0.1.2:8080", false)),
	},
	{
		name:   "Topology: not-ready endpoints without hints do not count",
		svcs:   webSvc(),
		slices: webEps(ep("10.0.1.1", "node-b", zones("zone-a")), ep("10.0.1.2", "node-c", zones("zone-b")), ep("10.0.1.3", "node-c", notReady)),
		want:   webOnly(be("10.0.1.1:8080", false)),
	},
	{
		name:   "Topology: zone hints ignored when the node has no zone label",
		cfg:    func(c *Config) { c.NodeLabels = nil },
		svcs:   webSvc(),
		slices: webEps(ep("10.0.1.1", "node-b", zones("zone-a")), ep("10.0.1.2", "node-c", zones("zone-b"))),
		want:   webOnly(be("10.0.1.1:8080", false), be("10.0.1.2:8080", false)),
	},
	{
		name:   "Topology: PreferSameNode node hints used when every ready endpoint has one and one is for this node",
		svcs:   webSvc(trafficDistribution(v1.ServiceTrafficDistributionPreferSameNode)),
		slices: webEps(ep("10.0.1.1", "node-a", nodes("node-a"), zones("zone-a")), ep("10.0.1.2", "node-b", nodes("node-b"), zones("zone-a"))),
		want:   webOnly(be("10.0.1.1:8080", true)),
	},
	{
		name:   "Topology: node hints fall back to zone hints when none is for this node",
		svcs:   webSvc(trafficDistribution(v1.ServiceTrafficDistributionPreferSameNode)),
		slices: webEps(ep("10.0.1.1", "node-b", nodes("node-b"), zones("zone-a")), ep("10.0.1.2", "node-c", nodes("node-c"), zones("zone-b"))),
		want:   webOnly(be("10.0.1.1:8080", false)),
	},
	{
		name:   "Topology: node hints ignored when a ready endpoint has none",
		svcs:   webSvc(),
		slices: webEps(ep("10.0.1.1", "node-b", nodes("node-a")), ep("10.0.1.2", "node-c")),
		want:   webOnly(be("10.0.1.1:8080", false), be("10.0.1.2:8080", false)),
	},
	{
		name:   "Topology: ignored for traffic under a Local policy",
		svcs:   npSvc(etpLocal()),
		slices: webEps(ep("10.0.1.1", "node-a", zones("zone-b")), ep("10.0.1.2", "node-b", zones("zone-a"))),
		want: []model.Service{
			{Name: scoped("web", "http", ScopeInternal), Frontends: []model.Frontend{npWeb}, Backends: []model.Backend{remoteEp}},
			{Name: scoped("web", "http", ScopeExternal), Frontends: []model.Frontend{npWebNode}, Backends: []model.Backend{localEp}},
		},
	},
	{
		name:   "Topology: trafficDistribution itself is not read, only hints",
		svcs:   webSvc(trafficDistribution(v1.ServiceTrafficDistributionPreferClose)),
		slices: twoNodeEps,
		want:   webOnly(localEp, remoteEp),
	},
	{
		name:   "Topology: with no ready endpoint the terminating fallback ignores hints",
		svcs:   webSvc(),
		slices: webEps(ep("10.0.1.1", "node-b", terminating(true), zones("zone-b")), ep("10.0.1.2", "node-c", terminating(true), zones("zone-a"))),
		want:   webOnly(be("10.0.1.1:8080", false), be("10.0.1.2:8080", false)),
	},
}
