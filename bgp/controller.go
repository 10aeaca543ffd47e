package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
	"k8s.io/utils/clock"

	"github.com/straitlb/strait/model"
)

// Drain is the graceful shutdown of a speaker (RFC 8326): it re-advertises
// current with GRACEFUL_SHUTDOWN and LOCAL_PREF 0, waits drainTime so the
// routers move traffic to other nodes, then withdraws everything. When ctx
// ends during the wait, it withdraws at once and returns ctx's error. With
// nothing to drain it only withdraws.
func Drain(ctx context.Context, s Speaker, current []Advertisement, drainTime time.Duration) error {
	return drain(ctx, s, current, drainTime, clock.RealClock{})
}

func drain(ctx context.Context, s Speaker, current []Advertisement, drainTime time.Duration, clk clock.Clock) error {
	var errs []error
	if len(current) > 0 {
		if err := s.SetAdvertisements(ctx, GracefulShutdown(current)); err != nil {
			errs = append(errs, fmt.Errorf("drain: advertise graceful shutdown: %w", err))
		} else if drainTime > 0 {
			select {
			case <-clk.After(drainTime):
			case <-ctx.Done():
				errs = append(errs, fmt.Errorf("drain: %w", ctx.Err()))
			}
		}
	}
	// Withdraw even when ctx is done: leaving routes to a node that is
	// going away is worse than a late call.
	if err := s.SetAdvertisements(context.WithoutCancel(ctx), nil); err != nil {
		errs = append(errs, fmt.Errorf("drain: withdraw: %w", err))
	}
	return errors.Join(errs...)
}

// ErrShutDown is returned by Controller.Update after Drain.
var ErrShutDown = errors.New("bgp controller is shut down")

// ControllerConfig configures a Controller.
type ControllerConfig struct {
	Advertisement AdvertisementConfig
	// DrainTime is how long a node that stops being eligible (cordoned,
	// excluded, or no longer selected by the advertisement's node
	// selector) keeps announcing its prefixes with GRACEFUL_SHUTDOWN
	// before it withdraws them. 0 withdraws at once.
	DrainTime time.Duration
	// Clock drives the drain timer (nil: the real clock).
	Clock clock.WithDelayedExecution
	// Logger (nil: no logging).
	Logger *zap.Logger
	// UpdateTimeout bounds the speaker calls made when a drain timer
	// fires, outside any Update (0: 30s).
	UpdateTimeout time.Duration
}

// Input is everything the Controller needs for one node.
type Input struct {
	State model.State
	Node  NodeStatus
	// Advertisements, when not empty, replace ControllerConfig's single
	// Advertisement (several advertisements, each selecting its pools'
	// addresses; configuration changes without a restart).
	Advertisements []AdvertisementConfig
	// Peers are all configured peers; those whose NodeSelector does not
	// match Node are not used.
	Peers []Peer
}

// Controller drives a Speaker for one node: Update selects the peers,
// computes the announcements and applies both; it drains before
// withdrawing when the node stops being eligible. Safe for concurrent use.
type Controller struct {
	speaker Speaker
	cfg     ControllerConfig
	clk     clock.WithDelayedExecution
	log     *zap.Logger

	mu       sync.Mutex
	in       Input
	haveIn   bool
	eligible bool // at the last Update
	// draining: the node became ineligible and drainSet is being
	// announced with GRACEFUL_SHUTDOWN until the timer fires.
	draining   bool
	drainSet   map[netip.Prefix]bool
	drainTimer clock.Timer
	drainGen   uint64
	shutdown   bool

	peers       []Peer // applied, NodeSelector cleared
	peersOK     bool
	advertised  []Advertisement // applied; not modified while it is
	advertiseOK bool
	ann         announcer // computes what to advertise
}

// NewController returns a controller for s. Nothing is sent before the
// first Update.
func NewController(s Speaker, cfg ControllerConfig) *Controller {
	c := &Controller{speaker: s, cfg: cfg, clk: cfg.Clock, log: cfg.Logger}
	if c.clk == nil {
		c.clk = clock.RealClock{}
	}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	if c.cfg.UpdateTimeout <= 0 {
		c.cfg.UpdateTimeout = 30 * time.Second
	}
	return c
}

// Update makes the speaker announce what in calls for. It returns the
// speaker's error; the caller retries by calling Update again (the next
// call re-applies whatever failed). A node that is already ineligible at the
// first Update announces nothing and does not drain.
func (c *Controller) Update(ctx context.Context, in Input) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shutdown {
		return ErrShutDown
	}
	c.in = in
	wasEligible := c.eligible && c.haveIn
	c.haveIn = true
	eligible, why := c.eligibleLocked()
	c.eligible = eligible
	switch {
	case eligible && c.draining:
		c.log.Info("node is eligible again: drain cancelled", zap.String("node", in.Node.Name))
		c.stopDrainLocked()
	case wasEligible && !eligible && !c.draining && c.cfg.DrainTime > 0 && len(c.advertised) > 0:
		c.startDrainLocked(why)
	}
	return c.reconcileLocked(ctx)
}

// Draining reports whether the node is announcing with GRACEFUL_SHUTDOWN
// before withdrawing.
func (c *Controller) Draining() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.draining
}

// Advertised returns the advertisements last applied to the speaker.
func (c *Controller) Advertised() []Advertisement {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Advertisement, len(c.advertised))
	for i, a := range c.advertised {
		out[i] = a.Clone()
	}
	return out
}

func (c *Controller) startDrainLocked(why string) {
	c.draining = true
	c.drainSet = make(map[netip.Prefix]bool, len(c.advertised))
	for _, a := range c.advertised {
		c.drainSet[a.Prefix] = true
	}
	c.drainGen++
	gen := c.drainGen
	c.log.Info("node is no longer eligible: draining before withdrawal",
		zap.String("node", c.in.Node.Name), zap.String("reason", why),
		zap.Duration("drainTime", c.cfg.DrainTime), zap.Int("prefixes", len(c.drainSet)))
	c.drainTimer = c.clk.AfterFunc(c.cfg.DrainTime, func() { c.drainExpired(gen) })
}

func (c *Controller) stopDrainLocked() {
	if c.drainTimer != nil {
		c.drainTimer.Stop()
		c.drainTimer = nil
	}
	c.draining = false
	c.drainSet = nil
	c.drainGen++
}

func (c *Controller) drainExpired(gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shutdown || !c.draining || gen != c.drainGen {
		return
	}
	c.draining, c.drainSet, c.drainTimer = false, nil, nil
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.UpdateTimeout)
	defer cancel()
	if err := c.reconcileLocked(ctx); err != nil {
		c.log.Error("withdraw after drain failed; the next Update retries", zap.Error(err))
	}
}

// advsLocked are the advertisements in force.
func (c *Controller) advsLocked() []AdvertisementConfig {
	if len(c.in.Advertisements) > 0 {
		return c.in.Advertisements
	}
	return []AdvertisementConfig{c.cfg.Advertisement}
}

// eligibleLocked: the node announces while at least one advertisement
// selects it.
func (c *Controller) eligibleLocked() (bool, string) {
	var why string
	for _, adv := range c.advsLocked() {
		ok, w := NodeEligible(c.in.Node, adv)
		if ok {
			return true, ""
		}
		why = w
	}
	return false, why
}

// desiredLocked returns the advertisements for the current input: what the
// node announces if it is eligible (AnnouncementsOf); when draining, what it
// would announce if it were still eligible, limited to what it announced
// when the drain started (services that go away are withdrawn, new ones are
// not announced), with GRACEFUL_SHUTDOWN; in both cases restricted to the
// selected peers (RestrictToPeers). The result must not be modified.
func (c *Controller) desiredLocked(peers []Peer) []Advertisement {
	configs := c.advsLocked()
	active := make([]bool, len(configs))
	for i, adv := range configs {
		active[i] = c.draining
		if !c.draining {
			active[i], _ = NodeEligible(c.in.Node, adv)
		}
	}
	return c.ann.update(&c.in.State, configs, active, templates(configs, peers, c.draining), c.draining, c.drainGen, c.drainSet)
}

// sameAdvertisements compares two sorted lists; the same slice is equal to
// itself without a look at its elements.
func sameAdvertisements(a, b []Advertisement) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || sameArray(a, b) {
		return true
	}
	return slices.EqualFunc(a, b, Advertisement.Equal)
}

// sameArray reports whether a and b start at the same element.
func sameArray(a, b []Advertisement) bool {
	return cap(a) > 0 && cap(b) > 0 && &a[:1][0] == &b[:1][0]
}

func (c *Controller) reconcileLocked(ctx context.Context) error {
	peers := SelectPeers(c.in.Peers, c.in.Node)
	if !c.peersOK || !slices.Equal(peers, c.peers) {
		if err := c.speaker.SetPeers(ctx, peers); err != nil {
			c.peersOK = false
			return fmt.Errorf("set peers: %w", err)
		}
		c.peers, c.peersOK = peers, true
	}
	advs := c.desiredLocked(peers)
	if !c.advertiseOK || !sameAdvertisements(advs, c.advertised) {
		if err := c.speaker.SetAdvertisements(ctx, advs); err != nil {
			c.advertiseOK = false
			return fmt.Errorf("set advertisements: %w", err)
		}
		if !sameArray(c.advertised, advs) {
			c.ann.recycle(c.advertised) // the speaker did not keep it
		}
		c.advertised, c.advertiseOK = advs, true
	}
	return nil
}

// Drain shuts the node's announcements down gracefully (on SIGTERM): it
// re-advertises everything with GRACEFUL_SHUTDOWN and LOCAL_PREF 0, waits
// drainTime, then withdraws everything. Afterwards Update returns
// ErrShutDown; sessions stay up until the speaker is closed.
func (c *Controller) Drain(ctx context.Context, drainTime time.Duration) error {
	c.mu.Lock()
	if c.shutdown {
		c.mu.Unlock()
		return ErrShutDown
	}
	c.shutdown = true
	if c.drainTimer != nil {
		c.drainTimer.Stop()
		c.drainTimer = nil
	}
	c.draining, c.drainSet = false, nil
	current := c.advertised
	c.log.Info("draining for shutdown", zap.Duration("drainTime", drainTime), zap.Int("prefixes", len(current)))
	c.mu.Unlock()

	err := drain(ctx, c.speaker, current, drainTime, c.clk)

	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.advertised = nil
	} else {
		c.advertiseOK = false
	}
	return err
}
