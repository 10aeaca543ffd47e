// Package proxier is the control plane's sync loop, kube-proxy's Proxier
// for Strait: on every run it builds the complete desired state of the node
// from the source's Services, EndpointSlices and Node with
// translate.Translate, hands it to the dataplane, and reports what went
// wrong per Service, as log lines and as Kubernetes Events on the Service.
//
// Runs are driven by a bounded-frequency runner (package runner): a change
// from the source triggers a run no sooner than MinSyncPeriod after the
// previous one, every SyncPeriod brings a full resync, and a failed Apply
// is retried with exponential backoff. Nothing is applied before the
// source has synced, so a partial view never prunes the dataplane.
//
// Each run:
//
//   - reads the agent's Node: its labels give the zone for topology hints,
//     its status addresses (InternalIP, ExternalIP; plus Config.NodeIPs)
//     are filtered by Config.NodePortAddresses with
//     translate.NodePortAddresses to give the NodePort addresses, and its
//     first InternalIP (else ExternalIP) is the primary node IP unless
//     Config.NodeIP is set;
//   - translates and applies. A translate Problem, or a service in
//     Result.Failed, is logged and recorded as a Warning Event on its
//     Service (reasons InvalidService and ProgrammingFailed); the same
//     report is not repeated while it persists, except every
//     EventRepeatInterval. One Service's failure never keeps the others from
//     being programmed;
//   - after a successful Apply: marks the proxier healthy (healthz), updates
//     the healthCheckNodePort servers (ports from the Services, local ready
//     endpoints counted from the EndpointSlices, as kube-proxy does), and
//     observes, for every EndpointSlice change since the last successful
//     run, the time from its last-change-trigger-time to now (network
//     programming latency).
//
// When Apply returns an error the run fails: the pending changes and their
// trigger times are kept for the next run, the error counter is increased,
// the runner backs off, and the health server sees an update still queued,
// so /healthz turns 503 if no run succeeds within its timeout.
package proxier
