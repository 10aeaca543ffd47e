// Package source provides what the proxier reads: listers of Services,
// EndpointSlices and the agent's own Node, a HasSynced gate, and a
// notification for every change.
//
// Two sources implement the one Source interface, so everything after the
// source is the same code path:
//
//   - Kubernetes watches a kube-apiserver with client-go shared informers:
//     Services (without headless ones, as kube-proxy), EndpointSlices
//     (without those labelled service.kubernetes.io/headless) and the one
//     Node named by NodeName (a metadata.name field selector). Event
//     handlers only record what changed; nothing is synced before every
//     informer, and every handler, has seen its initial list.
//   - File reads ordinary Kubernetes YAML or JSON from a directory
//     (standalone mode) and polls it for changes. Objects are decoded
//     strictly: an unknown or duplicate field is an error naming the file
//     and the field, and the last good set of objects stays in effect.
//
// Memory is the in-memory store behind File; tests and other callers can
// fill it directly.
//
// A Change carries, for an added or updated EndpointSlice, its
// endpoints.kubernetes.io/last-change-trigger-time annotation, from which
// the proxier measures network programming latency.
package source
