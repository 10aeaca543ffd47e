package cpbench

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// Namespace holds the benchmark's objects.
const Namespace = "bench"

// ServiceName is the i-th Service.
func ServiceName(i int) string { return fmt.Sprintf("svc-%05d", i) }

// ClusterIP is the i-th Service's address in 198.19.0.0/16 (skipping .0.0
// and .0.1, the apiserver's own).
func ClusterIP(i int) netip.Addr {
	n := i + 16
	return netip.AddrFrom4([4]byte{198, 19, byte(n >> 8), byte(n)})
}

// EndpointIP is endpoint j of Service i, in 198.18.0.0/15.
func EndpointIP(i, j, e int) netip.Addr {
	n := i*e + j
	return netip.AddrFrom4([4]byte{198, 18 + byte(n>>16), byte(n >> 8), byte(n)})
}

// Slice is Service i's EndpointSlice with e ready endpoints.
func Slice(i, e int, node string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: ServiceName(i) + "-1", Namespace: Namespace,
			Labels: map[string]string{discoveryv1.LabelServiceName: ServiceName(i)}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(v1.ProtocolTCP), Port: ptr.To[int32](8080)}},
	}
	for j := range e {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{EndpointIP(i, j, e).String()},
			NodeName:   ptr.To(node),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
		})
	}
	return s
}

// Create makes n Services with e endpoints each, with workers in parallel.
func Create(ctx context.Context, c kubernetes.Interface, n, e, workers int) error {
	if _, err := c.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace: %w", err)
	}
	idx := make(chan int)
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				svc := &v1.Service{
					ObjectMeta: metav1.ObjectMeta{Name: ServiceName(i), Namespace: Namespace},
					Spec: v1.ServiceSpec{ClusterIP: ClusterIP(i).String(),
						Ports: []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}}},
				}
				if _, err := c.CoreV1().Services(Namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
					errc <- fmt.Errorf("create service %d: %w", i, err)
					return
				}
				if _, err := c.DiscoveryV1().EndpointSlices(Namespace).Create(ctx, Slice(i, e, "bench-node"), metav1.CreateOptions{}); err != nil {
					errc <- fmt.Errorf("create endpointslice %d: %w", i, err)
					return
				}
			}
		}()
	}
	var err error
loop:
	for i := range n {
		select {
		case idx <- i:
		case err = <-errc:
			break loop
		}
	}
	close(idx)
	wg.Wait()
	if err != nil {
		return err
	}
	select {
	case err = <-errc:
	default:
	}
	return err
}
