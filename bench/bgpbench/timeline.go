package bgpbench

import (
	"context"
	"net/netip"
	"sort"
	"sync"
	"time"
)

// timeline records when each prefix was seen announced or withdrawn at one
// observation point (the wire, bgpd's log). Safe for concurrent use.
type timeline struct {
	mu     sync.Mutex
	at     map[tlKey][]time.Time // ascending per key when recorded in order
	notify chan struct{}         // closed and replaced on every record
}

type tlKey struct {
	prefix netip.Prefix
	add    bool
}

func newTimeline() *timeline {
	return &timeline{at: make(map[tlKey][]time.Time), notify: make(chan struct{})}
}

func (t *timeline) record(p netip.Prefix, add bool, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := tlKey{p, add}
	ts := t.at[k]
	// Keep each list sorted (log lines may be fed out of order).
	i := sort.Search(len(ts), func(i int) bool { return ts[i].After(at) })
	ts = append(ts, time.Time{})
	copy(ts[i+1:], ts[i:])
	ts[i] = at
	t.at[k] = ts
	close(t.notify)
	t.notify = make(chan struct{})
}

// first returns the earliest time p was seen added (or withdrawn) at or
// after since.
func (t *timeline) first(p netip.Prefix, add bool, since time.Time) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.firstLocked(p, add, since)
}

func (t *timeline) firstLocked(p netip.Prefix, add bool, since time.Time) (time.Time, bool) {
	ts := t.at[tlKey{p, add}]
	i := sort.Search(len(ts), func(i int) bool { return !ts[i].Before(since) })
	if i == len(ts) {
		return time.Time{}, false
	}
	return ts[i], true
}

// wait is first, waiting up to timeout for the event to be recorded.
func (t *timeline) wait(ctx context.Context, p netip.Prefix, add bool, since time.Time, timeout time.Duration) (time.Time, bool) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		t.mu.Lock()
		at, ok := t.firstLocked(p, add, since)
		ch := t.notify
		t.mu.Unlock()
		if ok {
			return at, true
		}
		select {
		case <-ch:
		case <-timer.C:
			return time.Time{}, false
		case <-ctx.Done():
			return time.Time{}, false
		}
	}
}

// last returns the latest of the first times prefixes 0..n-1 were seen
// added (or withdrawn) at or after since: when the last of a bulk change
// got there. ok is false if any is missing.
func (t *timeline) last(n int, add bool, since time.Time) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var latest time.Time
	for i := range n {
		at, ok := t.firstLocked(Prefix(i), add, since)
		if !ok {
			return time.Time{}, false
		}
		if at.After(latest) {
			latest = at
		}
	}
	return latest, true
}
