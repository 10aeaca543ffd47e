// Package translate turns Kubernetes Services and EndpointSlices into the
// desired state of one node (model.State), with kube-proxy v1.37's
// semantics. It is pure: no I/O, no informers, no clock; the same inputs in
// any order give the same canonical State and the same sorted Problems.
//
// Translate runs for one IP family (Config.Family, IPv4 by default), as
// kube-proxy runs one proxier per family; objects and addresses of the
// other family are skipped without a Problem.
//
// # What is translated
//
// Each port of each Service becomes one model service (ServiceName.Port is
// the port's name) with these frontends:
//
//   - ClusterIP: the Service's clusterIP of the family (spec.clusterIPs at
//     the family's index in spec.ipFamilies, or spec.clusterIP when
//     ipFamilies is empty). Headless (clusterIP None or empty) and
//     ExternalName Services get nothing.
//   - NodePort: spec.ports[].nodePort, when not 0, on every
//     Config.NodeAddresses of the family (see NodePortAddresses). With
//     allocateLoadBalancerNodePorts=false the nodePort is 0: no frontend.
//   - LoadBalancer: each status.loadBalancer.ingress[].ip of the family,
//     except ingress with ipMode Proxy: kube-proxy programs neither the IP
//     nor a short-circuit for it, so traffic goes to the load balancer.
//   - ExternalIP: each spec.externalIPs entry of the family.
//
// As in kube-proxy, spec.type is read only to skip ExternalName and to
// decide whether externalTrafficPolicy applies; a type change is just a new
// translation of what the API server left in spec and status.
//
// # Endpoints
//
// EndpointSlices are joined to their Service by the kubernetes.io/service-name
// label and to a Service port by port name and protocol. Only slices of the
// family's addressType are read (never FQDN), slices labelled
// service.kubernetes.io/headless are ignored, only an endpoint's first
// address counts, and an endpoint in several slices is kept once (a
// non-terminating copy wins over a terminating one).
//
// Backends follow kube-proxy's CategorizeEndpoints: ready endpoints, or, when
// none is ready, serving-and-terminating ones, decided separately for Cluster
// and for Local policy. Topology applies to Cluster policy only: node hints
// (hints.forNodes, PreferSameNode) when every ready endpoint has one and one
// names this node, else zone hints (hints.forZones) when every ready
// endpoint has one and one names this node's zone, else none. The Service's
// trafficDistribution is not read; the EndpointSlice controller turns it
// into hints. publishNotReadyAddresses is not read either: kube-proxy relies
// on the EndpointSlice controller marking those endpoints ready.
//
// internalTrafficPolicy=Local gives ClusterIP traffic the local endpoints
// only; externalTrafficPolicy=Local (for NodePort and LoadBalancer
// Services, and ClusterIP Services with externalIPs) does the same for
// external frontends. When the two halves get different backends the port
// becomes two model services, Scope "internal" (ClusterIP) and "external"
// (the rest); otherwise one with Scope "". A model service without backends
// has IfEmpty Reject when the Service has no usable endpoint anywhere and
// Drop when it has some but a Local policy selects none.
//
// sessionAffinity ClientIP sets AffinityTimeout (10800s by default).
// loadBalancerSourceRanges are trimmed, parsed, filtered to the family and
// set on the model service holding LoadBalancer frontends; a zero-length
// prefix, or no range of the family, allows all; when a range contains
// Config.NodeIP the LoadBalancer IPs are allowed too, as kube-proxy does.
//
// Services labelled service.kubernetes.io/service-proxy-name are translated
// only when the label equals a non-empty Config.ProxyName; unlabelled
// Services always are. EndpointSlices are not filtered by that label (as in
// kube-proxy, whose informer filters Services only): a slice counts through
// its Service.
//
// # Bad input
//
// Bad input never stops translation. An invalid address or CIDR, an
// out-of-range port, an SCTP port, a duplicate port name or a conflicting
// frontend is a Problem naming the object and the field; the offending item
// is left out and everything else is translated.
//
// # Deliberate differences from kube-proxy
//
//   - Frontend conflicts (two Services claiming one address:port/protocol):
//     kube-proxy writes both rules and one wins by map order. Here the
//     Service created first, then the lower namespace/name, wins; each loser
//     gets a Problem and loses that frontend only.
//   - SCTP ports are Problems: the dataplane supports TCP and UDP only.
//   - externalTrafficPolicy=Local short-circuit: kube-proxy sends traffic to
//     an external frontend that comes from a pod or from the node itself to
//     the Cluster-policy endpoints (as if it had gone out to the load
//     balancer and come back). The model has one backend set per frontend,
//     so the external model service carries only the Local backends; the
//     dataplane may implement the short-circuit by also using the internal
//     model service's backends for such traffic.
//   - Duplicate port names with different protocols (invalid in the API):
//     kube-proxy keeps both; model service names have no protocol, so the
//     later port wins and the earlier is a Problem (as kube-proxy does for
//     an identical name and protocol).
//   - Unparseable entries that kube-proxy only logs (externalIPs, source
//     ranges, endpoint ports and addresses) are Problems; kube-proxy's
//     choice of what to program is kept. Like kube-proxy, an invalid
//     source range is left out, and if none is left the Service is open.
//   - Where kube-proxy depends on map order, a fixed order is used: slices
//     are read in namespace/name order, so of two non-terminating copies of
//     one endpoint the one in the later slice wins.
//   - Addresses that kube-proxy would try to program in the wrong family (an
//     IPv6 endpoint in an IPv4 slice, a clusterIP that contradicts
//     spec.ipFamilies) are Problems and left out.
//   - An unset EndpointSlice port protocol is TCP (the API default); an
//     out-of-range session affinity timeout is a Problem and the default
//     is used.
//   - NodePorts never answer on loopback addresses (as in the nftables
//     proxier; kube-proxy's iptables localhost NodePorts are not modelled).
package translate
