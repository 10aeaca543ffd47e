// Package healthcheck serves kube-proxy's two health checks with
// kube-proxy's exact answers (pkg/proxy/healthcheck in Kubernetes v1.37):
//
//   - ProxyHealth is the proxier's healthz server: /healthz and /livez
//     answer JSON {"lastUpdated", "currentTime", "nodeEligible" (healthz
//     only), "healthy", "status": {family: {"lastUpdated", "healthy"}}}
//     with 200 when healthy and 503 when not. The proxier is unhealthy when
//     an update was queued (QueuedUpdate) and no sync completed (Updated)
//     within the health timeout; /healthz is also 503 when the node is not
//     eligible (gone, being deleted, or tainted ToBeDeletedByClusterAutoscaler).
//     On 200, lastUpdated is the current time, as kube-proxy does for
//     compatibility.
//   - ServiceHealth runs one HTTP server per healthCheckNodePort of the
//     externalTrafficPolicy=Local LoadBalancer Services. It answers 200 when
//     the Service has ready endpoints on this node and the proxier is
//     healthy, 503 otherwise, with the header X-Load-Balancing-Endpoint-Weight
//     and the body {"service": {"namespace", "name"}, "localEndpoints",
//     "serviceProxyHealthy"} in kube-proxy's indentation.
//
// # Differences from kube-proxy
//
//   - The healthz default bind address is 127.0.0.1:10256, not
//     0.0.0.0:10256; it is a configuration value. The caller may bind it to
//     the node IP so that cloud load balancers can reach it.
//   - ServiceHealth.SyncServices returns the per-Service listen errors
//     instead of recording Events itself, so the caller reports them on the
//     Service object (with its UID, which kube-proxy's reference lacks).
//   - SourceNodeEligible takes the node as eligible until the source has
//     synced (kube-proxy reads a Node fetched before it starts serving).
//   - The caller also marks a failed sync as a queued update (kube-proxy
//     does not), so a dataplane that keeps failing makes /healthz 503 after
//     the timeout even without new events.
package healthcheck
