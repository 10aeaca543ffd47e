package integration

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"go.uber.org/zap/zaptest"

	"github.com/straitlb/strait/controlplane/events"
	"github.com/straitlb/strait/controlplane/proxier"
	"github.com/straitlb/strait/controlplane/source"
	"github.com/straitlb/strait/dataplane/lbmap"
	"github.com/straitlb/strait/dataplane/program"
	"github.com/straitlb/strait/internal/kubetest"
)

const agentNS, agentSA = "strait-system", "strait-agent"

func applyDeploy(t *testing.T, c kubernetes.Interface) {
	t.Helper()
	var objs []runtime.Object
	for _, f := range []string{"namespace.yaml", "rbac.yaml", "configmap.yaml", "daemonset.yaml"} {
		o, err := decodeFile(filepath.Join("..", "..", "deploy", f))
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o...)
	}
	if err := create(context.Background(), c, objs); err != nil {
		t.Fatal(err)
	}
}

// The manifests are accepted by a real apiserver, and say what a cluster
// admin expects of a node agent.
func TestDeployManifests(t *testing.T) {
	cp := kubetest.Start(t)
	applyDeploy(t, cp.Client)
	ctx := context.Background()
	ds, err := cp.Client.AppsV1().DaemonSets(agentNS).Get(ctx, "strait-agent", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := ds.Spec.Template.Spec
	c := spec.Containers[0]
	checks := map[string]bool{
		"hostNetwork":                 spec.HostNetwork,
		"system-node-critical":        spec.PriorityClassName == "system-node-critical",
		"tolerates every taint":       len(spec.Tolerations) == 1 && spec.Tolerations[0].Operator == v1.TolerationOpExists && spec.Tolerations[0].Key == "",
		"maxUnavailable 1":            ds.Spec.UpdateStrategy.RollingUpdate != nil && *ds.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable == intstr.FromInt32(1),
		"not privileged":              c.SecurityContext.Privileged != nil && !*c.SecurityContext.Privileged,
		"drops all capabilities":      len(c.SecurityContext.Capabilities.Drop) == 1 && c.SecurityContext.Capabilities.Drop[0] == "ALL",
		"readiness on healthz":        c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet.Path == "/healthz" && c.ReadinessProbe.HTTPGet.Port.IntValue() == 10256,
		"liveness on livez":           c.LivenessProbe != nil && c.LivenessProbe.HTTPGet.Path == "/livez",
		"requests and limits":         !c.Resources.Requests.Cpu().IsZero() && !c.Resources.Limits.Memory().IsZero(),
		"bpffs and cgroup mounted":    len(c.VolumeMounts) == 3,
		"service account":             spec.ServiceAccountName == agentSA,
		"node name from the downward": len(c.Env) == 1 && c.Env[0].ValueFrom.FieldRef.FieldPath == "spec.nodeName",
	}
	for what, ok := range checks {
		if !ok {
			t.Errorf("DaemonSet: %s does not hold", what)
		}
	}
	cm, err := cp.Client.CoreV1().ConfigMaps(agentNS).Get(ctx, "strait-agent", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cm.Data["config.yaml"], "127.0.0.1:10249") {
		t.Error("ConfigMap: metrics not bound to loopback")
	}
}

// The agent's ServiceAccount may do what it needs and nothing more.
func TestDeployRBACLeastPrivilege(t *testing.T) {
	cp := kubetest.Start(t)
	applyDeploy(t, cp.Client)
	user := kubetest.ServiceAccountUser(agentNS, agentSA)
	groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + agentNS, "system:authenticated"}
	can := func(group, resource, verb, ns string) bool {
		sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
			User: user, Groups: groups,
			ResourceAttributes: &authzv1.ResourceAttributes{Group: group, Resource: resource, Verb: verb, Namespace: ns},
		}}
		r, err := cp.Client.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), sar, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r.Status.Allowed
	}
	for _, a := range []struct{ group, resource, verb string }{
		{"", "services", "list"}, {"", "services", "watch"}, {"", "nodes", "get"}, {"", "nodes", "watch"},
		{"discovery.k8s.io", "endpointslices", "list"}, {"discovery.k8s.io", "endpointslices", "watch"},
		{"events.k8s.io", "events", "create"}, {"events.k8s.io", "events", "patch"},
	} {
		if !can(a.group, a.resource, a.verb, "any") {
			t.Errorf("agent cannot %s %s.%s, which it needs", a.verb, a.resource, a.group)
		}
	}
	for _, a := range []struct{ group, resource, verb string }{
		{"", "secrets", "get"}, {"", "secrets", "list"}, {"", "pods", "list"}, {"", "services", "update"},
		{"", "services", "delete"}, {"", "nodes", "update"}, {"", "configmaps", "list"},
		{"discovery.k8s.io", "endpointslices", "create"}, {"apps", "daemonsets", "update"},
		{"rbac.authorization.k8s.io", "clusterroles", "escalate"},
	} {
		if can(a.group, a.resource, a.verb, "any") {
			t.Errorf("agent may %s %s.%s, which it does not need", a.verb, a.resource, a.group)
		}
	}
}

// Running as its ServiceAccount, the agent syncs and reports a problem on
// a Service as a Kubernetes Event: the RBAC rules suffice.
func TestAgentRunsWithItsServiceAccount(t *testing.T) {
	cp := kubetest.Start(t)
	applyDeploy(t, cp.Client)
	objs, err := decodeFile("testdata/scenarios/basic.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := create(ctx, cp.Client, objs); err != nil {
		t.Fatal(err)
	}
	// SCTP is valid Kubernetes but not supported by the datapath: a
	// Warning Event on the Service.
	sctp := &v1.Service{ObjectMeta: metav1.ObjectMeta{Name: "sctp", Namespace: "shop"},
		Spec: v1.ServiceSpec{ClusterIP: "198.19.0.77", Ports: []v1.ServicePort{{Name: "s", Protocol: v1.ProtocolSCTP, Port: 9}}}}
	if _, err := cp.Client.CoreV1().Services("shop").Create(ctx, sctp, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	client := cp.ClientAsServiceAccount(agentNS, agentSA)
	log := zaptest.NewLogger(t)
	maps := lbmap.NewFake(lbmap.DefaultCapacities)
	prog, err := program.New(log, maps, program.Config{})
	if err != nil {
		t.Fatal(err)
	}
	src, err := source.NewKubernetes(client, source.KubernetesConfig{NodeName: NodeName}, log)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := events.NewKubernetes(client, "strait-agent")
	if err != nil {
		t.Fatal(err)
	}
	dp := &recorder{inner: prog, ch: make(chan struct{}, 1)}
	p, err := proxier.New(log, proxier.Config{NodeName: NodeName}, proxier.Deps{Source: src, Dataplane: dp, Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = rec.Run(rctx) }()
	go func() { _ = p.Run(rctx) }()
	dp.waitApplies(t, 1)
	dump, err := lbmap.Dump(maps)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "testdata/scenarios/basic.golden", dump)

	deadline := time.Now().Add(20 * time.Second)
	for {
		evs, err := cp.Client.EventsV1().Events("shop").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs.Items {
			if e.Regarding.Name == "sctp" && e.Type == v1.EventTypeWarning && strings.Contains(e.Note, "SCTP") {
				t.Logf("event: %s %s: %s", e.Type, e.Reason, e.Note)
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Warning Event about SCTP on shop/sctp; events: %+v", evs.Items)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
