package nodeinfo

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/straitlb/strait/nodeinfo/xdpplan"
)

// Metrics exports Status to Prometheus.
type Metrics struct {
	used     *prometheus.GaugeVec
	plan     *prometheus.GaugeVec
	errs     *prometheus.GaugeVec
	warns    *prometheus.GaugeVec
	remote   *prometheus.GaugeVec
	queues   *prometheus.GaugeVec
	inspects prometheus.Counter
	failures prometheus.Counter
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		used: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strait_nodeinfo_device_used",
			Help: "1 when Strait uses the device for XDP, 0 when it skips it.",
		}, []string{"device", "driver", "kind", "role", "numa_node"}),
		plan: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strait_nodeinfo_xdp_plan_mode",
			Help: "1 for the planned XDP mode (native or generic) of each used device.",
		}, []string{"device", "mode"}),
		errs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strait_nodeinfo_xdp_plan_errors",
			Help: "Errors in a device's XDP attach plan (to fix before it attaches).",
		}, []string{"device"}),
		warns: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strait_nodeinfo_xdp_plan_warnings",
			Help: "Warnings in a device's XDP attach plan.",
		}, []string{"device"}),
		remote: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strait_nodeinfo_remote_numa_queue_irqs",
			Help: "Queue IRQs of a device served only by CPUs of another NUMA node.",
		}, []string{"device"}),
		queues: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strait_nodeinfo_queue_irqs",
			Help: "Queue IRQs found for a device.",
		}, []string{"device"}),
		inspects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strait_nodeinfo_inspections_total",
			Help: "Device discovery runs.",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strait_nodeinfo_inspection_failures_total",
			Help: "Device discovery runs that failed.",
		}),
	}
	for _, c := range []prometheus.Collector{m.used, m.plan, m.errs, m.warns, m.remote, m.queues, m.inspects, m.failures} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Update replaces the exported state with s.
func (m *Metrics) Update(s Status) {
	m.inspects.Inc()
	for _, v := range []*prometheus.GaugeVec{m.used, m.plan, m.errs, m.warns, m.remote, m.queues} {
		v.Reset()
	}
	byName := map[string]int{}
	for i, d := range s.Devices {
		byName[d.Name] = i
	}
	for _, dec := range s.Decisions {
		i, ok := byName[dec.Device]
		if !ok {
			continue
		}
		d := s.Devices[i]
		v := 0.0
		if dec.Use {
			v = 1
		}
		m.used.WithLabelValues(d.Name, xdpplan.DriverOf(&d), d.Kind, string(d.Role), strconv.Itoa(d.NUMANode)).Set(v)
	}
	for _, p := range s.Plans {
		m.plan.WithLabelValues(p.Device, string(p.Mode)).Set(1)
		m.errs.WithLabelValues(p.Device).Set(float64(len(p.Errors)))
		m.warns.WithLabelValues(p.Device).Set(float64(len(p.Warnings)))
	}
	for _, r := range s.IRQ.Devices {
		m.remote.WithLabelValues(r.Device).Set(float64(r.RemoteQueueIRQs))
		m.queues.WithLabelValues(r.Device).Set(float64(r.QueueIRQs))
	}
}

// Failed counts a failed inspection.
func (m *Metrics) Failed() { m.failures.Inc() }
