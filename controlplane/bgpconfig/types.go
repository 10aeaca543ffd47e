package bgpconfig

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Group and version of the custom resources.
const (
	Group   = "strait.io"
	Version = "v1alpha1"
)

// SchemeGroupVersion is strait.io/v1alpha1.
var SchemeGroupVersion = schema.GroupVersion{Group: Group, Version: Version}

// Kinds.
const (
	KindLoadBalancerIPPool = "LoadBalancerIPPool"
	KindBGPPeer            = "BGPPeer"
	KindBGPAdvertisement   = "BGPAdvertisement"
)

// Resources for the dynamic client.
var (
	LoadBalancerIPPoolResource = SchemeGroupVersion.WithResource("loadbalancerippools")
	BGPPeerResource            = SchemeGroupVersion.WithResource("bgppeers")
	BGPAdvertisementResource   = SchemeGroupVersion.WithResource("bgpadvertisements")
)

// DefaultSecretNamespace is the namespace of a passwordSecretRef that names
// none.
const DefaultSecretNamespace = "strait-system"

// DefaultSecretKey is the key of a passwordSecretRef that names none.
const DefaultSecretKey = "password"

// LoadBalancerIPPool is a set of addresses for Services of type
// LoadBalancer.
type LoadBalancerIPPool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   LoadBalancerIPPoolSpec   `json:"spec"`
	Status LoadBalancerIPPoolStatus `json:"status,omitempty"`
}

// LoadBalancerIPPoolSpec is the desired pool.
type LoadBalancerIPPoolSpec struct {
	// CIDRs are prefixes, every address of which is in the pool.
	CIDRs []string `json:"cidrs,omitempty"`
	// Ranges are inclusive ranges "first-last" of one family.
	Ranges []string `json:"ranges,omitempty"`
	// AutoAssign (nil: true): Services that request neither a pool nor an
	// address get addresses from this pool.
	AutoAssign *bool `json:"autoAssign,omitempty"`
	// AvoidBuggyIPs skips IPv4 addresses ending in .0 and .255.
	AvoidBuggyIPs bool `json:"avoidBuggyIPs,omitempty"`
	// ServiceSelector and NamespaceSelector (nil: everything) restrict the
	// Services that may get addresses from the pool.
	ServiceSelector   *metav1.LabelSelector `json:"serviceSelector,omitempty"`
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
}

// LoadBalancerIPPoolStatus is written by the allocator.
type LoadBalancerIPPoolStatus struct {
	Assigned           int64 `json:"assigned,omitempty"`
	Available          int64 `json:"available,omitempty"`
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// BGPPeer is one BGP session the selected nodes dial out to.
type BGPPeer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec BGPPeerSpec `json:"spec"`
}

// BGPPeerSpec mirrors bgp.Peer.
type BGPPeerSpec struct {
	Address  string `json:"address"`
	PeerASN  uint32 `json:"peerASN"`
	LocalASN uint32 `json:"localASN"`
	// Port (0: 179).
	Port uint16 `json:"port,omitempty"`
	// HoldTime and KeepaliveTime are Go durations of whole seconds, such
	// as "90s".
	HoldTime          string                `json:"holdTime,omitempty"`
	KeepaliveTime     string                `json:"keepaliveTime,omitempty"`
	PasswordSecretRef *SecretKeySelector    `json:"passwordSecretRef,omitempty"`
	EBGPMultihopTTL   uint8                 `json:"ebgpMultihopTTL,omitempty"`
	SourceAddress     string                `json:"sourceAddress,omitempty"`
	GracefulRestart   bool                  `json:"gracefulRestart,omitempty"`
	NodeSelector      *metav1.LabelSelector `json:"nodeSelector,omitempty"`
}

// SecretKeySelector names one key of a Secret.
type SecretKeySelector struct {
	Name string `json:"name"`
	// Namespace (empty: strait-system).
	Namespace string `json:"namespace,omitempty"`
	// Key (empty: "password").
	Key string `json:"key,omitempty"`
}

// BGPAdvertisement says how the addresses of some pools are announced.
type BGPAdvertisement struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec BGPAdvertisementSpec `json:"spec,omitempty"`
}

// BGPAdvertisementSpec mirrors bgp.AdvertisementConfig, plus the pools it
// covers: those named in IPPools and those PoolSelector selects (neither:
// every pool).
type BGPAdvertisementSpec struct {
	IPPools             []string              `json:"ipPools,omitempty"`
	PoolSelector        *metav1.LabelSelector `json:"poolSelector,omitempty"`
	Communities         []string              `json:"communities,omitempty"`
	LargeCommunities    []string              `json:"largeCommunities,omitempty"`
	LocalPref           *uint32               `json:"localPref,omitempty"`
	AggregationLength   int                   `json:"aggregationLength,omitempty"`
	AggregationLengthV6 int                   `json:"aggregationLengthV6,omitempty"`
	Peers               []string              `json:"peers,omitempty"`
	NodeSelector        *metav1.LabelSelector `json:"nodeSelector,omitempty"`
}

// Objects is a set of configuration objects.
type Objects struct {
	Pools          []LoadBalancerIPPool
	Peers          []BGPPeer
	Advertisements []BGPAdvertisement
}
