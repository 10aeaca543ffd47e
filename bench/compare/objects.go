package compare

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/straitlb/strait/bench/cpbench"
	"github.com/straitlb/strait/bench/pktgen"
)

// Object plan.
const (
	Namespace  = "bench"
	NodeName   = "bench-node"   // the proxied node
	RemoteNode = "bench-remote" // where every endpoint lives: backends are remote
	Port       = 80
	TargetPort = 8080
)

// BackendNet holds every endpoint address; the sink counts packets to it.
var BackendNet = netip.MustParsePrefix("10.0.0.0/8")

// ServiceIP is Service i's ClusterIP (contiguous from 198.19.0.16, so the
// generator's destination base + i is Service i).
func ServiceIP(i int) netip.Addr { return cpbench.ClusterIP(i) }

// EndpointIP is endpoint j of Service i (e per Service), in 10.0.0.0/8.
func EndpointIP(i, j, e int) netip.Addr {
	n := uint32(i*e+j) + 1
	return netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)})
}

// CreateNode creates the proxied node with its InternalIP (kube-proxy
// waits for it).
func CreateNode(ctx context.Context, c kubernetes.Interface) error {
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: NodeName}}
	n, err := c.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create node: %w", err)
	}
	n.Status.Addresses = []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: pktgen.NodeIP.String()}}
	n.Status.Conditions = []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}}
	if _, err := c.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("node status: %w", err)
	}
	return nil
}

// CreateServices makes Services from..to-1 with e endpoints each.
func CreateServices(ctx context.Context, c kubernetes.Interface, from, to, e, workers int) error {
	if from == 0 {
		_, err := c.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace: %w", err)
		}
	}
	idx := make(chan int)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fail := func(err error) { once.Do(func() { first = err; cancel() }) }
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				if _, err := c.CoreV1().Services(Namespace).Create(ctx, Service(i), metav1.CreateOptions{}); err != nil {
					fail(fmt.Errorf("create service %d: %w", i, err))
					return
				}
				if _, err := c.DiscoveryV1().EndpointSlices(Namespace).Create(ctx, Slice(i, e), metav1.CreateOptions{}); err != nil {
					fail(fmt.Errorf("create endpointslice %d: %w", i, err))
					return
				}
			}
		}()
	}
loop:
	for i := from; i < to; i++ {
		select {
		case idx <- i:
		case <-ctx.Done():
			break loop
		}
	}
	close(idx)
	wg.Wait()
	return first
}

// Service is Service i: a ClusterIP Service, TCP and UDP on Port.
// Service 0 is a NodePort Service (RRNodePort, RRUDPNodePort; traffic
// policies Cluster): the request/response phase goes through it, and its
// ClusterIP serves the packet phases like every other.
func Service(i int) *v1.Service {
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: cpbench.ServiceName(i), Namespace: Namespace},
		Spec: v1.ServiceSpec{ClusterIP: ServiceIP(i).String(), Ports: []v1.ServicePort{
			{Name: "tcp", Protocol: v1.ProtocolTCP, Port: Port, TargetPort: intstr.FromInt32(TargetPort)},
			{Name: "udp", Protocol: v1.ProtocolUDP, Port: Port, TargetPort: intstr.FromInt32(TargetPort)},
		}},
	}
	if i == 0 {
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyCluster
		s.Spec.Ports[0].NodePort, s.Spec.Ports[1].NodePort = RRNodePort, RRUDPNodePort
	}
	return s
}

// Slice is Service i's EndpointSlice: e ready endpoints on RemoteNode.
func Slice(i, e int) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: cpbench.ServiceName(i) + "-1", Namespace: Namespace,
			Labels: map[string]string{discoveryv1.LabelServiceName: cpbench.ServiceName(i)}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr.To("tcp"), Protocol: ptr.To(v1.ProtocolTCP), Port: ptr.To[int32](TargetPort)},
			{Name: ptr.To("udp"), Protocol: ptr.To(v1.ProtocolUDP), Port: ptr.To[int32](TargetPort)},
		},
	}
	for j := range e {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{EndpointIP(i, j, e).String()},
			NodeName:   ptr.To(RemoteNode),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
		})
	}
	return s
}
