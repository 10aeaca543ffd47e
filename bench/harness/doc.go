// Package harness runs the benchmark profiles (micro, control plane,
// side by side with kube-proxy) and writes results.json, results.md and
// SVG charts into one directory.
package harness
