package kubetest

import (
	"context"
	"errors"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// TestPrivilegedControlPlane starts a real control plane, writes and reads
// back a Namespace, a ClusterIP Service and an EndpointSlice, and checks that
// RBAC is enforced for an impersonated ServiceAccount.
func TestPrivilegedControlPlane(t *testing.T) {
	cp := Start(t)
	t.Logf("startup took %v", cp.StartupTime)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c := cp.Client

	const ns = "kubetest"
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}

	svc, err := c.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{
				Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080),
			}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create service: %v", err)
	}
	_, svcRange, _ := net.ParseCIDR(DefaultServiceClusterIPRange)
	if ip := net.ParseIP(svc.Spec.ClusterIP); ip == nil || !svcRange.Contains(ip) {
		t.Errorf("ClusterIP %q not in %s", svc.Spec.ClusterIP, svcRange)
	}

	ready := true
	_, err = c.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:   "web-1",
			Labels: map[string]string{discoveryv1.LabelServiceName: "web", discoveryv1.LabelManagedBy: "kubetest"},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"198.18.0.10"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}},
			{Addresses: []string{"198.18.0.11"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}},
		},
		Ports: []discoveryv1.EndpointPort{{Name: ptr("http"), Protocol: ptr(corev1.ProtocolTCP), Port: ptr[int32](8080)}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create endpointslice: %v", err)
	}

	svcs, err := c.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list services: %v", err)
	}
	if len(svcs.Items) != 1 || svcs.Items[0].Name != "web" || svcs.Items[0].Spec.ClusterIP != svc.Spec.ClusterIP {
		t.Errorf("services = %+v, want web with %s", svcs.Items, svc.Spec.ClusterIP)
	}
	got, err := c.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
	if err != nil {
		t.Fatalf("list endpointslices: %v", err)
	}
	if len(got.Items) != 1 {
		t.Fatalf("got %d endpointslices, want 1", len(got.Items))
	}
	var addrs []string
	for _, ep := range got.Items[0].Endpoints {
		addrs = append(addrs, ep.Addresses...)
	}
	if want := []string{"198.18.0.10", "198.18.0.11"}; !slices.Equal(addrs, want) {
		t.Errorf("endpoint addresses = %v, want %v", addrs, want)
	}

	// The default "kubernetes" Service gets the first address of the range;
	// the advertise address is never published (reconciler off).
	k8sSvc, err := c.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get default/kubernetes: %v", err)
	}
	if k8sSvc.Spec.ClusterIP != "198.19.0.1" {
		t.Errorf("kubernetes Service ClusterIP = %s, want 198.19.0.1", k8sSvc.Spec.ClusterIP)
	}
	eps, err := c.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=kubernetes"})
	if err != nil {
		t.Fatalf("list default/kubernetes endpointslices: %v", err)
	}
	if len(eps.Items) != 0 {
		t.Errorf("default/kubernetes has EndpointSlices %+v; the advertise address must not be published", eps.Items)
	}

	// Least privilege: a ServiceAccount without RBAC bindings is forbidden.
	sa := cp.ClientAsServiceAccount(ns, "nobody")
	_, err = sa.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("list services as ServiceAccount without RBAC: err = %v, want Forbidden", err)
	}
	// Impersonation yields the ServiceAccount's identity and groups.
	review, err := sa.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("self subject review: %v", err)
	}
	ui := review.Status.UserInfo
	if ui.Username != ServiceAccountUser(ns, "nobody") {
		t.Errorf("impersonated user = %q", ui.Username)
	}
	for _, g := range []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"} {
		if !slices.Contains(ui.Groups, g) {
			t.Errorf("impersonated groups %v lack %s", ui.Groups, g)
		}
	}

	// The admin kubeconfig works on its own.
	cfg, err := clientcmd.BuildConfigFromFlags("", cp.Kubeconfig)
	if err != nil {
		t.Fatalf("load kubeconfig: %v", err)
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
		t.Errorf("get namespace through kubeconfig: %v", err)
	}
	v, err := kc.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("server version: %v", err)
	}
	if v.GitVersion != KubernetesVersion {
		t.Errorf("server version %s, want %s", v.GitVersion, KubernetesVersion)
	}

	// Stop kills the processes and removes the directory.
	pid := cp.apiserver.cmd.Process.Pid
	if err := cp.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if os.Getenv("STRAIT_KUBETEST_KEEP") == "" {
		if _, err := os.Stat(cp.Dir); !os.IsNotExist(err) {
			t.Errorf("%s still exists after Stop: %v", cp.Dir, err)
		}
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("kube-apiserver (pid %d) still running after Stop", pid)
	}
}

// TestPrivilegedImpersonatedKubeconfig checks that WriteKubeconfig carries
// impersonation, as used to run a separate process under a given identity.
func TestPrivilegedImpersonatedKubeconfig(t *testing.T) {
	cp := Start(t)
	ctx := t.Context()
	path := cp.Dir + "/sa.kubeconfig"
	if err := WriteKubeconfig(path, cp.ConfigAsServiceAccount("kube-system", "kube-proxy")); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	c := kubernetes.NewForConfigOrDie(cfg)
	_, err = c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "system:serviceaccount:kube-system:kube-proxy") {
		t.Errorf("list nodes as kube-proxy ServiceAccount: err = %v, want Forbidden for it", err)
	}
	_, err = cp.ClientAs("someone", "some-group").CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("list services as an unbound user: err = %v, want Forbidden", err)
	}
	// The bootstrap policy binds user system:kube-proxy to the
	// system:node-proxier ClusterRole.
	if _, err := cp.ClientAs("system:kube-proxy").CoreV1().Services("").List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("list services as system:kube-proxy (bound to system:node-proxier): %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestPrivilegedStartFailureShowsLogs checks that a kube-apiserver that
// cannot start fails fast with the tail of its log in the error, and that
// nothing is left behind.
func TestPrivilegedStartFailureShowsLogs(t *testing.T) {
	dir, err := FindBinaries(t.Context(), t.Logf)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	tmp := t.TempDir()
	start := time.Now()
	cp, err := StartCluster(t.Context(), Options{BinDir: dir, TempDir: tmp, APIServerArgs: []string{"--no-such-flag"}})
	if err == nil {
		cp.Stop()
		t.Fatal("StartCluster succeeded with a bogus flag")
	}
	if !strings.Contains(err.Error(), "unknown flag: --no-such-flag") {
		t.Errorf("error lacks the apiserver's complaint:\n%v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("failure took %v, want fast", d)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 && os.Getenv("STRAIT_KUBETEST_KEEP") == "" {
		t.Errorf("left behind: %v", ents)
	}
	if _, err := StartCluster(t.Context(), Options{BinDir: tmp}); !errors.Is(err, ErrNoBinaries) {
		t.Errorf("StartCluster with an empty BinDir: err = %v, want ErrNoBinaries", err)
	}
}

// TestKubernetesVersionMatchesToolsModule keeps KubernetesVersion in step
// with the version hack/k8s-binaries.sh builds.
func TestKubernetesVersionMatchesToolsModule(t *testing.T) {
	data, err := os.ReadFile("../../tools/k8s/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.Lines(string(data)) {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "k8s.io/kubernetes" {
			if f[1] != KubernetesVersion {
				t.Errorf("tools/k8s pins k8s.io/kubernetes %s, KubernetesVersion is %s", f[1], KubernetesVersion)
			}
			return
		}
	}
	t.Error("tools/k8s/go.mod does not require k8s.io/kubernetes")
}
