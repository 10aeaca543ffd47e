package runner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
	"k8s.io/utils/clock"
)

// Config bounds how often the function runs. MinInterval and MaxInterval are
// required; zero retry fields take defaults.
type Config struct {
	// MinInterval is the least time between the end of one run and the
	// start of the next. Triggers inside it are deferred and collapsed.
	MinInterval time.Duration
	// MaxInterval is the most time between the end of one successful run
	// and the start of the next, with or without triggers.
	MaxInterval time.Duration
	// RetryInitial is the delay before the first retry of a failed run
	// (default: MinInterval, or one second if that is 0). Each further
	// consecutive failure doubles it.
	RetryInitial time.Duration
	// RetryMax caps the retry delay (default and upper bound: MaxInterval).
	RetryMax time.Duration
}

func (c *Config) validate() error {
	if c.MinInterval < 0 {
		return fmt.Errorf("minInterval %s is negative", c.MinInterval)
	}
	if c.MaxInterval <= 0 {
		return fmt.Errorf("maxInterval %s is not positive", c.MaxInterval)
	}
	if c.MaxInterval < c.MinInterval {
		return fmt.Errorf("maxInterval %s is shorter than minInterval %s", c.MaxInterval, c.MinInterval)
	}
	if c.RetryInitial < 0 || c.RetryMax < 0 {
		return errors.New("retry intervals must not be negative")
	}
	if c.RetryInitial == 0 {
		c.RetryInitial = c.MinInterval
		if c.RetryInitial == 0 {
			c.RetryInitial = time.Second
		}
	}
	if c.RetryMax == 0 || c.RetryMax > c.MaxInterval {
		c.RetryMax = c.MaxInterval
	}
	if c.RetryInitial > c.RetryMax {
		c.RetryInitial = c.RetryMax
	}
	return nil
}

// Runner runs one function at a bounded frequency. Loop must be running for
// anything to happen; Trigger may be called from any goroutine, before or
// after Loop starts.
type Runner struct {
	name    string
	fn      func() error
	cfg     Config
	clock   clock.Clock
	log     *zap.Logger
	trigger chan struct{}

	// onWait, when set by tests, is called each time Loop blocks, with the
	// time of the next scheduled run.
	onWait func(next time.Time)
}

// New returns a runner for fn. name is used in log lines.
func New(name string, fn func() error, cfg Config, clk clock.Clock, log *zap.Logger) (*Runner, error) {
	if fn == nil {
		return nil, errors.New("create runner: nil function")
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("create runner %s: %w", name, err)
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Runner{
		name:    name,
		fn:      fn,
		cfg:     cfg,
		clock:   clk,
		log:     log.With(zap.String("runner", name)),
		trigger: make(chan struct{}, 1),
	}, nil
}

// Trigger asks for a run as soon as MinInterval (and any retry backoff)
// allows. It never blocks; triggers before the run starts collapse into one.
func (r *Runner) Trigger() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// Loop runs the function until ctx is done. The first run happens on the
// first Trigger, or MaxInterval after Loop starts.
func (r *Runner) Loop(ctx context.Context) {
	var (
		lastEnd  time.Time // end of the previous run; zero before the first
		failures int       // consecutive failures
		next     = r.clock.Now().Add(r.cfg.MaxInterval)
	)
	timer := r.clock.NewTimer(r.cfg.MaxInterval)
	defer timer.Stop()

	r.log.Debug("runner loop started")
	for {
		if now := r.clock.Now(); next.After(now) {
			// The timer is stopped while fn runs and re-armed here,
			// so a fake clock sees exactly one waiter while idle.
			stopTimer(timer)
			timer.Reset(next.Sub(now))
			if r.onWait != nil {
				r.onWait(next)
			}
			select {
			case <-ctx.Done():
				r.log.Debug("runner loop stopped")
				return
			case <-r.trigger:
				earliest := r.earliestAfterTrigger(lastEnd, failures)
				if earliest.Before(next) {
					next = earliest
				}
				continue
			case <-timer.C():
			}
		}
		if ctx.Err() != nil {
			return
		}
		stopTimer(timer)
		// A trigger that arrived before this run is satisfied by it.
		select {
		case <-r.trigger:
		default:
		}

		err := r.fn()
		lastEnd = r.clock.Now()
		if err != nil {
			failures++
			delay := r.backoff(failures)
			next = lastEnd.Add(delay)
			r.log.Warn("run failed; retrying after backoff", zap.Error(err),
				zap.Int("failures", failures), zap.Duration("backoff", delay))
			continue
		}
		if failures > 0 {
			r.log.Info("run succeeded after failures", zap.Int("failures", failures))
		}
		failures = 0
		next = lastEnd.Add(r.cfg.MaxInterval)
	}
}

// earliestAfterTrigger is when a triggered run may start.
func (r *Runner) earliestAfterTrigger(lastEnd time.Time, failures int) time.Time {
	if lastEnd.IsZero() {
		return r.clock.Now()
	}
	gap := r.cfg.MinInterval
	if failures > 0 {
		gap = max(gap, r.backoff(failures))
	}
	return lastEnd.Add(gap)
}

// backoff is the delay after the n-th consecutive failure.
func (r *Runner) backoff(n int) time.Duration {
	d := r.cfg.RetryInitial
	for i := 1; i < n && d < r.cfg.RetryMax; i++ {
		d *= 2
	}
	return min(d, r.cfg.RetryMax)
}

// stopTimer stops t and drains a tick that fired but was not received, so
// that a re-armed timer never delivers a stale tick.
func stopTimer(t clock.Timer) {
	if !t.Stop() {
		select {
		case <-t.C():
		default:
		}
	}
}
