// Package stats exports the datapath's per-CPU counters as Prometheus
// metrics, read from the maps at scrape time (nothing is counted in
// userspace, nothing is logged per packet): global verdict counters and
// per-service packets and bytes by verdict.
package stats
