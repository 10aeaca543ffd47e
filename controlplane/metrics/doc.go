// Package metrics holds the control plane's Prometheus metrics, registered
// on an injected registry (never the global one), and serves them.
//
// The metrics follow kube-proxy's (kubeproxy_sync_proxy_rules_*,
// kubeproxy_network_programming_duration_seconds) under the strait_
// prefix, with the same buckets:
//
//	strait_sync_duration_seconds                 histogram  one sync: translate and apply
//	strait_sync_errors_total                     counter    syncs whose Apply failed
//	strait_sync_last_success_timestamp_seconds   gauge      end of the last successful sync
//	strait_sync_pending_changes                  gauge      objects changed since the last successful sync
//	strait_network_programming_duration_seconds  histogram  EndpointSlice last-change-trigger-time to programmed
//	strait_services_programmed                   gauge      dataplane services after the last successful sync
//	strait_backends_programmed                   gauge      dataplane backends after the last successful sync
//	strait_services_failed                       gauge      services the last sync could not program
//	strait_translate_problems                    gauge      problems the last translation reported
//	strait_proxy_healthz_total{code}             counter    /healthz answers
//	strait_proxy_livez_total{code}               counter    /livez answers
//
// Server answers /metrics (and /healthz with "ok", as kube-proxy's metrics
// server does); its default address is DefaultBindAddress.
package metrics
