package proxier

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/straitlb/strait/controlplane/events"
	"github.com/straitlb/strait/controlplane/healthcheck"
	"github.com/straitlb/strait/controlplane/metrics"
	"github.com/straitlb/strait/controlplane/runner"
	"github.com/straitlb/strait/controlplane/source"
	"github.com/straitlb/strait/controlplane/translate"
	"github.com/straitlb/strait/dataplane/program"
	"github.com/straitlb/strait/model"
)

// Dataplane programs a desired state; *program.Programmer is one. Apply is
// only ever called from one goroutine.
type Dataplane interface {
	Apply(model.State) (program.Result, error)
}

// IncrementalDataplane is a Dataplane that can be told which services
// changed since the previous state; the Proxier uses ApplyChanges between
// full syncs when the Dataplane has it.
type IncrementalDataplane interface {
	Dataplane
	// ApplyChanges programs state, of which only the services named in
	// changed (added, updated or removed) differ from the previous one.
	ApplyChanges(state model.State, changed []model.ServiceName) (program.Result, error)
}

// Health is told when updates are queued and when they are programmed;
// *healthcheck.ProxyHealth is one.
type Health interface {
	Updated()
	QueuedUpdate()
}

// ServiceHealth serves the healthCheckNodePorts; *healthcheck.ServiceHealth
// is one.
type ServiceHealth interface {
	// SyncServices opens exactly these health checks and returns the ones
	// that could not be opened.
	SyncServices(map[types.NamespacedName]uint16) map[types.NamespacedName]error
	// SyncEndpoints sets the local ready endpoint counts.
	SyncEndpoints(map[types.NamespacedName]int)
	// Close closes every health check.
	Close()
}

var (
	_ Dataplane            = (*program.Programmer)(nil)
	_ IncrementalDataplane = (*program.Programmer)(nil)
	_ Health               = (*healthcheck.ProxyHealth)(nil)
	_ ServiceHealth        = (*healthcheck.ServiceHealth)(nil)
)

// Deps are the Proxier's collaborators. Source and Dataplane are required.
type Deps struct {
	Source    source.Source
	Dataplane Dataplane
	// Recorder records Events on Services (default: a logging recorder).
	Recorder events.Recorder
	// Metrics (default: registered nowhere).
	Metrics *metrics.Metrics
	// Health is the healthz state (optional).
	Health Health
	// ServiceHealth serves healthCheckNodePorts (optional). The Proxier
	// closes it when Run returns.
	ServiceHealth ServiceHealth
	// Clock (default: the real clock).
	Clock clock.WithTicker
}

// Proxier keeps the dataplane in sync with the source.
type Proxier struct {
	log     *zap.Logger
	cfg     Config
	src     source.Source
	dp      Dataplane
	rec     events.Recorder
	metrics *metrics.Metrics
	health  Health
	svcHC   ServiceHealth
	clock   clock.WithTicker
	runner  *runner.Runner
	// start: trigger times before it are not measured (as kube-proxy).
	start time.Time

	mu          sync.Mutex // guards the fields below
	initialized bool       // the source has synced
	pending     work
	// sliceOwner is the Service each EndpointSlice was last labelled
	// with, so that relabelling a slice changes both Services.
	sliceOwner map[types.NamespacedName]string
	running    bool

	// Used only by the sync goroutine.
	reported   reportLog
	tracker    *translate.Tracker
	translated bool // the tracker holds a complete translation
	prepared   bool // it holds what arrived before the source synced
	lastFull   time.Time
	// Health check inputs by Service, kept up to date with the changes.
	hcPorts       map[types.NamespacedName]uint16
	hcLocal       map[types.NamespacedName]int
	hcDirty       bool
	hcFailed      map[types.NamespacedName]error
	hcFailedPorts map[types.NamespacedName]uint16
}

// work is what a sync has to do: the Services that changed (their own
// object or their EndpointSlices), whether the Node changed, whether a
// full translation is due, and the trigger times to measure.
type work struct {
	services map[types.NamespacedName]struct{}
	node     bool
	full     bool
	triggers map[types.NamespacedName][]time.Time
}

func newWork() work {
	return work{services: make(map[types.NamespacedName]struct{}), triggers: make(map[types.NamespacedName][]time.Time)}
}

func (w work) size() int {
	n := len(w.services)
	if w.node {
		n++
	}
	return n
}

// New returns a Proxier; Run starts it.
func New(log *zap.Logger, cfg Config, deps Deps) (*Proxier, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("create proxier: %w", err)
	}
	if deps.Source == nil || deps.Dataplane == nil {
		return nil, errors.New("create proxier: source and dataplane are required")
	}
	if log == nil {
		log = zap.NewNop()
	}
	if deps.Recorder == nil {
		deps.Recorder = events.NewLogging(log)
	}
	if deps.Metrics == nil {
		deps.Metrics = metrics.Discard()
	}
	if deps.Clock == nil {
		deps.Clock = clock.RealClock{}
	}
	p := &Proxier{
		log:        log,
		cfg:        cfg,
		src:        deps.Source,
		dp:         deps.Dataplane,
		rec:        deps.Recorder,
		metrics:    deps.Metrics,
		health:     deps.Health,
		svcHC:      deps.ServiceHealth,
		clock:      deps.Clock,
		start:      deps.Clock.Now(),
		pending:    newWork(),
		sliceOwner: make(map[types.NamespacedName]string),
		reported:   reportLog{last: make(map[string]time.Time)},
		tracker:    translate.NewTracker(),
		hcPorts:    make(map[types.NamespacedName]uint16),
		hcLocal:    make(map[types.NamespacedName]int),
	}
	r, err := runner.New("sync", p.sync, runner.Config{
		MinInterval:  cfg.MinSyncPeriod,
		MaxInterval:  cfg.SyncPeriod,
		RetryInitial: cfg.RetryInitial,
		RetryMax:     cfg.RetryMax,
	}, deps.Clock, log)
	if err != nil {
		return nil, fmt.Errorf("create proxier: %w", err)
	}
	p.runner = r
	return p, nil
}

// Run runs the source and the sync loop until ctx is done, then closes the
// health check servers. It returns an error if the source fails.
func (p *Proxier) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.running {
		p.mu.Unlock()
		return errors.New("run proxier: already running")
	}
	p.running = true
	p.mu.Unlock()

	if p.health != nil {
		// As kube-proxy: healthy at start, in case no sync ever succeeds.
		p.health.Updated()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg     sync.WaitGroup
		srcErr error
	)
	wg.Go(func() {
		if err := p.src.Run(ctx, p.onChange); err != nil {
			srcErr = err
			cancel()
		}
	})
	wg.Go(func() { p.runner.Loop(ctx) })
	wg.Wait()
	if p.svcHC != nil {
		p.svcHC.Close()
	}
	if srcErr != nil {
		return fmt.Errorf("run source: %w", srcErr)
	}
	return nil
}

// Trigger asks for a sync as soon as MinSyncPeriod allows.
func (p *Proxier) Trigger() {
	p.runner.Trigger()
}

// onChange records a change from the source and triggers a sync. It never
// blocks on the sync.
func (p *Proxier) onChange(c source.Change) {
	p.mu.Lock()
	if c.Kind == source.KindSynced {
		first := !p.initialized
		p.initialized = true
		p.mu.Unlock()
		if first {
			p.log.Info("source synced; starting to program the dataplane")
		}
		p.queued()
		return
	}
	switch c.Kind {
	case source.KindService:
		p.pending.services[types.NamespacedName{Namespace: c.Namespace, Name: c.Name}] = struct{}{}
	case source.KindEndpointSlice:
		key := types.NamespacedName{Namespace: c.Namespace, Name: c.Name}
		if old, ok := p.sliceOwner[key]; ok && old != c.Service {
			p.pending.services[types.NamespacedName{Namespace: c.Namespace, Name: old}] = struct{}{}
		}
		if c.Deleted || c.Service == "" {
			delete(p.sliceOwner, key)
		} else {
			p.sliceOwner[key] = c.Service
		}
		if c.Service != "" {
			p.pending.services[types.NamespacedName{Namespace: c.Namespace, Name: c.Service}] = struct{}{}
		}
	case source.KindNode:
		p.pending.node = true
	default:
		// A kind this proxier does not know: translate everything.
		p.pending.full = true
	}
	if c.Kind == source.KindEndpointSlice && c.Service != "" {
		svc := types.NamespacedName{Namespace: c.Namespace, Name: c.Service}
		switch {
		case c.Deleted:
			// As kube-proxy: a deleted slice's annotation dates an
			// older change, so nothing is measured for the Service.
			delete(p.pending.triggers, svc)
		case !c.TriggerTime.IsZero() && c.TriggerTime.After(p.start):
			p.pending.triggers[svc] = append(p.pending.triggers[svc], c.TriggerTime)
		}
	}
	p.metrics.PendingChanges.Set(float64(p.pending.size()))
	initialized := p.initialized
	p.mu.Unlock()
	// Before the source has synced nothing is programmed (as kube-proxy,
	// which does not queue updates before it is initialized), but the
	// loop translates what has arrived, so that the first sync after the
	// Synced change has little left to do.
	if initialized {
		p.queued()
	} else {
		p.runner.Trigger()
	}
}

func (p *Proxier) queued() {
	if p.health != nil {
		p.health.QueuedUpdate()
	}
	p.runner.Trigger()
}

// checkoutServices takes the pending Services only, for a translation
// ahead of the first sync.
func (p *Proxier) checkoutServices() map[types.NamespacedName]struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	svcs := p.pending.services
	p.pending.services = make(map[types.NamespacedName]struct{})
	return svcs
}

// checkout takes the pending work for one sync.
func (p *Proxier) checkout() work {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.pending
	p.pending = newWork()
	p.metrics.PendingChanges.Set(0)
	return w
}

// restore puts back what a failed sync checked out; the retry translates
// everything.
func (p *Proxier) restore(w work) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k := range w.services {
		p.pending.services[k] = struct{}{}
	}
	p.pending.node = p.pending.node || w.node
	p.pending.full = true
	for svc, ts := range w.triggers {
		p.pending.triggers[svc] = append(ts, p.pending.triggers[svc]...)
	}
	p.metrics.PendingChanges.Set(float64(p.pending.size()))
}
