package translate

import (
	"slices"

	v1 "k8s.io/api/core/v1"
)

// categorized is the result of kube-proxy's CategorizeEndpoints.
type categorized struct {
	// cluster are the endpoints for Cluster traffic policy, topology
	// applied; nil when the service never uses Cluster policy.
	cluster []endpoint
	// local are the endpoints for Local traffic policy (topology never
	// applies); nil when the service never uses Local policy.
	local []endpoint
	// hasAny is true when the service has a usable endpoint anywhere in
	// the cluster: with none, traffic is rejected rather than dropped.
	hasAny bool
}

// categorize is kube-proxy's CategorizeEndpoints. Usable means ready, or,
// when there is no ready endpoint (separately for Cluster and for Local),
// serving and terminating.
func categorize(eps []endpoint, usesCluster, usesLocal bool, nodeName, zone string) categorized {
	var c categorized
	if len(eps) == 0 {
		return c
	}
	if usesCluster {
		mode := topologyMode(eps, nodeName, zone)
		c.cluster = filter(eps, func(e endpoint) bool {
			return e.ready && availableForTopology(e, mode, nodeName, zone)
		})
		if len(c.cluster) == 0 {
			c.cluster = filter(eps, func(e endpoint) bool { return e.serving && e.terminating })
		}
		c.hasAny = len(c.cluster) > 0
	}
	if !usesLocal {
		return c
	}
	var localReady, localServingTerminating bool
	for _, e := range eps {
		switch {
		case e.ready:
			c.hasAny = true
			localReady = localReady || e.local
		case e.serving && e.terminating:
			c.hasAny = true
			localServingTerminating = localServingTerminating || e.local
		}
	}
	switch {
	case localReady:
		c.local = filter(eps, func(e endpoint) bool { return e.local && e.ready })
	case localServingTerminating:
		c.local = filter(eps, func(e endpoint) bool { return e.local && e.serving && e.terminating })
	}
	return c
}

// topologyMode is kube-proxy's topologyModeFromHints (with the
// PreferSameTrafficDistribution gate, GA and locked on since v1.35): node
// hints when every ready endpoint has one and one names this node; else
// zone hints when every ready endpoint has one and one names this zone;
// else none. The Service's trafficDistribution field itself is not read:
// the EndpointSlice controller turns it into hints.
func topologyMode(eps []endpoint, nodeName, zone string) string {
	hasReady := false
	allNodeHints, forNode := true, false
	allZoneHints, forZone := true, false
	for _, e := range eps {
		if !e.ready {
			continue
		}
		hasReady = true
		if len(e.nodeHints) == 0 {
			allNodeHints = false
		} else if slices.Contains(e.nodeHints, nodeName) {
			forNode = true
		}
		if len(e.zoneHints) == 0 {
			allZoneHints = false
		} else if slices.Contains(e.zoneHints, zone) {
			forZone = true
		}
	}
	switch {
	case !hasReady:
		return ""
	case allNodeHints && forNode:
		return v1.ServiceTrafficDistributionPreferSameNode
	case allZoneHints && forZone:
		return v1.ServiceTrafficDistributionPreferSameZone
	}
	return ""
}

func availableForTopology(e endpoint, mode, nodeName, zone string) bool {
	switch mode {
	case "":
		return true
	case v1.ServiceTrafficDistributionPreferSameNode:
		return slices.Contains(e.nodeHints, nodeName)
	case v1.ServiceTrafficDistributionPreferSameZone:
		return slices.Contains(e.zoneHints, zone)
	}
	return false
}

func filter(eps []endpoint, keep func(endpoint) bool) []endpoint {
	out := make([]endpoint, 0, len(eps))
	for _, e := range eps {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}
