// Package controlplane is Strait's control plane: it watches Services,
// EndpointSlices and the agent's Node (from a kube-apiserver, or from a
// directory of manifests in standalone mode), turns them into the node's
// desired state with kube-proxy's semantics, and keeps the dataplane
// programmed with it. This package only documents; the work is in its
// subpackages:
//
//   - translate: Kubernetes objects to model.State (pure).
//   - source: where the objects come from (Kubernetes informers, File,
//     Memory), behind one Source interface.
//   - runner: the bounded-frequency runner (kube-proxy's
//     BoundedFrequencyRunner, with exponential backoff).
//   - proxier: the sync loop that ties source, translate and the dataplane
//     together and reports problems as logs, Events and metrics.
//   - healthcheck: kube-proxy's healthz server and healthCheckNodePort
//     servers.
//   - events: Event recorders (events.k8s.io, or a logging one).
//   - metrics: the Prometheus metrics and their HTTP server.
//
// Wiring, in outline (errors elided; run each Run in its own goroutine):
//
//	reg := prometheus.NewRegistry()
//	m, _ := metrics.New(reg)
//	src, _ := source.NewKubernetes(client, source.KubernetesConfig{NodeName: node}, log)
//	rec, _ := events.NewKubernetes(client, "strait")          // go rec.Run(ctx)
//	// standalone: src, _ = source.NewFile(source.FileConfig{Dir: dir}, clock.RealClock{}, log)
//	//             rec := events.NewLogging(log)
//	health, _ := healthcheck.NewProxyHealth(healthcheck.ProxyHealthConfig{
//		Timeout:      2 * syncPeriod, // as kube-proxy
//		NodeEligible: healthcheck.SourceNodeEligible(src, node, !standalone),
//	}, clock.RealClock{}, m)
//	svcHealth, _ := healthcheck.NewServiceHealth(healthcheck.ServiceHealthConfig{}, health, log)
//	p, _ := proxier.New(log, proxier.Config{NodeName: node, SyncPeriod: syncPeriod}, proxier.Deps{
//		Source: src, Dataplane: programmer, Recorder: rec, Metrics: m,
//		Health: health, ServiceHealth: svcHealth,
//	})
//	go health.Serve(ctx, healthzAddr, log)                    // /healthz, /livez
//	go metrics.NewServer(metricsAddr, reg, log).Run(ctx)      // /metrics
//	p.Run(ctx)                                                // runs src too
package controlplane
