package proxier

import (
	"fmt"
	"net/netip"
	"time"

	"go.uber.org/zap"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/straitlb/strait/controlplane/events"
	"github.com/straitlb/strait/controlplane/healthcheck"
	"github.com/straitlb/strait/controlplane/translate"
)

// sync is one run of the loop: translate everything, apply, report.
func (p *Proxier) sync() error {
	if !p.src.HasSynced() {
		p.log.Debug("not syncing: the source has not synced yet")
		return nil
	}
	start := p.clock.Now()
	defer func() { p.metrics.SyncDuration.Observe(p.clock.Since(start).Seconds()) }()
	pending, triggers := p.checkout()

	err := p.syncOnce(triggers)
	if err != nil {
		p.restore(pending, triggers)
		p.metrics.SyncErrors.Inc()
		if p.health != nil {
			// The dataplane is behind the desired state whether or
			// not a new change arrives: let healthz time it out.
			p.health.QueuedUpdate()
		}
		return err
	}
	return nil
}

func (p *Proxier) syncOnce(triggers map[types.NamespacedName][]time.Time) error {
	l := p.src.Listers()
	services, err := l.Services.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list services: %w", err)
	}
	slices, err := l.EndpointSlices.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list endpointslices: %w", err)
	}
	node, err := l.Nodes.Get(p.cfg.NodeName)
	if apierrors.IsNotFound(err) {
		node, err = nil, nil
	}
	if err != nil {
		return fmt.Errorf("get node %s: %w", p.cfg.NodeName, err)
	}

	tcfg, err := p.translateConfig(node)
	if err != nil {
		return err
	}
	state, problems := translate.Translate(tcfg, services, slices)
	res, applyErr := p.dp.Apply(state)

	byName := make(map[types.NamespacedName]*v1.Service, len(services))
	for _, svc := range services {
		byName[types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}] = svc
	}
	rep := p.reported.begin(p.clock.Now(), p.cfg.EventRepeatInterval)
	p.reportProblems(rep, byName, problems)
	p.reportFailed(rep, byName, res.Failed)
	p.metrics.TranslateProblems.Set(float64(len(problems)))
	p.metrics.ServicesFailed.Set(float64(len(res.Failed)))
	if applyErr != nil {
		return fmt.Errorf("apply desired state: %w", applyErr)
	}

	now := p.clock.Now()
	for svc, times := range triggers {
		for _, t := range times {
			latency := now.Sub(t)
			p.metrics.NetworkProgrammingLatency.Observe(latency.Seconds())
			p.log.Debug("network programmed", zap.Stringer("service", svc), zap.Duration("latency", latency))
		}
	}
	p.metrics.ServicesProgrammed.Set(float64(res.Services))
	p.metrics.BackendsProgrammed.Set(float64(res.Backends))
	p.metrics.LastSyncSuccess.Set(float64(now.UnixNano()) / 1e9)
	if p.health != nil {
		p.health.Updated()
	}
	if p.svcHC != nil {
		p.syncHealthChecks(rep, byName, services, slices)
	}
	rep.end()
	p.log.Debug("synced", zap.Int("services", res.Services), zap.Int("backends", res.Backends),
		zap.Int("frontends", res.Frontends), zap.Int("writes", res.Writes),
		zap.Int("problems", len(problems)), zap.Int("failed", len(res.Failed)))
	return nil
}

// translateConfig describes this node to translate.
func (p *Proxier) translateConfig(node *v1.Node) (translate.Config, error) {
	addrs, primary := nodeAddresses(node)
	addrs = append(addrs, p.cfg.NodeIPs...)
	if p.cfg.NodeIP.IsValid() {
		primary = p.cfg.NodeIP
	}
	if !primary.IsValid() {
		for _, a := range p.cfg.NodeIPs {
			if a.Unmap().Is4() {
				primary = a.Unmap()
				break
			}
		}
	}
	var prim []netip.Addr
	if primary.IsValid() {
		prim = append(prim, primary)
	}
	npAddrs, err := translate.NodePortAddresses(p.cfg.NodePortAddresses, addrs, prim...)
	if err != nil {
		return translate.Config{}, fmt.Errorf("resolve nodePortAddresses: %w", err)
	}
	cfg := translate.Config{
		NodeName:      p.cfg.NodeName,
		NodeAddresses: npAddrs,
		NodeIP:        primary,
		ProxyName:     p.cfg.ProxyName,
		Family:        v1.IPv4Protocol,
	}
	if node != nil {
		cfg.NodeLabels = node.Labels
	}
	return cfg, nil
}

// nodeAddresses returns the Node's InternalIP and ExternalIP addresses and
// its primary IPv4 address: the first InternalIP, else the first ExternalIP.
func nodeAddresses(node *v1.Node) (all []netip.Addr, primary netip.Addr) {
	if node == nil {
		return nil, netip.Addr{}
	}
	var internal, external netip.Addr
	for _, na := range node.Status.Addresses {
		if na.Type != v1.NodeInternalIP && na.Type != v1.NodeExternalIP {
			continue
		}
		a, err := netip.ParseAddr(na.Address)
		if err != nil {
			continue
		}
		a = a.Unmap()
		all = append(all, a)
		if !a.Is4() {
			continue
		}
		if na.Type == v1.NodeInternalIP && !internal.IsValid() {
			internal = a
		}
		if na.Type == v1.NodeExternalIP && !external.IsValid() {
			external = a
		}
	}
	if internal.IsValid() {
		return all, internal
	}
	return all, external
}

// syncHealthChecks updates the healthCheckNodePort servers, as kube-proxy
// does after a successful sync.
func (p *Proxier) syncHealthChecks(rep *report, byName map[types.NamespacedName]*v1.Service,
	services []*v1.Service, slices []*discoveryv1.EndpointSlice) {
	ports := healthcheck.NodePorts(services, v1.IPv4Protocol, p.cfg.ProxyName)
	for nsn, err := range p.svcHC.SyncServices(ports) {
		note := fmt.Sprintf("node %s failed to start healthcheck %q on port %d: %v", p.cfg.NodeName, nsn.String(), ports[nsn], err)
		if rep.first("hc/" + nsn.String() + "/" + note) {
			p.log.Error("failed to start healthcheck", zap.Stringer("service", nsn), zap.Uint16("port", ports[nsn]), zap.Error(err))
			p.event(byName, nsn, events.ReasonFailedToStartServiceHealthcheck, "Listen", note)
		}
	}
	p.svcHC.SyncEndpoints(healthcheck.LocalReadyEndpoints(slices, p.cfg.NodeName, v1.IPv4Protocol))
}
