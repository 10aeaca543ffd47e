// Package model is the desired state shared by the control plane, the
// dataplane and the BGP speaker. It is pure data plus validation: no I/O, no
// Kubernetes types, no kernel types. Every other package depends on it; it
// depends on nothing in Strait.
//
// A model.Service is one dataplane service: a set of frontends that share one
// backend selection. The control plane splits a Kubernetes Service port into
// up to two model services (internal: ClusterIP; external: NodePort,
// LoadBalancer, externalIPs) when their traffic policies select different
// endpoints.
package model
