// Package integration tests the control plane against a real
// kube-apiserver (internal/kubetest): readable scenarios of Kubernetes
// objects go in, the canonical dump of the maps the agent programs comes
// out and is compared with a golden file (refresh with -update). The same
// golden files check the in-memory maps and, in privileged tests, the real
// eBPF maps. The deploy/ manifests are created there too, and the agent's
// RBAC is checked for least privilege.
package integration
