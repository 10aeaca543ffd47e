package translate

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/straitlb/strait/model"
)

// addrField is an address and the field it came from.
type addrField struct {
	addr  netip.Addr
	field string
}

// portInfo is one usable Service port.
type portInfo struct {
	index         int
	name          string
	proto         v1.Protocol // TCP or UDP, defaulted
	mproto        model.Protocol
	port          uint16
	nodePort      uint16 // 0: none
	nodePortField string
}

// serviceInfo is what kube-proxy's BaseServicePortInfo holds, for the
// Service as a whole and already filtered to the translated family.
type serviceInfo struct {
	name         types.NamespacedName
	obj          *v1.Service
	clusterIP    addrField
	externalIPs  []addrField
	lbVIPs       []addrField
	sourceRanges []netip.Prefix
	affinity     time.Duration
	// externalPolicyLocal and internalPolicyLocal are kube-proxy's
	// apiservice.ExternalPolicyLocal and InternalPolicyLocal.
	externalPolicyLocal bool
	internalPolicyLocal bool
	ports               []portInfo
}

// parseService reads the Service for cfg's family. It returns nil when the
// Service gets no frontends at all for that family: ExternalName, headless,
// no clusterIP of the family, or an unusable clusterIP (a Problem).
func parseService(cfg Config, svc *v1.Service, probs *problems) *serviceInfo {
	if svc.Spec.Type == v1.ServiceTypeExternalName {
		return nil
	}
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == v1.ClusterIPNone {
		return nil
	}
	info := &serviceInfo{
		name: types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name},
		obj:  svc,
	}
	family := cfg.family()
	cip, ok := clusterIPByFamily(family, svc, info.name, probs)
	if !ok {
		return nil
	}
	info.clusterIP = cip
	info.ports = parsePorts(svc, info.name, probs)

	for i, s := range svc.Spec.ExternalIPs {
		if strings.TrimSpace(s) == "" {
			continue // kube-proxy skips empty entries silently
		}
		field := fmt.Sprintf("spec.externalIPs[%d]", i)
		a, err := parseIP(s)
		if err != nil {
			probs.add(info.name, field, fmt.Errorf("parse externalIP %q: %w", s, err))
			continue
		}
		if familyOf(a) == family {
			info.externalIPs = append(info.externalIPs, addrField{a, field})
		}
	}

	for i, ing := range svc.Status.LoadBalancer.Ingress {
		// Hostname-only ingress is not an IP to program; ipMode Proxy
		// means the load balancer proxies to the nodes, so kube-proxy
		// does not program (nor short-circuit) the IP at all.
		if ing.IP == "" || (ing.IPMode != nil && *ing.IPMode != v1.LoadBalancerIPModeVIP) {
			continue
		}
		field := fmt.Sprintf("status.loadBalancer.ingress[%d].ip", i)
		a, err := parseIP(ing.IP)
		if err != nil {
			probs.add(info.name, field, fmt.Errorf("parse loadBalancer ingress IP %q: %w", ing.IP, err))
			continue
		}
		if familyOf(a) == family {
			info.lbVIPs = append(info.lbVIPs, addrField{a, field})
		}
	}

	info.sourceRanges = parseSourceRanges(cfg, svc, info, probs)
	info.affinity = parseAffinity(svc, info.name, probs)

	typ := svc.Spec.Type
	externallyAccessibleType := typ == v1.ServiceTypeLoadBalancer || typ == v1.ServiceTypeNodePort ||
		((typ == v1.ServiceTypeClusterIP || typ == "") && len(svc.Spec.ExternalIPs) > 0)
	info.externalPolicyLocal = externallyAccessibleType &&
		svc.Spec.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal
	info.internalPolicyLocal = svc.Spec.InternalTrafficPolicy != nil &&
		*svc.Spec.InternalTrafficPolicy == v1.ServiceInternalTrafficPolicyLocal
	return info
}

// clusterIPByFamily follows kube-proxy's GetClusterIPByFamily: with
// spec.ipFamilies set, the clusterIP is spec.clusterIPs at the family's
// index; without, spec.clusterIP when it is of the family.
func clusterIPByFamily(family v1.IPFamily, svc *v1.Service, name types.NamespacedName, probs *problems) (addrField, bool) {
	if len(svc.Spec.IPFamilies) == 0 {
		a, err := parseIP(svc.Spec.ClusterIP)
		if err != nil {
			probs.add(name, "spec.clusterIP", fmt.Errorf("parse clusterIP %q: %w", svc.Spec.ClusterIP, err))
			return addrField{}, false
		}
		return addrField{a, "spec.clusterIP"}, familyOf(a) == family
	}
	idx := slices.Index(svc.Spec.IPFamilies, family)
	if idx < 0 || idx >= len(svc.Spec.ClusterIPs) {
		return addrField{}, false
	}
	s := svc.Spec.ClusterIPs[idx]
	field := fmt.Sprintf("spec.clusterIPs[%d]", idx)
	a, err := parseIP(s)
	if err != nil {
		probs.add(name, field, fmt.Errorf("parse clusterIP %q: %w", s, err))
		return addrField{}, false
	}
	if familyOf(a) != family {
		probs.add(name, field, fmt.Errorf("clusterIP %q is not %s as spec.ipFamilies[%d] says", s, family, idx))
		return addrField{}, false
	}
	return addrField{a, field}, true
}

// parsePorts returns the Service's usable ports. SCTP and unknown
// protocols, out-of-range ports and duplicate names are Problems.
func parsePorts(svc *v1.Service, name types.NamespacedName, probs *problems) []portInfo {
	var ports []portInfo
	byName := make(map[string]int)
	for i, p := range svc.Spec.Ports {
		pi := portInfo{index: i, name: p.Name}
		switch p.Protocol {
		case v1.ProtocolTCP, "":
			pi.proto, pi.mproto = v1.ProtocolTCP, model.TCP
		case v1.ProtocolUDP:
			pi.proto, pi.mproto = v1.ProtocolUDP, model.UDP
		case v1.ProtocolSCTP:
			probs.add(name, fmt.Sprintf("spec.ports[%d].protocol", i), errors.New("SCTP not supported"))
			continue
		default:
			probs.add(name, fmt.Sprintf("spec.ports[%d].protocol", i), fmt.Errorf("unsupported protocol %q", p.Protocol))
			continue
		}
		if p.Port < 1 || p.Port > 65535 {
			probs.add(name, fmt.Sprintf("spec.ports[%d].port", i), fmt.Errorf("port %d out of range [1, 65535]", p.Port))
			continue
		}
		pi.port = uint16(p.Port)
		if p.NodePort != 0 {
			field := fmt.Sprintf("spec.ports[%d].nodePort", i)
			if p.NodePort < 1 || p.NodePort > 65535 {
				probs.add(name, field, fmt.Errorf("nodePort %d out of range [1, 65535]", p.NodePort))
			} else {
				pi.nodePort, pi.nodePortField = uint16(p.NodePort), field
			}
		}
		if j, dup := byName[p.Name]; dup {
			// kube-proxy keys ports by name: the later one wins.
			probs.add(name, fmt.Sprintf("spec.ports[%d].name", ports[j].index),
				fmt.Errorf("duplicate port name %q: spec.ports[%d] is used instead", p.Name, i))
			ports[j] = pi
			continue
		}
		byName[p.Name] = len(ports)
		ports = append(ports, pi)
	}
	return ports
}

// parseSourceRanges follows kube-proxy: entries are trimmed, invalid ones
// ignored (here with a Problem), the other family's dropped, and a
// zero-length prefix means "allow all" like an empty list. When a range
// contains the node's own IP, the LoadBalancer IPs are allowed too.
func parseSourceRanges(cfg Config, svc *v1.Service, info *serviceInfo, probs *problems) []netip.Prefix {
	var out []netip.Prefix
	allowAll := false
	for i, raw := range svc.Spec.LoadBalancerSourceRanges {
		s := strings.TrimSpace(raw)
		if s == "" {
			continue
		}
		p, err := parseCIDR(s)
		if err != nil {
			probs.add(info.name, fmt.Sprintf("spec.loadBalancerSourceRanges[%d]", i),
				fmt.Errorf("parse loadBalancerSourceRange %q: %w", raw, err))
			continue
		}
		if prefixFamily(p) != cfg.family() {
			continue
		}
		if p.Bits() == 0 {
			allowAll = true
		}
		out = append(out, p)
	}
	if allowAll || len(out) == 0 {
		return nil
	}
	if node := cfg.NodeIP.Unmap(); node.IsValid() && slices.ContainsFunc(out, func(p netip.Prefix) bool { return p.Contains(node) }) {
		for _, vip := range info.lbVIPs {
			out = append(out, hostPrefix(vip.addr))
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(out)
}

// parseAffinity returns the ClientIP affinity timeout, 0 for none. The API
// server defaults the timeout to 10800s and bounds it to (0, 86400]; an
// out-of-range value is a Problem and the default is used.
func parseAffinity(svc *v1.Service, name types.NamespacedName, probs *problems) time.Duration {
	if svc.Spec.SessionAffinity != v1.ServiceAffinityClientIP {
		return 0
	}
	secs := int32(DefaultAffinityTimeoutSeconds)
	if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
		secs = *c.ClientIP.TimeoutSeconds
	}
	d := time.Duration(secs) * time.Second
	if secs <= 0 || d > model.MaxAffinityTimeout {
		probs.add(name, "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
			fmt.Errorf("timeout %ds out of range (0, %d]; using %ds", secs, int(model.MaxAffinityTimeout.Seconds()), DefaultAffinityTimeoutSeconds))
		d = DefaultAffinityTimeoutSeconds * time.Second
	}
	return d
}
