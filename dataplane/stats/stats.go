package stats

import (
	"github.com/cilium/ebpf"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/straitlb/strait/dataplane/kern"
)

// GlobalCounters names the global_stats indexes (G_* in bpf/include/consts.h).
var GlobalCounters = []string{
	"pass_not_ip", "pass_fragment", "pass_malformed", "pass_no_frontend",
	"reverse_nat", "ct_hit", "ct_new", "fib_no_neigh", "fib_fail",
	"snat_exhausted", "ct_insert_fail", "no_ifconfig", "reject_unsupported",
	"tc_reverse_nat", "sock_xlate", "ew_new", "ew_hit", "ew_reject", "sock_revnat",
}

// Verdicts names the per-service verdicts (SVC_STAT_*).
var Verdicts = []string{"local", "remote", "reject", "drop"}

// Namer maps a service id to a printable service name.
type Namer func(id uint32) (string, bool)

// Collector reads the counter maps on every scrape.
type Collector struct {
	log     *zap.Logger
	global  *ebpf.Map
	svc     *ebpf.Map
	names   Namer
	gDesc   *prometheus.Desc
	pktDesc *prometheus.Desc
	byDesc  *prometheus.Desc
}

// New returns a collector over the loaded maps.
func New(log *zap.Logger, m *kern.StraitMaps, names Namer) *Collector {
	return &Collector{
		log:    log,
		global: m.GlobalStats,
		svc:    m.SvcStats,
		names:  names,
		gDesc: prometheus.NewDesc("strait_datapath_events_total",
			"Datapath events by kind, summed over CPUs.", []string{"event"}, nil),
		pktDesc: prometheus.NewDesc("strait_service_packets_total",
			"Packets of new and established flows per service and verdict.", []string{"service", "verdict"}, nil),
		byDesc: prometheus.NewDesc("strait_service_bytes_total",
			"Bytes per service and verdict.", []string{"service", "verdict"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.gDesc
	ch <- c.pktDesc
	ch <- c.byDesc
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	var per []uint64
	for i, name := range GlobalCounters {
		if err := c.global.Lookup(uint32(i), &per); err != nil {
			c.log.Warn("read global counters", zap.Error(err))
			return
		}
		var sum uint64
		for _, v := range per {
			sum += v
		}
		ch <- prometheus.MustNewConstMetric(c.gDesc, prometheus.CounterValue, float64(sum), name)
	}
	// Per-service counters of the services that exist now.
	var vals []kern.StraitStatVal
	for id := uint32(1); id < c.svc.MaxEntries()/uint32(len(Verdicts)); id++ {
		name, ok := c.names(id)
		if !ok {
			continue
		}
		for v, verdict := range Verdicts {
			if err := c.svc.Lookup(id*uint32(len(Verdicts))+uint32(v), &vals); err != nil {
				continue
			}
			var pk, by uint64
			for _, x := range vals {
				pk += x.Packets
				by += x.Bytes
			}
			if pk == 0 {
				continue
			}
			ch <- prometheus.MustNewConstMetric(c.pktDesc, prometheus.CounterValue, float64(pk), name, verdict)
			ch <- prometheus.MustNewConstMetric(c.byDesc, prometheus.CounterValue, float64(by), name, verdict)
		}
	}
}
