package integration

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"

	"github.com/straitlb/strait/controlplane/bgpconfig"
	"github.com/straitlb/strait/internal/kubetest"
)

// The CRDs install on a real apiserver; valid objects are accepted (with
// defaults applied) and read back into the typed structs; invalid ones are
// rejected by the OpenAPI schema and CEL rules with a message naming the
// field.
func TestLBIPAMCRDValidation(t *testing.T) {
	cp := kubetest.Start(t)
	dyn := installCRDs(t, cp)
	ctx := t.Context()

	valid := []string{`
apiVersion: strait.io/v1alpha1
kind: LoadBalancerIPPool
metadata: {name: pool-a}
spec:
  cidrs: ["203.0.113.0/28", "2001:db8::/120"]
  ranges: ["198.51.100.10-198.51.100.20"]
  serviceSelector: {matchExpressions: [{key: app, operator: In, values: [web]}]}
`, `
apiVersion: strait.io/v1alpha1
kind: BGPPeer
metadata: {name: tor-a}
spec: {address: 10.1.0.1, peerASN: 4200000000, localASN: 65000, holdTime: 1m30s, keepaliveTime: 30s,
  ebgpMultihopTTL: 2, sourceAddress: 10.1.0.2, passwordSecretRef: {name: bgp}, nodeSelector: {matchLabels: {rack: a}}}
`, `
apiVersion: strait.io/v1alpha1
kind: BGPAdvertisement
metadata: {name: adv}
spec: {ipPools: [pool-a], communities: ["65000:100", no-export], largeCommunities: ["4200000000:1:2"],
  localPref: 200, aggregationLength: 28, aggregationLengthV6: 124, peers: [tor-a]}
`}
	var objs bgpconfig.Objects
	for _, doc := range valid {
		u, err := applyCR(ctx, dyn, doc)
		if err != nil {
			t.Fatalf("valid object rejected: %v\n%s", err, doc)
		}
		if err := objs.AddUnstructured(u); err != nil {
			t.Fatal(err)
		}
	}
	// Defaults.
	if p := objs.Pools[0].Spec; p.AutoAssign == nil || !*p.AutoAssign {
		t.Errorf("autoAssign not defaulted to true: %+v", p)
	}
	if p := objs.Peers[0].Spec; p.Port != 179 || p.PasswordSecretRef.Namespace != "strait-system" || p.PasswordSecretRef.Key != "password" {
		t.Errorf("peer defaults: %+v %+v", p, p.PasswordSecretRef)
	}
	// What the apiserver accepted, Convert accepts.
	conv := bgpconfig.Convert(bgpconfig.Input{Objects: objs, Secrets: map[types.NamespacedName]map[string][]byte{
		{Namespace: "strait-system", Name: "bgp"}: {"password": []byte("pw")},
	}})
	if err := conv.Err(); err != nil || len(conv.Pools) != 1 || len(conv.Peers) != 1 || len(conv.Advertisements) != 1 {
		t.Errorf("convert: %v %+v", err, conv)
	}

	invalid := []struct{ doc, want string }{
		{`{apiVersion: strait.io/v1alpha1, kind: LoadBalancerIPPool, metadata: {name: x}, spec: {cidrs: ["10.0.0.300/24"]}}`, "must be a CIDR"},
		{`{apiVersion: strait.io/v1alpha1, kind: LoadBalancerIPPool, metadata: {name: x}, spec: {cidrs: ["10.0.0.1/24"]}}`, "host bits"},
		{`{apiVersion: strait.io/v1alpha1, kind: LoadBalancerIPPool, metadata: {name: x}, spec: {ranges: ["10.0.0.9-2001:db8::1"]}}`, "same family"},
		{`{apiVersion: strait.io/v1alpha1, kind: LoadBalancerIPPool, metadata: {name: x}, spec: {autoAssign: false}}`, "at least one of cidrs and ranges"},
		{`{apiVersion: strait.io/v1alpha1, kind: LoadBalancerIPPool, metadata: {name: x}, spec: {cidrs: ["10.0.0.0/24"], cidr: x}}`, `unknown field "spec.cidr"`},
		{`{apiVersion: strait.io/v1alpha1, kind: BGPPeer, metadata: {name: x}, spec: {address: 10.0.0.1, peerASN: 0, localASN: 1}}`, "spec.peerASN"},
		{`{apiVersion: strait.io/v1alpha1, kind: BGPPeer, metadata: {name: x}, spec: {address: 10.0.0.1, peerASN: 4294967296, localASN: 1}}`, "spec.peerASN"},
		{`{apiVersion: strait.io/v1alpha1, kind: BGPPeer, metadata: {name: x}, spec: {address: 10.0.0.1, peerASN: 1, localASN: 1, port: 70000}}`, "spec.port"},
		{`{apiVersion: strait.io/v1alpha1, kind: BGPPeer, metadata: {name: x}, spec: {address: 10.0.0, peerASN: 1, localASN: 2}}`, "must be an IP address"},
		{`{apiVersion: strait.io/v1alpha1, kind: BGPPeer, metadata: {name: x}, spec: {address: 10.0.0.1, peerASN: 1, localASN: 1, ebgpMultihopTTL: 3}}`, "only for eBGP"},
		{`{apiVersion: strait.io/v1alpha1, kind: BGPPeer, metadata: {name: x}, spec: {address: 10.0.0.1, peerASN: 1, localASN: 2, holdTime: 1s}}`, "between 3s and 65535s"},
		{`{apiVersion: strait.io/v1alpha1, kind: BGPPeer, metadata: {name: x}, spec: {address: 10.0.0.1, peerASN: 1, localASN: 2, holdTime: 9s, keepaliveTime: 9s}}`, "keepaliveTime must be less than holdTime"},
		{`{apiVersion: strait.io/v1alpha1, kind: BGPPeer, metadata: {name: x}, spec: {address: 10.0.0.1, peerASN: 1, localASN: 2, sourceAddress: "2001:db8::1"}}`, "family of address"},
		{`{apiVersion: strait.io/v1alpha1, kind: BGPAdvertisement, metadata: {name: x}, spec: {communities: ["70000:1"]}}`, "both halves"},
		{`{apiVersion: strait.io/v1alpha1, kind: BGPAdvertisement, metadata: {name: x}, spec: {communities: ["bogus"]}}`, "spec.communities[0]"},
		{`{apiVersion: strait.io/v1alpha1, kind: BGPAdvertisement, metadata: {name: x}, spec: {aggregationLength: 33}}`, "spec.aggregationLength"},
		{`{apiVersion: strait.io/v1alpha1, kind: BGPAdvertisement, metadata: {name: x}, spec: {nodeSelector: {matchExpressions: [{key: a, operator: Near}]}}}`, "operator"},
	}
	for _, c := range invalid {
		_, err := applyCR(ctx, dyn, c.doc)
		if err == nil {
			t.Errorf("accepted: %s", c.doc)
			continue
		}
		if !isInvalid(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s\n  rejected with %q, want a message containing %q", c.doc, describe(err), c.want)
		}
	}
}
