package bgpconfig

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

const good = `
# pools
apiVersion: strait.io/v1alpha1
kind: LoadBalancerIPPool
metadata: {name: web, labels: {tier: web}}
spec:
  cidrs: ["203.0.113.0/30"]
  ranges: ["198.51.100.10-198.51.100.20"]
  serviceSelector: {matchLabels: {app: web}}
---
apiVersion: strait.io/v1alpha1
kind: LoadBalancerIPPool
metadata: {name: manual}
spec: {cidrs: ["192.0.2.0/24"], autoAssign: false}
---
apiVersion: v1
kind: Service
metadata: {name: ignored}
---
apiVersion: strait.io/v1alpha1
kind: BGPPeer
metadata: {name: tor-a}
spec:
  address: 10.1.0.1
  peerASN: 65001
  localASN: 65000
  holdTime: 30s
  passwordSecretRef: {name: bgp}
  ebgpMultihopTTL: 2
  nodeSelector: {matchLabels: {rack: a}}
---
apiVersion: strait.io/v1alpha1
kind: BGPAdvertisement
metadata: {name: web}
spec:
  poolSelector: {matchLabels: {tier: web}}
  communities: ["65000:100", "no-export"]
  largeCommunities: ["65000:1:2"]
  localPref: 200
  aggregationLength: 30
  peers: [tor-a]
`

func secrets() map[types.NamespacedName]map[string][]byte {
	return map[types.NamespacedName]map[string][]byte{{Namespace: "strait-system", Name: "bgp"}: {"password": []byte("s3cret")}}
}

// A good file decodes and converts into what bgp and the allocator use.
func TestDecodeAndConvert(t *testing.T) {
	objs, err := DecodeYAML([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs.Pools) != 2 || len(objs.Peers) != 1 || len(objs.Advertisements) != 1 {
		t.Fatalf("%+v", objs)
	}
	if refs := objs.SecretRefs(); len(refs) != 1 || refs[0].String() != "strait-system/bgp" {
		t.Fatalf("refs %v", refs)
	}
	c := Convert(Input{Objects: objs, Secrets: secrets()})
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	web, ok := c.Pool("web")
	if !ok || len(web.Ranges) != 2 || web.Size() != 4+11 || !web.AutoAssign || web.ServiceSelector == nil ||
		!web.Contains(netip.MustParseAddr("203.0.113.3")) || web.Contains(netip.MustParseAddr("203.0.113.4")) {
		t.Fatalf("pool %+v", web)
	}
	if m, _ := c.Pool("manual"); m.AutoAssign || m.Size() != 256 {
		t.Fatalf("manual %+v", m)
	}
	p := c.Peers[0]
	if p.Password != "s3cret" || p.HoldTime != 30*time.Second || p.EBGPMultihopTTL != 2 ||
		!p.NodeSelector.Matches(labels.Set{"rack": "a"}) || p.NodeSelector.Matches(labels.Set{"rack": "b"}) {
		t.Fatalf("peer %+v", p)
	}
	ad := c.Advertisements[0]
	if !slices.Equal(ad.Pools, []string{"web"}) || len(ad.Config.Communities) != 2 || len(ad.Config.LargeCommunities) != 1 ||
		*ad.Config.LocalPref != 200 || ad.Config.AggregationLength != 30 || !slices.Equal(ad.Config.Peers, []string{"tor-a"}) {
		t.Fatalf("ad %+v", ad)
	}
	if got := c.AdvertisementsFor(netip.MustParseAddr("198.51.100.15")); len(got) != 1 {
		t.Fatalf("AdvertisementsFor: %v", got)
	}
	if got := c.AdvertisementsFor(netip.MustParseAddr("192.0.2.1")); len(got) != 0 {
		t.Fatalf("AdvertisementsFor manual: %v", got)
	}
}

// Decode errors name the line, the object and the field; good documents
// are still returned.
func TestDecodeErrorsNameTheField(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{"apiVersion: strait.io/v1alpha1\nkind: BGPPeer\nmetadata: {name: x}\nspec: {address: 10.0.0.1, peerAsn: 1}\n", `BGPPeer "x": unknown field "spec.peerAsn"`},
		{"apiVersion: strait.io/v1alpha1\nkind: BGPPeer\nmetadata: {name: x}\nspec: {address: 10.0.0.1, peerASN: lots}\n", "spec.peerASN"},
		{"apiVersion: strait.io/v1alpha1\nkind: BGPPeer\nmetadata: {name: x}\nspec: {address: 10.0.0.1, peerASN: 4294967296}\n", "spec.peerASN"},
		{"apiVersion: strait.io/v1\nkind: BGPPeer\nmetadata: {name: x}\n", "field apiVersion"},
		{"apiVersion: strait.io/v1alpha1\nkind: BGPPeers\nmetadata: {name: x}\n", "field kind"},
		{"apiVersion: strait.io/v1alpha1\nkind: BGPPeer\nmetadata: {}\n", "field metadata.name"},
	} {
		objs, err := DecodeYAML([]byte(good + "---\n" + c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "line 43:") {
			t.Errorf("%q: got %v, want %q", c.doc, err, c.want)
		}
		if len(objs.Pools) != 2 {
			t.Errorf("good documents lost: %+v", objs)
		}
	}
}

func errFor(c Config, kind, name string) error {
	for _, err := range c.Errors {
		var oe *ObjectError
		if errors.As(err, &oe) && oe.Kind == kind && oe.Name == name {
			return err
		}
	}
	return nil
}

// Each bad object gets its own error and is left out; the good ones are
// unaffected. Conflicts are won by the older object.
func TestConvertErrorsPerObject(t *testing.T) {
	old := metav1.NewTime(time.Unix(1000, 0))
	pool := func(name string, ts metav1.Time, cidrs ...string) LoadBalancerIPPool {
		return LoadBalancerIPPool{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: ts}, Spec: LoadBalancerIPPoolSpec{CIDRs: cidrs}}
	}
	peer := func(name, addr string, asn uint32) BGPPeer {
		return BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: BGPPeerSpec{Address: addr, PeerASN: asn, LocalASN: 65000}}
	}
	in := Input{Objects: Objects{
		Pools: []LoadBalancerIPPool{
			pool("good", old, "10.0.0.0/24"),
			pool("a-newer-overlap", metav1.NewTime(time.Unix(2000, 0)), "10.0.0.128/25"),
			pool("badcidr", old, "10.0.0.300/24"),
			pool("hostbits", old, "10.1.0.1/24"),
			pool("empty", old),
			{ObjectMeta: metav1.ObjectMeta{Name: "badrange"}, Spec: LoadBalancerIPPoolSpec{Ranges: []string{"10.2.0.9-10.2.0.1"}}},
		},
		Peers: []BGPPeer{
			func() BGPPeer { p := peer("good", "10.9.0.1", 65001); p.CreationTimestamp = old; return p }(),
			peer("asn0", "10.9.0.2", 0),
			peer("badaddr", "10.9.0", 65001),
			func() BGPPeer {
				p := peer("dupaddr", "10.9.0.1", 65002)
				p.CreationTimestamp = metav1.NewTime(time.Unix(2000, 0))
				return p
			}(),
			func() BGPPeer {
				p := peer("nosecret", "10.9.0.3", 65001)
				p.Spec.PasswordSecretRef = &SecretKeySelector{Name: "missing"}
				return p
			}(),
			func() BGPPeer {
				p := peer("hold", "10.9.0.4", 65001)
				p.Spec.HoldTime = "1s"
				return p
			}(),
		},
		Advertisements: []BGPAdvertisement{
			{ObjectMeta: metav1.ObjectMeta{Name: "unknownpool"}, Spec: BGPAdvertisementSpec{IPPools: []string{"good", "nope"}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "badcommunity"}, Spec: BGPAdvertisementSpec{Communities: []string{"70000:1"}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "onlybadpeer"}, Spec: BGPAdvertisementSpec{Peers: []string{"asn0"}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "all"}},
		},
	}}
	c := Convert(in)
	for _, w := range []struct{ kind, name, want string }{
		{KindLoadBalancerIPPool, "a-newer-overlap", `overlaps 10.0.0.0-10.0.0.255 of older pool "good"`},
		{KindLoadBalancerIPPool, "badcidr", "field spec.cidrs[0]: invalid CIDR"},
		{KindLoadBalancerIPPool, "hostbits", "host bits set"},
		{KindLoadBalancerIPPool, "empty", "at least one of cidrs and ranges"},
		{KindLoadBalancerIPPool, "badrange", "field spec.ranges[0]"},
		{KindBGPPeer, "asn0", "peer ASN 0"},
		{KindBGPPeer, "badaddr", "field spec.address"},
		{KindBGPPeer, "dupaddr", `older peer "good"`},
		{KindBGPPeer, "nosecret", "Secret strait-system/missing not found"},
		{KindBGPPeer, "hold", "hold time 1s out of range"},
		{KindBGPAdvertisement, "unknownpool", `field spec.ipPools[1]: LoadBalancerIPPool "nope"`},
		{KindBGPAdvertisement, "badcommunity", "field spec.communities"},
		{KindBGPAdvertisement, "onlybadpeer", "no valid peer left"},
	} {
		err := errFor(c, w.kind, w.name)
		if err == nil || !strings.Contains(err.Error(), w.want) {
			t.Errorf("%s %s: got %v, want %q", w.kind, w.name, err, w.want)
		}
	}
	if len(c.Pools) != 1 || c.Pools[0].Name != "good" || len(c.Peers) != 1 || c.Peers[0].Name != "good" {
		t.Fatalf("valid objects: pools %+v peers %+v", c.Pools, c.Peers)
	}
	names := []string{}
	for _, a := range c.Advertisements {
		names = append(names, a.Name+":"+strings.Join(a.Pools, ","))
	}
	if !slices.Equal(names, []string{"all:good", "unknownpool:good"}) {
		t.Fatalf("advertisements %v", names)
	}
}

// Objects read through the dynamic client convert strictly.
func TestAddUnstructured(t *testing.T) {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "strait.io/v1alpha1", "kind": "BGPPeer", "metadata": map[string]any{"name": "p"},
		"spec": map[string]any{"address": "10.0.0.1", "peerASN": int64(4200000000), "localASN": int64(65000), "port": int64(1179)},
	}}
	var o Objects
	if err := o.AddUnstructured(u); err != nil || o.Peers[0].Spec.PeerASN != 4200000000 || o.Peers[0].Spec.Port != 1179 {
		t.Fatalf("%v %+v", err, o)
	}
	unstructured.SetNestedField(u.Object, "x", "spec", "bogus")
	if err := o.AddUnstructured(u); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("unknown field: %v", err)
	}
}

func TestRanges(t *testing.T) {
	r := RangeOfPrefix(netip.MustParsePrefix("2001:db8::/64"))
	if r.Last != netip.MustParseAddr("2001:db8::ffff:ffff:ffff:ffff") || r.size() != 1<<64-1 {
		t.Fatalf("%v %d", r, r.size())
	}
	p := Pool{Ranges: []Range{RangeOfPrefix(netip.MustParsePrefix("10.0.0.0/23"))}, AvoidBuggyIPs: true}
	if p.Size() != 512-4 {
		t.Fatalf("size %d", p.Size())
	}
	if _, err := ParseRange("10.0.0.1-2001:db8::1"); err == nil {
		t.Fatal("mixed families accepted")
	}
}
