package proxier

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"

	"go.uber.org/zap"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/straitlb/strait/controlplane/events"
	"github.com/straitlb/strait/controlplane/healthcheck"
	"github.com/straitlb/strait/controlplane/source"
	"github.com/straitlb/strait/controlplane/translate"
	"github.com/straitlb/strait/dataplane/program"
	"github.com/straitlb/strait/model"
)

// sync is one run of the loop: translate what changed (or everything),
// apply, report.
func (p *Proxier) sync() error {
	p.mu.Lock()
	initialized := p.initialized
	p.mu.Unlock()
	// Until the Synced change has been handled (it triggers the first
	// sync), only translate ahead: programming now would leave that
	// trigger a second, empty run.
	if !initialized || !p.src.HasSynced() {
		p.log.Debug("not programming: the source has not synced yet")
		p.prepare()
		return nil
	}
	start := p.clock.Now()
	defer func() { p.metrics.SyncDuration.Observe(p.clock.Since(start).Seconds()) }()
	work := p.checkout()

	err := p.syncOnce(work)
	if err != nil {
		p.restore(work)
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

// full reports whether this run translates everything anew: the first
// run, after a Node change or a failed run, and every FullSyncPeriod.
func (p *Proxier) full(w work) bool {
	return !p.translated || w.node || w.full || p.clock.Since(p.lastFull) >= p.cfg.FullSyncPeriod
}

func (p *Proxier) syncOnce(w work) error {
	l := p.src.Listers()
	lookup := func(nn types.NamespacedName) *v1.Service {
		svc, err := l.Services.Services(nn.Namespace).Get(nn.Name)
		if err != nil {
			return nil
		}
		return svc
	}
	var (
		state    model.State
		changed  []model.ServiceName
		res      program.Result
		applyErr error
		full     = p.full(w)
	)
	var err error
	if full && !p.translated && p.prepared {
		// The first sync: the tracker has translated what arrived
		// before; finish it unless the node's description changed.
		state, err = p.finishPrepared(l, w)
		if err != nil {
			return err
		}
		res, applyErr = p.dp.Apply(state)
	} else if full {
		if state, err = p.resetAll(l); err != nil {
			return err
		}
		res, applyErr = p.dp.Apply(state)
	} else {
		names := slices.SortedFunc(maps.Keys(w.services), func(a, b types.NamespacedName) int {
			return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
		})
		get, getErr := p.getter(l)
		state, changed = p.tracker.Update(names, get)
		if *getErr != nil {
			// The tracker may hold a partial view: translate
			// everything on the retry.
			p.translated = false
			return *getErr
		}
		if inc, ok := p.dp.(IncrementalDataplane); ok {
			res, applyErr = inc.ApplyChanges(state, changed)
		} else {
			res, applyErr = p.dp.Apply(state)
		}
	}
	problems := p.tracker.Problems()

	rep := p.reported.begin(p.clock.Now(), p.cfg.EventRepeatInterval)
	p.reportProblems(rep, lookup, problems)
	p.reportFailed(rep, lookup, res.Failed)
	p.metrics.TranslateProblems.Set(float64(len(problems)))
	p.metrics.ServicesFailed.Set(float64(len(res.Failed)))
	if applyErr != nil {
		return fmt.Errorf("apply desired state: %w", applyErr)
	}

	now := p.clock.Now()
	for svc, times := range w.triggers {
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
		p.syncHealthChecks(rep, lookup, full)
	}
	rep.end()
	p.log.Debug("synced", zap.Bool("full", full), zap.Int("changed", len(changed)),
		zap.Int("services", res.Services), zap.Int("backends", res.Backends),
		zap.Int("frontends", res.Frontends), zap.Int("writes", res.Writes),
		zap.Int("problems", len(problems)), zap.Int("failed", len(res.Failed)))
	return nil
}

// resetAll translates every object anew.
func (p *Proxier) resetAll(l source.Listers) (model.State, error) {
	services, slices, tcfg, err := p.listAll(l)
	if err != nil {
		return model.State{}, err
	}
	state, _ := p.tracker.Reset(tcfg, services, slices)
	p.translated, p.lastFull = true, p.clock.Now()
	if p.svcHC != nil {
		p.hcPorts = healthcheck.NodePorts(services, v1.IPv4Protocol, p.cfg.ProxyName)
		p.hcLocal = healthcheck.LocalReadyEndpoints(slices, p.cfg.NodeName, v1.IPv4Protocol)
	}
	return state, nil
}

// getter reads one Service and its EndpointSlices for the tracker,
// keeping the health check inputs up to date; the first error is kept.
func (p *Proxier) getter(l source.Listers) (func(types.NamespacedName) (*v1.Service, []*discoveryv1.EndpointSlice), *error) {
	var getErr error
	get := func(nn types.NamespacedName) (*v1.Service, []*discoveryv1.EndpointSlice) {
		svc, err := l.Services.Services(nn.Namespace).Get(nn.Name)
		if err != nil {
			svc = nil
		}
		sl, err := p.slicesOf(l, nn)
		if err != nil && getErr == nil {
			getErr = err
		}
		if p.svcHC != nil {
			p.updateHealthInputs(nn, svc, sl)
		}
		return svc, sl
	}
	return get, &getErr
}

// prepare translates, before the source has synced, the Services that
// have arrived so far. Nothing is programmed.
func (p *Proxier) prepare() {
	l := p.src.Listers()
	if !p.prepared {
		node, err := l.Nodes.Get(p.cfg.NodeName)
		if err != nil {
			node = nil
		}
		tcfg, err := p.translateConfig(node)
		if err != nil {
			return // the first sync reports it
		}
		p.tracker.Reset(tcfg, nil, nil)
		p.prepared = true
	}
	svcs := p.checkoutServices()
	if len(svcs) == 0 {
		return
	}
	get, getErr := p.getter(l)
	p.tracker.Update(slices.Collect(maps.Keys(svcs)), get)
	if *getErr != nil {
		p.prepared = false // start again from the listers
	}
}

// finishPrepared completes the translation prepare began: the Services
// changed since, under the node's current description (a different one
// translates everything again).
func (p *Proxier) finishPrepared(l source.Listers, w work) (model.State, error) {
	node, err := l.Nodes.Get(p.cfg.NodeName)
	if apierrors.IsNotFound(err) {
		node, err = nil, nil
	}
	if err != nil {
		return model.State{}, fmt.Errorf("get node %s: %w", p.cfg.NodeName, err)
	}
	tcfg, err := p.translateConfig(node)
	if err != nil {
		return model.State{}, err
	}
	if !reflect.DeepEqual(tcfg, p.tracker.Config()) {
		return p.resetAll(l)
	}
	get, getErr := p.getter(l)
	state, _ := p.tracker.Update(slices.Collect(maps.Keys(w.services)), get)
	if *getErr != nil {
		p.prepared = false
		return model.State{}, *getErr
	}
	p.translated, p.lastFull = true, p.clock.Now()
	return state, nil
}

// listAll reads every object and describes the node to translate.
func (p *Proxier) listAll(l source.Listers) ([]*v1.Service, []*discoveryv1.EndpointSlice, translate.Config, error) {
	services, err := l.Services.List(labels.Everything())
	if err != nil {
		return nil, nil, translate.Config{}, fmt.Errorf("list services: %w", err)
	}
	slices, err := l.EndpointSlices.List(labels.Everything())
	if err != nil {
		return nil, nil, translate.Config{}, fmt.Errorf("list endpointslices: %w", err)
	}
	node, err := l.Nodes.Get(p.cfg.NodeName)
	if apierrors.IsNotFound(err) {
		node, err = nil, nil
	}
	if err != nil {
		return nil, nil, translate.Config{}, fmt.Errorf("get node %s: %w", p.cfg.NodeName, err)
	}
	tcfg, err := p.translateConfig(node)
	if err != nil {
		return nil, nil, translate.Config{}, err
	}
	return services, slices, tcfg, nil
}

// slicesOf returns the EndpointSlices of a Service.
func (p *Proxier) slicesOf(l source.Listers, nn types.NamespacedName) ([]*discoveryv1.EndpointSlice, error) {
	if l.ServiceSlices != nil {
		return l.ServiceSlices(nn.Namespace, nn.Name)
	}
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: nn.Name})
	out, err := l.EndpointSlices.EndpointSlices(nn.Namespace).List(sel)
	if err != nil {
		return nil, fmt.Errorf("list endpointslices of %s: %w", nn, err)
	}
	return out, nil
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

// updateHealthInputs refreshes one Service's health check port and local
// endpoint count.
func (p *Proxier) updateHealthInputs(nn types.NamespacedName, svc *v1.Service, sl []*discoveryv1.EndpointSlice) {
	ports := healthcheck.NodePorts([]*v1.Service{svc}, v1.IPv4Protocol, p.cfg.ProxyName)
	local := healthcheck.LocalReadyEndpoints(sl, p.cfg.NodeName, v1.IPv4Protocol)
	portChanged := copyEntry(p.hcPorts, ports, nn)
	localChanged := copyEntry(p.hcLocal, local, nn)
	p.hcDirty = p.hcDirty || portChanged || localChanged
}

// copyEntry makes dst's entry for k what src has (none when src has none)
// and reports whether it changed.
func copyEntry[V comparable](dst, src map[types.NamespacedName]V, k types.NamespacedName) bool {
	v, ok := src[k]
	old, had := dst[k]
	switch {
	case ok && (!had || old != v):
		dst[k] = v
		return true
	case !ok && had:
		delete(dst, k)
		return true
	}
	return false
}

// syncHealthChecks updates the healthCheckNodePort servers, as kube-proxy
// does after a successful sync: always after a full run, otherwise when a
// changed Service's port or local endpoints changed.
func (p *Proxier) syncHealthChecks(rep *report, byName svcLookup, full bool) {
	if full || p.hcDirty {
		p.hcDirty = false
		ports := maps.Clone(p.hcPorts)
		p.hcFailed = p.svcHC.SyncServices(ports)
		p.hcFailedPorts = ports
		p.svcHC.SyncEndpoints(maps.Clone(p.hcLocal))
	}
	// Failures persist until a later sync opens the port: keep reporting
	// them (once per repeat interval).
	for nsn, err := range p.hcFailed {
		port := p.hcFailedPorts[nsn]
		note := fmt.Sprintf("node %s failed to start healthcheck %q on port %d: %v", p.cfg.NodeName, nsn.String(), port, err)
		if rep.first("hc/" + nsn.String() + "/" + note) {
			p.log.Error("failed to start healthcheck", zap.Stringer("service", nsn), zap.Uint16("port", port), zap.Error(err))
			p.event(byName, nsn, events.ReasonFailedToStartServiceHealthcheck, "Listen", note)
		}
	}
}
