package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/straitlb/strait/bgp"
	"github.com/straitlb/strait/bgp/gobgp"
	"github.com/straitlb/strait/controlplane/bgpconfig"
	"github.com/straitlb/strait/controlplane/proxier"
	"github.com/straitlb/strait/controlplane/source"
	"github.com/straitlb/strait/dataplane/program"
	"github.com/straitlb/strait/model"
)

// bgpAgent announces LoadBalancer IPs: after every programmed state it
// hands the state, this node's status and the configured peers to the
// BGP controller. On shutdown it drains (GRACEFUL_SHUTDOWN, then
// withdraw) before the agent exits.
type bgpAgent struct {
	log     *zap.Logger
	node    string
	src     source.Source
	ctrl    *bgp.Controller
	speaker *gobgp.Speaker
	drain   time.Duration
	load    func(context.Context) (bgpconfig.Config, error)

	mu      sync.Mutex
	peers   []bgp.Peer
	advs    []bgp.AdvertisementConfig
	lastErr string
	state   *model.State // last programmed state
}

// advertisementsOf turns validated BGPAdvertisements into announce
// configurations, each selecting the addresses of its pools. Without any
// advertisement nothing is announced (as MetalLB).
func advertisementsOf(bc bgpconfig.Config) []bgp.AdvertisementConfig {
	var out []bgp.AdvertisementConfig
	for _, ad := range bc.Advertisements {
		cfg := ad.Config
		pools := ad.Pools
		cfg.Selects = func(a netip.Addr) bool {
			p, ok := bc.PoolOf(a)
			return ok && slices.Contains(pools, p.Name)
		}
		out = append(out, cfg)
	}
	if len(out) == 0 {
		out = append(out, bgp.AdvertisementConfig{Selects: func(netip.Addr) bool { return false }})
	}
	return out
}

// reload reads the configuration again; bad objects are left out and
// logged once per distinct error.
func (a *bgpAgent) reload(ctx context.Context) {
	bc, err := a.load(ctx)
	a.mu.Lock()
	defer a.mu.Unlock()
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if msg != a.lastErr && msg != "" {
		a.log.Warn("BGP configuration has errors; the valid objects are used", zap.Error(err))
	}
	a.lastErr = msg
	a.peers, a.advs = bc.Peers, advertisementsOf(bc)
}

// watchConfig reloads the configuration every interval, so peers, pools and
// advertisements change without a restart (applied at the next sync).
func (a *bgpAgent) watchConfig(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			a.reload(ctx)
			a.mu.Lock()
			st := a.state
			a.mu.Unlock()
			if st != nil {
				a.update(ctx, *st)
			}
		}
	}
}

// loadBGPConfig reads strait.io objects from the standalone directory.
func loadBGPConfig(dir string) (bgpconfig.Config, error) {
	var objs bgpconfig.Objects
	var errs []error
	files, _ := filepath.Glob(filepath.Join(dir, "*.y*ml"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return bgpconfig.Config{}, err
		}
		o, err := bgpconfig.DecodeYAML(b)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f, err))
		}
		objs.Pools = append(objs.Pools, o.Pools...)
		objs.Peers = append(objs.Peers, o.Peers...)
		objs.Advertisements = append(objs.Advertisements, o.Advertisements...)
	}
	c := bgpconfig.Convert(bgpconfig.Input{Objects: objs})
	return c, errors.Join(append(errs, c.Err())...)
}

// loadBGPConfigFromCluster lists the strait.io objects and the Secrets
// their peers' passwords are in.
func loadBGPConfigFromCluster(ctx context.Context, dyn dynamic.Interface, client kubernetes.Interface) (bgpconfig.Config, error) {
	var objs bgpconfig.Objects
	var errs []error
	for _, res := range []schema.GroupVersionResource{bgpconfig.LoadBalancerIPPoolResource, bgpconfig.BGPPeerResource, bgpconfig.BGPAdvertisementResource} {
		l, err := dyn.Resource(res).List(ctx, metav1.ListOptions{})
		if err != nil {
			errs = append(errs, fmt.Errorf("list %s: %w", res.Resource, err))
			continue
		}
		for i := range l.Items {
			if err := objs.AddUnstructured(&l.Items[i]); err != nil {
				errs = append(errs, err)
			}
		}
	}
	secrets := make(map[types.NamespacedName]map[string][]byte)
	for _, ref := range objs.SecretRefs() {
		sec, err := client.CoreV1().Secrets(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			errs = append(errs, fmt.Errorf("read secret %s: %w", ref, err))
			continue
		}
		secrets[ref] = sec.Data
	}
	c := bgpconfig.Convert(bgpconfig.Input{Objects: objs, Secrets: secrets})
	return c, errors.Join(append(errs, c.Err())...)
}

// newBGPAgent returns nil when no peer is configured at start.
func newBGPAgent(ctx context.Context, log *zap.Logger, cfg Config, src source.Source, nodeIP netip.Addr,
	dyn dynamic.Interface, client kubernetes.Interface) (*bgpAgent, error) {
	a := &bgpAgent{log: log, node: cfg.NodeName, src: src, drain: cfg.BGPDrainTime.Duration}
	if cfg.Standalone != "" {
		a.load = func(context.Context) (bgpconfig.Config, error) { return loadBGPConfig(cfg.Standalone) }
	} else {
		a.load = func(ctx context.Context) (bgpconfig.Config, error) { return loadBGPConfigFromCluster(ctx, dyn, client) }
	}
	a.reload(ctx)
	if len(a.peers) == 0 {
		return nil, nil
	}
	sp, err := gobgp.New(ctx, gobgp.Config{NodeIP: nodeIP, Logger: log.Named("gobgp")})
	if err != nil {
		return nil, err
	}
	a.speaker = sp
	a.ctrl = bgp.NewController(sp, bgp.ControllerConfig{DrainTime: a.drain, Logger: log})
	var names []string
	for _, p := range a.peers {
		names = append(names, p.String())
	}
	log.Info("BGP speaker started", zap.Stringer("routerID", nodeIP), zap.String("peers", strings.Join(names, ", ")),
		zap.Int("advertisements", len(a.advs)))
	return a, nil
}

func (a *bgpAgent) nodeStatus() bgp.NodeStatus {
	st := bgp.NodeStatus{Name: a.node}
	if n, err := a.src.Listers().Nodes.Get(a.node); err == nil {
		st.Labels, st.Unschedulable = n.Labels, n.Spec.Unschedulable
	}
	return st
}

// announced is the part of state BGP looks at: the services with a
// LoadBalancer frontend, copied, since the proxier reuses state's slice
// at its next sync while the config reload still reads it.
func announced(state model.State) model.State {
	var out model.State
	for i := range state.Services {
		if slices.ContainsFunc(state.Services[i].Frontends, func(f model.Frontend) bool { return f.Kind == model.LoadBalancer }) {
			out.Services = append(out.Services, state.Services[i])
		}
	}
	return out
}

// update announces what state says this node should.
func (a *bgpAgent) update(ctx context.Context, state model.State) {
	a.mu.Lock()
	a.state = &state
	in := bgp.Input{State: state, Node: a.nodeStatus(), Peers: a.peers, Advertisements: a.advs}
	a.mu.Unlock()
	if err := a.ctrl.Update(ctx, in); err != nil && !errors.Is(err, bgp.ErrShutDown) {
		a.log.Warn("BGP update failed; retried on the next sync", zap.Error(err))
	}
}

// shutdown drains and withdraws, then stops the speaker.
func (a *bgpAgent) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), a.drain+10*time.Second)
	defer cancel()
	a.log.Info("BGP drain: announcing GRACEFUL_SHUTDOWN, then withdrawing", zap.Duration("drainTime", a.drain))
	if err := a.ctrl.Drain(ctx, a.drain); err != nil {
		a.log.Warn("BGP drain", zap.Error(err))
	}
	_ = a.speaker.Close()
}

// announcingDataplane applies to the datapath, then announces.
type announcingDataplane struct {
	proxier.Dataplane
	ctx context.Context
	bgp *bgpAgent
}

func (d announcingDataplane) Apply(s model.State) (program.Result, error) {
	res, err := d.Dataplane.Apply(s)
	if err == nil {
		d.bgp.update(d.ctx, announced(s))
	}
	return res, err
}

// ApplyChanges applies incrementally when the datapath can.
func (d announcingDataplane) ApplyChanges(s model.State, changed []model.ServiceName) (program.Result, error) {
	inc, ok := d.Dataplane.(proxier.IncrementalDataplane)
	if !ok {
		return d.Apply(s)
	}
	res, err := inc.ApplyChanges(s, changed)
	if err == nil {
		d.bgp.update(d.ctx, announced(s))
	}
	return res, err
}
