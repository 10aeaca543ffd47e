package nodeinfo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"go.uber.org/zap"
)

// WatchConfig configures Watch.
type WatchConfig struct {
	Inspector *Inspector
	// Namespace to watch; nil watches the calling thread's network
	// namespace. The Inspector's sources must look at the same namespace.
	Namespace *netns.NsHandle
	// Debounce gathers a burst of netlink events into one inspection;
	// default 200ms.
	Debounce time.Duration
	// Resync re-inspects periodically even without events (changes that
	// netlink does not announce, such as IRQ affinity); 0 disables it.
	Resync time.Duration
	// OnStatus receives the first status and every status whose
	// decisions or plans differ from the previous one. It runs on Watch's
	// goroutine.
	OnStatus func(Status)
	Metrics  *Metrics
	Logger   *zap.Logger
}

// Watch inspects once, then again after netlink link, address or route
// changes, until ctx ends. It returns nil when ctx ends, or an error if
// netlink cannot be subscribed to at all.
func Watch(ctx context.Context, cfg WatchConfig) error {
	if cfg.Inspector == nil {
		return errors.New("watch: no inspector")
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	debounce := cfg.Debounce
	if debounce <= 0 {
		debounce = 200 * time.Millisecond
	}
	kick := make(chan struct{}, 1)
	notify := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	subs := []subscription{
		{"link", func(done <-chan struct{}, onErr func(error)) (<-chan struct{}, error) {
			ch := make(chan netlink.LinkUpdate, 64)
			err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{Namespace: cfg.Namespace, ErrorCallback: onErr})
			return forward(ch), err
		}},
		{"address", func(done <-chan struct{}, onErr func(error)) (<-chan struct{}, error) {
			ch := make(chan netlink.AddrUpdate, 64)
			err := netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{Namespace: cfg.Namespace, ErrorCallback: onErr})
			return forward(ch), err
		}},
		{"route", func(done <-chan struct{}, onErr func(error)) (<-chan struct{}, error) {
			ch := make(chan netlink.RouteUpdate, 64)
			err := netlink.RouteSubscribeWithOptions(ch, done, netlink.RouteSubscribeOptions{Namespace: cfg.Namespace, ErrorCallback: onErr})
			return forward(ch), err
		}},
	}
	for _, s := range subs {
		// Subscribe before the first inspection so no change is missed.
		events, done, err := s.start(ctx, log)
		if err != nil {
			return err
		}
		go s.loop(ctx, log, events, done, notify)
	}

	var last []byte
	inspect := func() {
		st, err := cfg.Inspector.Inspect()
		if err != nil {
			log.Warn("node device inspection failed", zap.Error(err))
			if cfg.Metrics != nil {
				cfg.Metrics.Failed()
			}
			return
		}
		if cfg.Metrics != nil {
			cfg.Metrics.Update(st)
		}
		key := fingerprint(st)
		if last != nil && bytes.Equal(key, last) {
			return
		}
		last = key
		if cfg.OnStatus != nil {
			cfg.OnStatus(st)
		}
	}
	inspect()

	var resync <-chan time.Time
	var ticker *time.Ticker
	if cfg.Resync > 0 {
		ticker = time.NewTicker(cfg.Resync)
		defer ticker.Stop()
		resync = ticker.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-resync:
		case <-kick:
			// Let the burst settle.
			t := time.NewTimer(debounce)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			select {
			case <-kick:
			default:
			}
		}
		inspect()
	}
}

// fingerprint is what must change for a status to be handed on.
func fingerprint(s Status) []byte {
	b, _ := json.Marshal(struct {
		D any
		C any
		M any
		P any
	}{s.Decisions, s.Chosen, s.Missing, s.Plans})
	return b
}

func forward[T any](in <-chan T) <-chan struct{} {
	out := make(chan struct{}, 1)
	go func() {
		defer close(out)
		for range in {
			select {
			case out <- struct{}{}:
			default:
			}
		}
	}()
	return out
}

type subscription struct {
	name string
	sub  func(done <-chan struct{}, onErr func(error)) (<-chan struct{}, error)
}

func (s subscription) start(ctx context.Context, log *zap.Logger) (<-chan struct{}, chan struct{}, error) {
	done := make(chan struct{})
	events, err := s.sub(done, func(err error) {
		if ctx.Err() == nil {
			log.Warn("netlink subscription error", zap.String("kind", s.name), zap.Error(err))
		}
	})
	if err != nil {
		close(done)
		return nil, nil, err
	}
	return events, done, nil
}

// loop forwards events and resubscribes when a subscription ends early
// (socket errors such as ENOBUFS end it).
func (s subscription) loop(ctx context.Context, log *zap.Logger, events <-chan struct{}, done chan struct{}, notify func()) {
	for {
		stop := make(chan struct{})
		go func(done chan struct{}) {
			select {
			case <-ctx.Done():
			case <-stop:
			}
			close(done)
		}(done)
		for range events {
			notify()
		}
		close(stop)
		if ctx.Err() != nil {
			return
		}
		log.Warn("netlink subscription ended; resubscribing", zap.String("kind", s.name))
		notify() // events may have been lost
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			var err error
			if events, done, err = s.start(ctx, log); err == nil {
				break
			}
			log.Warn("netlink resubscribe failed", zap.String("kind", s.name), zap.Error(err))
		}
	}
}
