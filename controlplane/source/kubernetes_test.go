package source

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestKubernetesSource(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset(
		service("default", "web", "198.19.0.10"),
		slice("default", "web-abc", "web", "198.18.0.1"),
		node("node-a", map[string]string{"topology.kubernetes.io/zone": "z1"}),
	)
	src, err := NewKubernetes(client, KubernetesConfig{NodeName: "node-a"}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if src.HasSynced() {
		t.Fatal("synced before Run")
	}
	rec := newRecorder()
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, rec.handle) }()

	rec.waitFor(t, "synced", func(c Change) bool { return c.Kind == KindSynced })
	if !src.HasSynced() {
		t.Fatal("HasSynced false after the Synced change")
	}
	// Every initial object was delivered before Synced.
	var initial []string
	for _, c := range rec.all() {
		if c.Kind == KindSynced {
			break
		}
		initial = append(initial, c.String())
	}
	if len(initial) != 3 {
		t.Errorf("changes before Synced = %v, want the 3 initial objects", initial)
	}
	if got := serviceNames(t, src.Listers()); len(got) != 1 || got[0] != "default/web" {
		t.Errorf("services = %v", got)
	}
	if n, err := src.Listers().Nodes.Get("node-a"); err != nil || n.Labels["topology.kubernetes.io/zone"] != "z1" {
		t.Errorf("node = %v, %v", n, err)
	}

	// An EndpointSlice update carries its trigger time.
	rec.reset()
	trigger := time.Date(2026, 3, 4, 5, 6, 7, 890000000, time.UTC)
	eps := slice("default", "web-abc", "web", "198.18.0.1", "198.18.0.2")
	eps.Annotations = map[string]string{v1.EndpointsLastChangeTriggerTime: trigger.Format(time.RFC3339Nano)}
	eps.ResourceVersion = "2"
	if _, err := client.DiscoveryV1().EndpointSlices("default").Update(ctx, eps, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	c := rec.waitFor(t, "slice update", func(c Change) bool { return c.Kind == KindEndpointSlice })
	if c.Name != "web-abc" || c.Service != "web" || !c.TriggerTime.Equal(trigger) || c.Deleted {
		t.Errorf("slice change = %+v", c)
	}

	// A deletion is reported without a trigger time.
	if err := client.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	c = rec.waitFor(t, "service delete", func(c Change) bool { return c.Kind == KindService })
	if c.Name != "web" || !c.Deleted {
		t.Errorf("service change = %+v", c)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if err := src.Run(context.Background(), rec.handle); err == nil {
		t.Error("second Run succeeded")
	}
}

func TestKubernetesSourceConfig(t *testing.T) {
	if _, err := NewKubernetes(fake.NewClientset(), KubernetesConfig{}, nil); err == nil {
		t.Error("empty NodeName accepted")
	}
	if _, err := NewKubernetes(nil, KubernetesConfig{NodeName: "a"}, nil); err == nil {
		t.Error("nil client accepted")
	}
}

func TestChangedFiltersResyncsAndIrrelevantNodeUpdates(t *testing.T) {
	svc := service("default", "web", "198.19.0.10")
	svc.ResourceVersion = "1"
	if changed(svc, svc.DeepCopy()) {
		t.Error("a resync (same resourceVersion) counted as a change")
	}
	svc2 := svc.DeepCopy()
	svc2.ResourceVersion = "2"
	if !changed(svc, svc2) {
		t.Error("a new resourceVersion of a Service is not a change")
	}

	n := node("node-a", map[string]string{"a": "b"})
	n.ResourceVersion = "1"
	n.Status.Addresses = []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "192.0.2.11"}}
	heartbeat := n.DeepCopy()
	heartbeat.ResourceVersion = "2"
	heartbeat.Status.Conditions = []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}}
	if changed(n, heartbeat) {
		t.Error("a node status heartbeat counted as a change")
	}
	for name, mutate := range map[string]func(*v1.Node){
		"labels":    func(n *v1.Node) { n.Labels["topology.kubernetes.io/zone"] = "z2" },
		"addresses": func(n *v1.Node) { n.Status.Addresses[0].Address = "192.0.2.12" },
		"taints":    func(n *v1.Node) { n.Spec.Taints = []v1.Taint{{Key: "ToBeDeletedByClusterAutoscaler"}} },
		"deletion":  func(n *v1.Node) { n.DeletionTimestamp = &metav1.Time{Time: time.Now()} },
	} {
		n2 := n.DeepCopy()
		n2.ResourceVersion = "3"
		mutate(n2)
		if !changed(n, n2) {
			t.Errorf("a node %s update is not a change", name)
		}
	}
}

func TestSliceChangeBadTriggerTime(t *testing.T) {
	eps := slice("default", "s", "web")
	eps.Annotations = map[string]string{v1.EndpointsLastChangeTriggerTime: "yesterday"}
	c, err := sliceChange(eps, false)
	if err == nil || !c.TriggerTime.IsZero() || c.Kind != KindEndpointSlice {
		t.Errorf("sliceChange = %+v, %v; want zero trigger time and an error", c, err)
	}
}
