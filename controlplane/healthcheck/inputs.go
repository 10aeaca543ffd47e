package healthcheck

import (
	"net/netip"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/straitlb/strait/controlplane/translate"
)

// NodePorts returns the healthCheckNodePort of every Service that needs
// one, as kube-proxy's ServicePortMap.HealthCheckNodePorts: a LoadBalancer
// Service with externalTrafficPolicy Local and a healthCheckNodePort, that
// this proxy serves (proxyName as in translate.Config.ProxyName), that has
// a clusterIP of family and at least one port.
func NodePorts(services []*v1.Service, family v1.IPFamily, proxyName string) map[types.NamespacedName]uint16 {
	if family == "" {
		family = v1.IPv4Protocol
	}
	out := make(map[types.NamespacedName]uint16)
	for _, svc := range services {
		if svc == nil || !needsHealthCheck(svc) || !serves(svc, family, proxyName) {
			continue
		}
		p := svc.Spec.HealthCheckNodePort
		if p <= 0 || p > 65535 {
			continue
		}
		out[types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}] = uint16(p)
	}
	return out
}

func needsHealthCheck(svc *v1.Service) bool {
	return svc.Spec.Type == v1.ServiceTypeLoadBalancer &&
		svc.Spec.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal
}

// serves reports whether kube-proxy would build service ports for svc.
func serves(svc *v1.Service, family v1.IPFamily, proxyName string) bool {
	if name, ok := svc.Labels[translate.LabelServiceProxyName]; ok && (proxyName == "" || name != proxyName) {
		return false
	}
	if svc.Spec.Type == v1.ServiceTypeExternalName || svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == v1.ClusterIPNone {
		return false
	}
	if len(svc.Spec.Ports) == 0 {
		return false
	}
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 {
		ips = []string{svc.Spec.ClusterIP}
	}
	for _, s := range ips {
		if a, err := netip.ParseAddr(s); err == nil && familyOf(a) == family {
			return true
		}
	}
	return false
}

func familyOf(a netip.Addr) v1.IPFamily {
	if a.Unmap().Is4() {
		return v1.IPv4Protocol
	}
	return v1.IPv6Protocol
}

// LocalReadyEndpoints counts, per Service, the distinct addresses of the
// ready endpoints on nodeName, as kube-proxy's
// EndpointsMap.LocalReadyEndpoints: EndpointSlices of the family's address
// type, endpoints with an address (the first counts) on a slice port with a
// name and a port number, ready unless conditions.ready is false.
// Terminating endpoints are not counted even if serving, so a node with only
// terminating endpoints fails the health check.
func LocalReadyEndpoints(slices []*discoveryv1.EndpointSlice, nodeName string, family v1.IPFamily) map[types.NamespacedName]int {
	if family == "" {
		family = v1.IPv4Protocol
	}
	addrType := discoveryv1.AddressTypeIPv4
	if family == v1.IPv6Protocol {
		addrType = discoveryv1.AddressTypeIPv6
	}
	ips := make(map[types.NamespacedName]map[string]bool)
	for _, eps := range slices {
		if eps == nil || eps.AddressType != addrType {
			continue
		}
		if _, headless := eps.Labels[v1.IsHeadlessService]; headless {
			continue
		}
		svcName := eps.Labels[discoveryv1.LabelServiceName]
		if svcName == "" || !hasUsablePort(eps) {
			continue
		}
		nsn := types.NamespacedName{Namespace: eps.Namespace, Name: svcName}
		for _, ep := range eps.Endpoints {
			if len(ep.Addresses) == 0 || ep.NodeName == nil || *ep.NodeName != nodeName {
				continue
			}
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			addr := ep.Addresses[0]
			if a, err := netip.ParseAddr(addr); err == nil {
				addr = a.String()
			}
			if ips[nsn] == nil {
				ips[nsn] = make(map[string]bool)
			}
			ips[nsn][addr] = true
		}
	}
	out := make(map[types.NamespacedName]int, len(ips))
	for nsn, set := range ips {
		out[nsn] = len(set)
	}
	return out
}

func hasUsablePort(eps *discoveryv1.EndpointSlice) bool {
	for _, p := range eps.Ports {
		if p.Name != nil && p.Port != nil && *p.Port != 0 {
			return true
		}
	}
	return false
}
