package runner

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"k8s.io/utils/clock"
	testingclock "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

type idle struct {
	next  time.Time
	calls int
}

// harness runs a Runner on a fake clock. The loop reports every time it
// blocks (with its next scheduled run and the calls so far), so the test
// can step the clock exactly when the loop is waiting.
type harness struct {
	t     *testing.T
	clk   *testingclock.FakeClock
	r     *Runner
	calls atomic.Int32
	mu    sync.Mutex
	errs  []error // results of the next calls; nil when empty
	idles chan idle
	done  chan struct{}
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, clk: testingclock.NewFakeClock(t0), idles: make(chan idle, 10000), done: make(chan struct{})}
	r, err := New("test", h.fn, cfg, h.clk, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	r.onWait = func(next time.Time) { h.idles <- idle{next, int(h.calls.Load())} }
	h.r = r
	ctx, cancel := context.WithCancel(context.Background())
	go func() { r.Loop(ctx); close(h.done) }()
	t.Cleanup(func() {
		cancel()
		<-h.done
	})
	return h
}

func (h *harness) fn() error {
	h.calls.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.errs) == 0 {
		return nil
	}
	err := h.errs[0]
	h.errs = h.errs[1:]
	return err
}

func (h *harness) failNext(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for range n {
		h.errs = append(h.errs, errors.New("boom"))
	}
}

// waitIdle waits until the loop blocks with the next run at next after
// exactly calls runs.
func (h *harness) waitIdle(next time.Duration, calls int) {
	h.t.Helper()
	want := idle{t0.Add(next), calls}
	timeout := time.After(5 * time.Second)
	for {
		select {
		case got := <-h.idles:
			if got.next.Equal(want.next) && got.calls == want.calls {
				return
			}
			if got.calls > calls {
				h.t.Fatalf("loop idle with next run at +%s after %d calls; want +%s after %d calls",
					got.next.Sub(t0), got.calls, next, calls)
			}
		case <-timeout:
			h.t.Fatalf("timed out waiting for the loop to idle with next run at +%s after %d calls (calls now %d)",
				next, calls, h.calls.Load())
		}
	}
}

// stepTo moves the fake clock to t0+d.
func (h *harness) stepTo(d time.Duration) { h.clk.SetTime(t0.Add(d)) }

// expectCalls checks that no run happens beyond n for a while.
func (h *harness) expectCalls(n int) {
	h.t.Helper()
	time.Sleep(50 * time.Millisecond)
	if got := int(h.calls.Load()); got != n {
		h.t.Fatalf("got %d calls, want %d", got, n)
	}
}

func TestFirstRunWaitsForTriggerOrMaxInterval(t *testing.T) {
	h := newHarness(t, Config{MinInterval: time.Second, MaxInterval: 10 * time.Second})
	h.waitIdle(10*time.Second, 0)
	h.stepTo(9 * time.Second)
	h.expectCalls(0)
	h.r.Trigger()
	h.waitIdle(19*time.Second, 1) // ran at once, next resync MaxInterval later
}

func TestBurstCollapsesAndMinInterval(t *testing.T) {
	h := newHarness(t, Config{MinInterval: time.Second, MaxInterval: 10 * time.Second})
	h.waitIdle(10*time.Second, 0)
	h.r.Trigger()
	h.waitIdle(10*time.Second, 1)

	// 100 triggers within MinInterval collapse into one deferred run.
	h.stepTo(100 * time.Millisecond)
	for range 100 {
		h.r.Trigger()
	}
	h.waitIdle(time.Second, 1)
	h.stepTo(999 * time.Millisecond)
	h.expectCalls(1)
	h.stepTo(time.Second)
	h.waitIdle(11*time.Second, 2)
	h.expectCalls(2)

	// Nothing pending: the next run is the periodic one.
	h.stepTo(10 * time.Second)
	h.expectCalls(2)
	h.stepTo(11 * time.Second)
	h.waitIdle(21*time.Second, 3)
}

func TestTriggerAfterMinIntervalRunsAtOnce(t *testing.T) {
	h := newHarness(t, Config{MinInterval: time.Second, MaxInterval: 10 * time.Second})
	h.r.Trigger()
	h.waitIdle(10*time.Second, 1)
	h.stepTo(5 * time.Second)
	h.r.Trigger()
	h.waitIdle(15*time.Second, 2)
}

func TestPeriodicResync(t *testing.T) {
	h := newHarness(t, Config{MinInterval: time.Second, MaxInterval: 10 * time.Second})
	for i := 1; i <= 3; i++ {
		h.waitIdle(time.Duration(i)*10*time.Second, i-1)
		h.stepTo(time.Duration(i) * 10 * time.Second)
	}
	h.waitIdle(40*time.Second, 3)
}

func TestRetryWithExponentialBackoff(t *testing.T) {
	h := newHarness(t, Config{MinInterval: time.Second, MaxInterval: time.Minute, RetryInitial: 2 * time.Second, RetryMax: 10 * time.Second})
	h.failNext(5)
	h.r.Trigger()
	h.waitIdle(2*time.Second, 1) // failed: retry after 2s

	// A trigger during the backoff does not shorten it (MinInterval would
	// allow a run at +1s).
	h.stepTo(1500 * time.Millisecond)
	h.r.Trigger()
	h.waitIdle(2*time.Second, 1)
	h.stepTo(1999 * time.Millisecond)
	h.expectCalls(1)

	h.stepTo(2 * time.Second)
	h.waitIdle(6*time.Second, 2) // 4s
	h.stepTo(6 * time.Second)
	h.waitIdle(14*time.Second, 3) // 8s
	h.stepTo(14 * time.Second)
	h.waitIdle(24*time.Second, 4) // capped at 10s
	h.stepTo(24 * time.Second)
	h.waitIdle(34*time.Second, 5) // still capped
	h.stepTo(34 * time.Second)
	h.waitIdle(94*time.Second, 6) // success: back to MaxInterval

	// After a success a new failure starts the backoff over.
	h.failNext(1)
	h.stepTo(40 * time.Second)
	h.r.Trigger()
	h.waitIdle(42*time.Second, 7)
}

func TestBackoffCappedByMaxInterval(t *testing.T) {
	r, err := New("cap", func() error { return nil }, Config{MinInterval: time.Second, MaxInterval: 5 * time.Second, RetryMax: time.Hour}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 5 * time.Second, 60: 5 * time.Second} {
		if got := r.backoff(n); got != want {
			t.Errorf("backoff(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []Config{
		{MinInterval: time.Second, MaxInterval: time.Millisecond},
		{MinInterval: time.Second},
		{MinInterval: -1, MaxInterval: time.Second},
		{MinInterval: time.Second, MaxInterval: time.Minute, RetryInitial: -1},
	} {
		if _, err := New("bad", func() error { return nil }, cfg, nil, nil); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", cfg)
		}
	}
	if _, err := New("nil", nil, Config{MaxInterval: time.Second}, nil, nil); err == nil {
		t.Error("New with a nil function succeeded")
	}
}

func TestRealClockAndStop(t *testing.T) {
	ran := make(chan struct{}, 10)
	r, err := New("real", func() error { ran <- struct{}{}; return nil },
		Config{MinInterval: time.Millisecond, MaxInterval: time.Hour}, clock.RealClock{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	r.Trigger() // before Loop: kept until it starts
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Loop(ctx); close(done) }()
	for range 2 {
		select {
		case <-ran:
		case <-time.After(5 * time.Second):
			t.Fatal("runner did not run")
		}
		r.Trigger()
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Loop did not return after cancel")
	}
}
