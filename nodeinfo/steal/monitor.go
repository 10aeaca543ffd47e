package steal

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/straitlb/strait/nodeinfo/hostfs"
)

// Clock is the time source of a Monitor.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Config configures a Monitor. Zero values take the defaults.
type Config struct {
	FS hostfs.FS // default hostfs.Real()
	// Interval between samples; default 10s.
	Interval time.Duration
	// Threshold is the steal fraction (0..1) that counts as high; default
	// 0.1.
	Threshold float64
	// For is how long steal must stay above Threshold before the warning;
	// default 1m.
	For time.Duration
	// PerCPU also exports one gauge per CPU.
	PerCPU bool
	Clock  Clock
	// Read samples /proc/stat; default ReadStat(FS).
	Read func() ([]CPUTimes, error)
	// Registerer receives the metrics; nil registers nothing.
	Registerer prometheus.Registerer
	Logger     *zap.Logger
}

// Status is the monitor's latest view.
type Status struct {
	// Fraction is the node-wide steal fraction over the last interval.
	Fraction float64 `json:"fraction"`
	// PerCPU has each CPU's fraction when Config.PerCPU is set.
	PerCPU    map[string]float64 `json:"perCPU,omitempty"`
	Threshold float64            `json:"threshold"`
	For       string             `json:"for"`
	// AboveSince is when the fraction last rose above the threshold; zero
	// while it is below.
	AboveSince time.Time `json:"aboveSince,omitzero"`
	// Warning is set while steal has stayed above the threshold for at
	// least For.
	Warning string    `json:"warning,omitempty"`
	Sampled time.Time `json:"sampled,omitzero"`
}

// Monitor samples steal time periodically.
type Monitor struct {
	cfg   Config
	log   *zap.Logger
	ratio *prometheus.GaugeVec
	high  prometheus.Gauge
	eps   prometheus.Counter

	mu     sync.Mutex
	prev   []CPUTimes
	status Status
	warned bool
}

// Metric names.
const (
	MetricRatio    = "strait_node_cpu_steal_ratio"
	MetricHigh     = "strait_node_cpu_steal_high"
	MetricEpisodes = "strait_node_cpu_steal_high_episodes_total"
)

// NewMonitor creates a monitor and registers its metrics.
func NewMonitor(cfg Config) (*Monitor, error) {
	if cfg.FS == (hostfs.FS{}) {
		cfg.FS = hostfs.Real()
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.Threshold <= 0 {
		cfg.Threshold = 0.1
	}
	if cfg.For <= 0 {
		cfg.For = time.Minute
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Read == nil {
		fs := cfg.FS
		cfg.Read = func() ([]CPUTimes, error) { return ReadStat(fs) }
	}
	m := &Monitor{cfg: cfg, log: cfg.Logger}
	if m.log == nil {
		m.log = zap.NewNop()
	}
	m.ratio = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricRatio,
		Help: "Share of CPU time stolen by the hypervisor over the last sampling interval (cpu=\"all\" for the node).",
	}, []string{"cpu"})
	m.high = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: MetricHigh,
		Help: "1 while steal time has stayed above the configured threshold for the configured duration.",
	})
	m.eps = prometheus.NewCounter(prometheus.CounterOpts{
		Name: MetricEpisodes,
		Help: "Times steal time stayed above the threshold for the configured duration.",
	})
	m.status = Status{Threshold: cfg.Threshold, For: cfg.For.String()}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{m.ratio, m.high, m.eps} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// Run samples until ctx ends.
func (m *Monitor) Run(ctx context.Context) error {
	if err := m.Sample(); err != nil {
		m.log.Warn("cannot read CPU steal time", zap.Error(err))
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-m.cfg.Clock.After(m.cfg.Interval):
		}
		if err := m.Sample(); err != nil {
			m.log.Warn("cannot read CPU steal time", zap.Error(err))
		}
	}
}

// Sample reads /proc/stat once and updates the status, metrics and log.
func (m *Monitor) Sample() error {
	cur, err := m.cfg.Read()
	if err != nil {
		return err
	}
	if len(cur) == 0 {
		return errors.New("empty /proc/stat sample")
	}
	m.observe(m.cfg.Clock.Now(), cur)
	return nil
}

func (m *Monitor) observe(now time.Time, cur []CPUTimes) {
	m.mu.Lock()
	defer m.mu.Unlock()
	prev := m.prev
	m.prev = cur
	if prev == nil {
		return
	}
	fr := Fractions(prev, cur)
	all, ok := fr["cpu"]
	if !ok { // no aggregate line: average the CPUs
		var sum float64
		for _, v := range fr {
			sum += v
		}
		if len(fr) > 0 {
			all = sum / float64(len(fr))
		}
	}
	st := &m.status
	st.Fraction, st.Sampled = all, now
	m.ratio.WithLabelValues("all").Set(all)
	if m.cfg.PerCPU {
		st.PerCPU = map[string]float64{}
		for name, v := range fr {
			if name != "cpu" {
				st.PerCPU[name] = v
				m.ratio.WithLabelValues(name).Set(v)
			}
		}
	}
	if all <= m.cfg.Threshold {
		if m.warned {
			m.log.Info("CPU steal time is back below the threshold",
				zap.Float64("steal", all), zap.Float64("threshold", m.cfg.Threshold),
				zap.Duration("lasted", now.Sub(st.AboveSince)))
		}
		st.AboveSince, st.Warning, m.warned = time.Time{}, "", false
		m.high.Set(0)
		return
	}
	if st.AboveSince.IsZero() {
		st.AboveSince = now
	}
	if lasted := now.Sub(st.AboveSince); lasted >= m.cfg.For && !m.warned {
		m.warned = true
		m.high.Set(1)
		m.eps.Inc()
		st.Warning = "CPU steal time has stayed above the threshold: the hypervisor is running other work on this node's CPUs, so packet processing and the agent run slower and with more jitter; move the node to a less loaded host or dedicated CPUs"
		m.log.Warn(st.Warning, zap.Float64("steal", all), zap.Float64("threshold", m.cfg.Threshold),
			zap.Duration("for", lasted), zap.Time("since", st.AboveSince))
	}
}

// Status returns the latest view.
func (m *Monitor) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.status
	if s.PerCPU != nil {
		c := make(map[string]float64, len(s.PerCPU))
		for k, v := range s.PerCPU {
			c[k] = v
		}
		s.PerCPU = c
	}
	return s
}
