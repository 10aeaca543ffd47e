package cpbench

import (
	"net/netip"
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/straitlb/strait/controlplane/translate"
)

func objects(n, e int) ([]*v1.Service, []*discoveryv1.EndpointSlice) {
	var svcs []*v1.Service
	var slices []*discoveryv1.EndpointSlice
	for i := range n {
		svcs = append(svcs, &v1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: ServiceName(i), Namespace: Namespace},
			Spec: v1.ServiceSpec{ClusterIP: ClusterIP(i).String(), ClusterIPs: []string{ClusterIP(i).String()},
				IPFamilies: []v1.IPFamily{v1.IPv4Protocol},
				Ports:      []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}}},
		})
		slices = append(slices, Slice(i, e, "bench-node"))
	}
	return svcs, slices
}

var benchCfg = translate.Config{NodeName: "bench-node", NodeAddresses: []netip.Addr{netip.MustParseAddr("192.0.2.11")},
	NodeIP: netip.MustParseAddr("192.0.2.11"), Family: v1.IPv4Protocol}

// BenchmarkTrackerReset is the translation part of a cold sync.
func BenchmarkTrackerReset(b *testing.B) {
	svcs, slices := objects(10000, 10)
	for b.Loop() {
		translate.NewTracker().Reset(benchCfg, svcs, slices)
	}
}

// BenchmarkTrackerUpdate is the translation part of one endpoint change.
func BenchmarkTrackerUpdate(b *testing.B) {
	svcs, slices := objects(10000, 10)
	tr := translate.NewTracker()
	tr.Reset(benchCfg, svcs, slices)
	nn := types.NamespacedName{Namespace: Namespace, Name: ServiceName(1234)}
	alt := Slice(1234, 10, "bench-node")
	alt.Endpoints = alt.Endpoints[1:]
	get := []func(types.NamespacedName) (*v1.Service, []*discoveryv1.EndpointSlice){
		func(types.NamespacedName) (*v1.Service, []*discoveryv1.EndpointSlice) {
			return svcs[1234], []*discoveryv1.EndpointSlice{alt}
		},
		func(types.NamespacedName) (*v1.Service, []*discoveryv1.EndpointSlice) {
			return svcs[1234], []*discoveryv1.EndpointSlice{slices[1234]}
		},
	}
	i := 0
	for b.Loop() {
		tr.Update([]types.NamespacedName{nn}, get[i%2])
		i++
	}
}
