package steal_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/straitlb/strait/nodeinfo/internal/layouts"
	"github.com/straitlb/strait/nodeinfo/steal"
)

const stat = `cpu  337619 0 65910 51486 659 0 730 3701 0 0
cpu0 169195 0 31963 26810 115 0 160 1806 0 0
cpu1 168423 0 33946 24676 543 0 570 1895 0 0
intr 5181076 0 0 0
ctxt 9636476
`

func TestParseStat(t *testing.T) {
	cs, err := steal.ParseStat(strings.NewReader(stat))
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 3 || cs[0].Name != "cpu" || cs[0].Steal != 3701 || cs[2].Name != "cpu1" || cs[2].Steal != 1895 || cs[1].SoftIRQ != 160 {
		t.Fatalf("%+v", cs)
	}
	if cs[0].Total() != 337619+65910+51486+659+730+3701 {
		t.Errorf("total %d", cs[0].Total())
	}
	if _, err := steal.ParseStat(strings.NewReader("intr 1\n")); err == nil {
		t.Error("no cpu lines accepted")
	}
	if _, err := steal.ParseStat(strings.NewReader("cpu 1 x 3\n")); err == nil {
		t.Error("bad number accepted")
	}
	// Old kernels without the steal column.
	old, err := steal.ParseStat(strings.NewReader("cpu 10 0 10 80\n"))
	if err != nil || old[0].Steal != 0 || old[0].Total() != 100 {
		t.Errorf("%+v %v", old, err)
	}
}

func TestReadStat(t *testing.T) {
	tr := layouts.NewTree(t)
	tr.File("proc/stat", stat)
	cs, err := steal.ReadStat(tr.FS())
	if err != nil || len(cs) != 3 {
		t.Fatalf("%v %v", cs, err)
	}
}

func TestFraction(t *testing.T) {
	a := steal.CPUTimes{Name: "cpu", User: 100, Idle: 100, Steal: 0}
	b := steal.CPUTimes{Name: "cpu", User: 150, Idle: 130, Steal: 20} // 100 ticks, 20 stolen
	if f := steal.Fraction(a, b); math.Abs(f-0.2) > 1e-9 {
		t.Errorf("fraction %v", f)
	}
	if steal.Fraction(b, b) != 0 || steal.Fraction(b, a) != 0 {
		t.Error("no progress or reset must give 0")
	}
	fr := steal.Fractions([]steal.CPUTimes{a}, []steal.CPUTimes{b, {Name: "cpu9"}})
	if len(fr) != 1 || math.Abs(fr["cpu"]-0.2) > 1e-9 {
		t.Errorf("%v", fr)
	}
}

// fakeClock fires After channels when the test advances it.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
	waiting chan struct{}
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), waiting: make(chan struct{}, 16)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, waiter{c.now.Add(d), ch})
	c.waiting <- struct{}{}
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// source hands out samples where each interval has 1000 ticks per CPU and
// the next steal fraction from a queue.
type source struct {
	mu    sync.Mutex
	t     [2]steal.CPUTimes
	queue []float64
}

func (s *source) push(f ...float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, f...)
}

func (s *source) read() ([]steal.CPUTimes, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := 0.0
	if len(s.queue) > 0 {
		f, s.queue = s.queue[0], s.queue[1:]
	}
	st := uint64(f * 1000)
	for i := range s.t {
		s.t[i].Name = fmt.Sprintf("cpu%d", i)
		s.t[i].Steal += st
		s.t[i].User += 1000 - st
	}
	all := steal.CPUTimes{Name: "cpu", Steal: s.t[0].Steal + s.t[1].Steal, User: s.t[0].User + s.t[1].User}
	return []steal.CPUTimes{all, s.t[0], s.t[1]}, nil
}

func TestMonitorWarnsWhenStealStaysHigh(t *testing.T) {
	clock := newFakeClock()
	src := &source{}
	core, logs := observer.New(zapcore.InfoLevel)
	reg := prometheus.NewRegistry()
	m, err := steal.NewMonitor(steal.Config{
		Interval: 10 * time.Second, Threshold: 0.1, For: 30 * time.Second, PerCPU: true,
		Clock: clock, Read: src.read, Registerer: reg, Logger: zap.New(core),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()

	<-clock.waiting // first sample taken, waiting for the next interval
	// interval lets one interval pass with steal fraction f and returns the
	// status once the monitor has processed it (it then waits again).
	interval := func(f float64) steal.Status {
		src.push(f)
		clock.Advance(10 * time.Second)
		<-clock.waiting
		return m.Status()
	}
	warnings := func() []observer.LoggedEntry { return logs.FilterLevelExact(zapcore.WarnLevel).All() }

	if st := interval(0.05); st.Warning != "" || !st.AboveSince.IsZero() {
		t.Fatalf("below the threshold: %+v", st)
	}
	interval(0.25) // above since now
	interval(0.30) // 10s above
	st := interval(0.40)
	if st.Warning != "" || st.AboveSince.IsZero() || math.Abs(st.Fraction-0.4) > 1e-9 || len(warnings()) != 0 {
		t.Fatalf("after 20s above: %+v, logs %v", st, logs.All())
	}
	if got := gaugeValue(t, reg, steal.MetricHigh, ""); got != 0 {
		t.Errorf("high gauge %v before the duration", got)
	}
	st = interval(0.40) // 30s above: warn
	if st.Warning == "" {
		t.Fatalf("no warning after 30s above: %+v", st)
	}
	if got := gaugeValue(t, reg, steal.MetricRatio, "all"); math.Abs(got-0.4) > 1e-9 {
		t.Errorf("ratio gauge %v", got)
	}
	if got := gaugeValue(t, reg, steal.MetricRatio, "cpu1"); math.Abs(got-0.4) > 1e-9 {
		t.Errorf("per-CPU gauge %v", got)
	}
	if got := gaugeValue(t, reg, steal.MetricHigh, ""); got != 1 {
		t.Errorf("high gauge %v", got)
	}
	w := warnings()
	if len(w) != 1 || !strings.HasPrefix(w[0].Message, "CPU steal time has stayed above the threshold") ||
		w[0].ContextMap()["for"] != 30*time.Second || w[0].ContextMap()["steal"] != 0.4 {
		t.Fatalf("warnings: %+v", w)
	}
	interval(0.5) // still high: no second warning
	if len(warnings()) != 1 {
		t.Errorf("%d warnings, want 1", len(warnings()))
	}
	st = interval(0.01) // recovered
	if st.Warning != "" || !st.AboveSince.IsZero() || gaugeValue(t, reg, steal.MetricHigh, "") != 0 {
		t.Errorf("after recovery: %+v", st)
	}
	if n := logs.FilterMessage("CPU steal time is back below the threshold").Len(); n != 1 {
		t.Errorf("recovery logs: %d", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := counterValue(t, reg, steal.MetricEpisodes); got != 1 {
		t.Errorf("episodes %v", got)
	}
}

// gaugeValue returns a gauge's value, selected by its cpu label ("" for
// an unlabelled gauge).
func gaugeValue(t *testing.T, reg *prometheus.Registry, name, cpu string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if cpu == "" && len(m.GetLabel()) == 0 {
				return m.GetGauge().GetValue()
			}
			for _, l := range m.GetLabel() {
				if l.GetName() == "cpu" && l.GetValue() == cpu {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{cpu=%q}", name, cpu)
	return 0
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no %s", name)
	return 0
}
