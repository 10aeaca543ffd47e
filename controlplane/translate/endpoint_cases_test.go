package translate

import (
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/straitlb/strait/model"
)

// webOnly is the expected single model service of "web" with these backends.
func webOnly(backends ...model.Backend) []model.Service {
	return []model.Service{{Name: name("web", "http"), Frontends: []model.Frontend{cip("10.96.0.10:80")}, Backends: backends}}
}

// webSvc is Service "web" with default options.
func webSvc(opts ...svcOpt) []*v1.Service { return []*v1.Service{service("web", webIP, opts...)} }

// webEps is one slice for "web" with these endpoints.
func webEps(es ...discoveryv1.Endpoint) []*discoveryv1.EndpointSlice {
	return []*discoveryv1.EndpointSlice{slice("web", "web-1", eps(es...))}
}

var endpointCases = []testCase{
	{
		name: "Endpoints: none at all rejects",
		svcs: webSvc(),
		want: webOnly(),
	},
	{
		name:   "Endpoints: only ready endpoints when some are ready",
		svcs:   webSvc(),
		slices: webEps(ep("10.0.1.1", "node-b"), ep("10.0.1.2", "node-b", notReady), ep("10.0.1.3", "node-b", terminating(true))),
		want:   webOnly(be("10.0.1.1:8080", false)),
	},
	{
		name: "Endpoints: no ready endpoint falls back to serving terminating ones",
		svcs: webSvc(),
		slices: webEps(ep("10.0.1.1", "node-b", terminating(true)), ep("10.0.1.2", "node-b", terminating(false)),
			ep("10.0.1.3", "node-b", notReady)),
		want: webOnly(be("10.0.1.1:8080", false)),
	},
	{
		name:   "Endpoints: not ready and not serving-terminating is unusable and rejects",
		svcs:   webSvc(),
		slices: webEps(ep("10.0.1.1", "node-b", notReady), ep("10.0.1.2", "node-b", terminating(false))),
		want:   webOnly(),
	},
	{
		// kube-proxy relies on the EndpointSlice controller setting
		// ready=true for such Services; it never reads the field.
		name:   "Endpoints: publishNotReadyAddresses is not consulted",
		svcs:   webSvc(publishNotReady()),
		slices: webEps(ep("10.0.1.1", "node-b", notReady)),
		want:   webOnly(),
	},
	{
		name:   "Endpoints: unset conditions mean ready and serving",
		svcs:   webSvc(),
		slices: webEps(ep("10.0.1.1", "node-b", nilConditions)),
		want:   webOnly(be("10.0.1.1:8080", false)),
	},
	{
		name: "Endpoints: duplicates across slices are kept once",
		svcs: webSvc(),
		slices: []*discoveryv1.EndpointSlice{
			slice("web", "web-1", eps(ep("10.0.1.1", "node-b"), ep("10.0.1.2", "node-b"))),
			slice("web", "web-2", eps(ep("10.0.1.1", "node-b"))),
		},
		want: webOnly(be("10.0.1.1:8080", false), be("10.0.1.2:8080", false)),
	},
	{
		name: "Endpoints: a non-terminating duplicate wins over a terminating one, in any slice order",
		svcs: []*v1.Service{service("one", "10.96.0.1"), service("two", "10.96.0.2")},
		slices: []*discoveryv1.EndpointSlice{
			slice("one", "one-a", eps(ep("10.0.1.1", "node-b", terminating(true)))),
			slice("one", "one-b", eps(ep("10.0.1.1", "node-b"), ep("10.0.1.2", "node-b"))),
			slice("two", "two-a", eps(ep("10.0.1.1", "node-b"), ep("10.0.1.2", "node-b"))),
			slice("two", "two-b", eps(ep("10.0.1.1", "node-b", terminating(true)))),
		},
		want: []model.Service{
			{Name: name("one", "http"), Frontends: []model.Frontend{cip("10.96.0.1:80")}, Backends: []model.Backend{be("10.0.1.1:8080", false), be("10.0.1.2:8080", false)}},
			{Name: name("two", "http"), Frontends: []model.Frontend{cip("10.96.0.2:80")}, Backends: []model.Backend{be("10.0.1.1:8080", false), be("10.0.1.2:8080", false)}},
		},
	},
	{
		name:     "Endpoints: an address of the wrong family is a Problem and skipped",
		svcs:     webSvc(),
		slices:   webEps(ep("fd00::1", "node-b"), ep("10.0.1.1", "node-b")),
		want:     webOnly(be("10.0.1.1:8080", false)),
		problems: []string{`web/web-1 endpoints[0].addresses[0]: endpoint address "fd00::1" is not of addressType IPv4`},
	},
	{
		name:   "Endpoints: FQDN slices are skipped",
		svcs:   webSvc(),
		slices: []*discoveryv1.EndpointSlice{slice("web", "web-1", addrType(discoveryv1.AddressTypeFQDN), eps(ep("backend.example.com", "node-b")))},
		want:   webOnly(),
	},
	{
		name:   "Endpoints: slices of the other family are skipped",
		svcs:   webSvc(),
		slices: []*discoveryv1.EndpointSlice{slice("web", "web-1", addrType(discoveryv1.AddressTypeIPv6), eps(ep("fd00::1", "node-b")))},
		want:   webOnly(),
	},
	{
		name: "Endpoints: slices join their Service by the service-name label in its namespace",
		svcs: webSvc(),
		slices: []*discoveryv1.EndpointSlice{
			slice("other", "web-1", eps(ep("10.0.1.1", "node-b"))),
			slice("web", "web-2", sliceNS("elsewhere"), eps(ep("10.0.1.2", "node-b"))),
			slice("", "web-3", eps(ep("10.0.1.3", "node-b"))),
			slice("web", "any-name", eps(ep("10.0.1.4", "node-b"))),
		},
		want: webOnly(be("10.0.1.4:8080", false)),
	},
	{
		name:   "Endpoints: slices labelled headless are ignored",
		svcs:   webSvc(),
		slices: []*discoveryv1.EndpointSlice{slice("web", "web-1", sliceLabel(LabelHeadless, ""), eps(ep("10.0.1.1", "node-b")))},
		want:   webOnly(),
	},
	{
		name:   "Endpoints: only the first address of an endpoint counts",
		svcs:   webSvc(),
		slices: webEps(ep("10.0.1.1", "node-b", moreAddrs("10.0.1.9"))),
		want:   webOnly(be("10.0.1.1:8080", false)),
	},
	{
		name:     "Endpoints: an invalid address is a Problem, the others are used",
		svcs:     webSvc(),
		slices:   webEps(ep("10.0.1.300", "node-b"), ep("10.0.1.1", "node-b")),
		want:     webOnly(be("10.0.1.1:8080", false)),
		problems: []string{`web/web-1 endpoints[0].addresses[0]: parse endpoint address "10.0.1.300"`},
	},
	{
		name:     "Endpoints: an endpoint without addresses is a Problem",
		svcs:     webSvc(),
		slices:   webEps(discoveryv1.Endpoint{}, ep("10.0.1.1", "node-b")),
		want:     webOnly(be("10.0.1.1:8080", false)),
		problems: []string{"web/web-1 endpoints[0].addresses: endpoint has no address"},
	},
	{
		name: "Endpoints: slice ports without a name or a valid number are Problems",
		svcs: webSvc(),
		slices: []*discoveryv1.EndpointSlice{slice("web", "web-1", sports(
			discoveryv1.EndpointPort{Port: i32(8080)},
			discoveryv1.EndpointPort{Name: new("http")},
			eport("http", 0, v1.ProtocolTCP),
			eport("http", 70000, v1.ProtocolTCP),
		), eps(ep("10.0.1.1", "node-b")))},
		want: webOnly(),
		problems: []string{
			"web/web-1 ports[0].name: port has no name",
			"web/web-1 ports[1].port: port is unset",
			"web/web-1 ports[2].port: port 0 out of range",
			"web/web-1 ports[3].port: port 70000 out of range",
		},
	},
	{
		name:   "Endpoints: an endpoint is local only when the config names the node",
		cfg:    func(c *Config) { c.NodeName = "" },
		svcs:   webSvc(),
		slices: webEps(ep("10.0.1.1", "", func(e *discoveryv1.Endpoint) { e.NodeName = new("") })),
		want:   webOnly(be("10.0.1.1:8080", false)),
	},
}
