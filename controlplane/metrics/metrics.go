package metrics

import (
	"fmt"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "strait"

// Metrics are the control plane's metrics. Use New; a nil *Metrics is not
// valid, but Discard gives one that goes nowhere.
type Metrics struct {
	SyncDuration              prometheus.Histogram
	SyncErrors                prometheus.Counter
	LastSyncSuccess           prometheus.Gauge
	PendingChanges            prometheus.Gauge
	NetworkProgrammingLatency prometheus.Histogram
	ServicesProgrammed        prometheus.Gauge
	BackendsProgrammed        prometheus.Gauge
	ServicesFailed            prometheus.Gauge
	TranslateProblems         prometheus.Gauge
	HealthzTotal              *prometheus.CounterVec
	LivezTotal                *prometheus.CounterVec
}

// New creates the metrics and registers them on reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		SyncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "sync_duration_seconds",
			Help:    "Duration of one sync (translate and apply) in seconds.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		SyncErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "sync_errors_total",
			Help: "Syncs whose dataplane Apply failed.",
		}),
		LastSyncSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "sync_last_success_timestamp_seconds",
			Help: "Unix time at which the last successful sync ended.",
		}),
		PendingChanges: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "sync_pending_changes",
			Help: "Objects (Services, EndpointSlices, the Node) changed since the last successful sync.",
		}),
		NetworkProgrammingLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "network_programming_duration_seconds",
			Help:    "Time from an EndpointSlice's last-change-trigger-time to the change being programmed, in seconds.",
			Buckets: networkProgrammingBuckets(),
		}),
		ServicesProgrammed: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "services_programmed",
			Help: "Dataplane services programmed by the last successful sync.",
		}),
		BackendsProgrammed: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "backends_programmed",
			Help: "Dataplane backends programmed by the last successful sync.",
		}),
		ServicesFailed: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "services_failed",
			Help: "Dataplane services the last sync could not program.",
		}),
		TranslateProblems: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "translate_problems",
			Help: "Problems with Services and EndpointSlices found by the last translation.",
		}),
		HealthzTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "proxy_healthz_total",
			Help: "Answers of the /healthz endpoint by HTTP status code.",
		}, []string{"code"}),
		LivezTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "proxy_livez_total",
			Help: "Answers of the /livez endpoint by HTTP status code.",
		}, []string{"code"}),
	}
	for _, c := range []prometheus.Collector{
		m.SyncDuration, m.SyncErrors, m.LastSyncSuccess, m.PendingChanges,
		m.NetworkProgrammingLatency, m.ServicesProgrammed, m.BackendsProgrammed,
		m.ServicesFailed, m.TranslateProblems, m.HealthzTotal, m.LivezTotal,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

// Discard returns metrics registered nowhere.
func Discard() *Metrics {
	m, err := New(prometheus.NewRegistry())
	if err != nil {
		panic(err) // a fresh registry cannot conflict
	}
	return m
}

// networkProgrammingBuckets are kube-proxy's: 0.25s, 0.5s, 1..59s,
// 60..115s by 5s, 2..5min by 30s.
func networkProgrammingBuckets() []float64 {
	b := slices.Concat(
		prometheus.LinearBuckets(0.25, 0.25, 2),
		prometheus.LinearBuckets(1, 1, 59),
		prometheus.LinearBuckets(60, 5, 12),
		prometheus.LinearBuckets(120, 30, 7),
	)
	return slices.Compact(b)
}
