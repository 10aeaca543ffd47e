package lbipam

import "github.com/prometheus/client_golang/prometheus"

var (
	descPoolAddresses = prometheus.NewDesc("strait_lbipam_pool_addresses",
		"Addresses of a LoadBalancerIPPool, by state (assigned, available); reported by the leader only.",
		[]string{"pool", "state"}, nil)
	descLeader = prometheus.NewDesc("strait_lbipam_leader",
		"1 while this agent holds the allocator Lease.", nil, nil)
)

type collector struct{ c *Controller }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPoolAddresses
	ch <- descLeader
}

func (x collector) Collect(ch chan<- prometheus.Metric) {
	c := x.c
	leader := 0.0
	if c.IsLeader() {
		leader = 1
	}
	ch <- prometheus.MustNewConstMetric(descLeader, prometheus.GaugeValue, leader)
	c.mu.Lock()
	var stats []PoolStats
	if c.alloc != nil {
		stats = c.alloc.Stats()
	}
	c.mu.Unlock()
	for _, s := range stats {
		ch <- prometheus.MustNewConstMetric(descPoolAddresses, prometheus.GaugeValue, float64(s.Assigned), s.Name, "assigned")
		ch <- prometheus.MustNewConstMetric(descPoolAddresses, prometheus.GaugeValue, float64(s.Available), s.Name, "available")
	}
}
