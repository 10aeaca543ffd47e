// Package kubetest runs a real Kubernetes control plane (etcd and
// kube-apiserver) for tests and benchmarks.
//
// The binaries are built from the pinned module in tools/k8s by
// hack/k8s-binaries.sh into ${STRAIT_CACHE:-/var/cache/strait}/k8s-<version>/
// (or the directory named by STRAIT_K8S_BIN). If they are missing, the first
// caller builds them, which takes about 4-5 minutes on 2 cores; CI should run
// the script once before the tests.
//
// A control plane is:
//
//   - etcd on free loopback ports with a temporary data directory;
//   - kube-apiserver bound to 127.0.0.1 on a free port, with a generated
//     self-signed serving certificate and service-account signing key, static
//     token authentication (an admin user in system:masters), RBAC
//     authorization, the default admission plugins, the service range
//     198.19.0.0/16, and the advertise address 192.0.2.250 (a documentation
//     address that is only advertised, never contacted; the endpoint
//     reconciler is off so the apiserver never publishes it).
//
// No controller-manager, scheduler or kubelet runs: nothing creates default
// ServiceAccounts, finalizes deleted Namespaces, schedules Pods or fills in
// EndpointSlices for Services. Tests create the objects they need.
//
// Typical use in a test:
//
//	cp := kubetest.Start(t) // stopped by t.Cleanup
//	_, err := cp.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
//
//	// Least privilege: act as a ServiceAccount through impersonation.
//	sa := cp.ClientAsServiceAccount("strait-system", "strait")
//
// Benchmark tools outside "go test" use StartCluster and Stop.
//
// Environment:
//
//	STRAIT_K8S_BIN  directory holding kube-apiserver, kube-proxy and etcd
//	STRAIT_CACHE    cache root for the default binary directory
//	STRAIT_KUBETEST_KEEP=1  keep the temporary directory (logs, data) on Stop
//	CI              when set, Start fails instead of skipping if the
//	                binaries cannot be found or built
package kubetest
