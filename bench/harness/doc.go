// Package harness runs the benchmark profiles (micro, control plane,
// side by side with kube-proxy: packets per second, cold sync and HTTP
// request/response through a NodePort) and writes results.json,
// results.md and SVG charts into one directory.
package harness
