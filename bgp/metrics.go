package bgp

import (
	"github.com/prometheus/client_golang/prometheus"
)

// StatusSource is what the metrics read: a Speaker, or anything with a
// Status.
type StatusSource interface {
	Status() Status
}

var (
	descSessionUp = prometheus.NewDesc("strait_bgp_session_up",
		"1 when the BGP session with the peer is established, else 0.",
		[]string{"peer", "address"}, nil)
	descSessionState = prometheus.NewDesc("strait_bgp_session_state",
		"BGP finite state machine state of the session: 1 for the current state, 0 for the others.",
		[]string{"peer", "address", "state"}, nil)
	descAdvertised = prometheus.NewDesc("strait_bgp_advertised_prefixes",
		"Number of prefixes currently advertised to the peer (its Adj-RIB-Out).",
		[]string{"peer", "address"}, nil)
	descUpdatesSent = prometheus.NewDesc("strait_bgp_updates_sent_total",
		"BGP UPDATE messages sent to the peer since its configuration was last (re)applied.",
		[]string{"peer", "address"}, nil)
	descUpdatesReceived = prometheus.NewDesc("strait_bgp_updates_received_total",
		"BGP UPDATE messages received from the peer since its configuration was last (re)applied.",
		[]string{"peer", "address"}, nil)
)

// collector reads a Status on every scrape.
type collector struct{ src StatusSource }

// NewCollector returns a Prometheus collector that reads src.Status() on
// every scrape and exports, per peer: strait_bgp_session_up,
// strait_bgp_session_state{state}, strait_bgp_advertised_prefixes,
// strait_bgp_updates_sent_total and strait_bgp_updates_received_total.
func NewCollector(src StatusSource) prometheus.Collector { return collector{src} }

// RegisterMetrics registers NewCollector(src) with reg.
func RegisterMetrics(reg prometheus.Registerer, src StatusSource) error {
	return reg.Register(NewCollector(src))
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSessionUp
	ch <- descSessionState
	ch <- descAdvertised
	ch <- descUpdatesSent
	ch <- descUpdatesReceived
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.src.Status().Peers {
		addr := p.Address.String()
		up := 0.0
		if p.State == SessionEstablished {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descSessionUp, prometheus.GaugeValue, up, p.Name, addr)
		for _, s := range SessionStates() {
			v := 0.0
			if s == p.State {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descSessionState, prometheus.GaugeValue, v, p.Name, addr, s.String())
		}
		ch <- prometheus.MustNewConstMetric(descAdvertised, prometheus.GaugeValue, float64(len(p.Advertised)), p.Name, addr)
		ch <- prometheus.MustNewConstMetric(descUpdatesSent, prometheus.CounterValue, float64(p.UpdatesSent), p.Name, addr)
		ch <- prometheus.MustNewConstMetric(descUpdatesReceived, prometheus.CounterValue, float64(p.UpdatesReceived), p.Name, addr)
	}
}
