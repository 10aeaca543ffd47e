package main

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/straitlb/strait/bgp"
	"github.com/straitlb/strait/dataplane/datapath"
	"github.com/straitlb/strait/nodeinfo"
	"github.com/straitlb/strait/nodeinfo/cpuinfo"
	"github.com/straitlb/strait/nodeinfo/hostfs"
	"github.com/straitlb/strait/nodeinfo/netdev"
	"github.com/straitlb/strait/nodeinfo/steal"
)

// nodeView owns device discovery, the attach plan, IRQ/NUMA placement and
// steal time, and what the agent's status reports about them.
type nodeView struct {
	log     *zap.Logger
	in      *nodeinfo.Inspector
	metrics *nodeinfo.Metrics
	auto    bool // devices chosen by discovery, not configured

	mu     sync.Mutex
	status nodeinfo.Status
	// bgp, when set, adds sessions and advertised prefixes to /status.
	bgp bgp.StatusSource
}

func newNodeView(log *zap.Logger, cfg Config, reg prometheus.Registerer) (*nodeView, error) {
	mon, err := steal.NewMonitor(steal.Config{Threshold: cfg.StealThreshold, Registerer: reg, Logger: log})
	if err != nil {
		return nil, err
	}
	m, err := nodeinfo.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	ncfg := nodeinfo.Config{Devices: cfg.Devices, NativeOnly: cfg.NativeXDPOnly, PinNode: cfg.PinNUMANode,
		PlanPinning: cfg.PinNUMANode != nil}
	in := &nodeinfo.Inspector{FS: hostfs.Real(), Net: netdev.NetlinkSource{}, Ethtool: &netdev.EthtoolIoctl{},
		Config: ncfg, Steal: mon}
	if cfg.PinNUMANode != nil {
		if in.AllowedCPUs, err = cpuinfo.CurrentAffinity(); err != nil {
			return nil, err
		}
	}
	return &nodeView{log: log, in: in, metrics: m, auto: len(cfg.Devices) == 0}, nil
}

// inspect runs discovery once and logs every decision with its reason.
func (v *nodeView) inspect() (nodeinfo.Status, error) {
	st, err := v.in.Inspect()
	if err != nil {
		return st, err
	}
	v.set(st)
	nodeinfo.LogStatus(v.log, st)
	return st, nil
}

func (v *nodeView) set(st nodeinfo.Status) {
	v.mu.Lock()
	v.status = st
	v.mu.Unlock()
	v.metrics.Update(st)
}

// applyPinning pins the agent's threads when a NUMA node is configured.
func (v *nodeView) applyPinning(st nodeinfo.Status) error {
	if st.Pinning == nil || len(st.Pinning.CPUs) == 0 {
		return nil
	}
	v.log.Info("pinning agent threads", zap.String("cpus", st.Pinning.CPUs.String()), zap.String("why", st.Pinning.Explanation))
	return cpuinfo.ApplyPinning(st.Pinning.CPUs)
}

// watch follows link changes; with discovered devices it re-attaches the
// datapath to the devices discovery chooses now.
func (v *nodeView) watch(ctx context.Context, dp *datapath.Datapath) error {
	go func() { _ = v.in.Steal.Run(ctx) }()
	return nodeinfo.Watch(ctx, nodeinfo.WatchConfig{
		Inspector: v.in,
		Resync:    time.Minute,
		Metrics:   v.metrics,
		Logger:    v.log,
		OnStatus: func(st nodeinfo.Status) {
			v.set(st)
			if !v.auto || len(st.Chosen) == 0 {
				return
			}
			var have []string
			for _, d := range dp.Devices() {
				have = append(have, d.Name)
			}
			want := slices.Clone(st.Chosen)
			slices.Sort(have)
			slices.Sort(want)
			if slices.Equal(have, want) {
				return
			}
			nodeinfo.LogStatus(v.log, st)
			if err := dp.SetDevices(want); err != nil {
				v.log.Error("re-attaching to discovered devices", zap.Strings("devices", want), zap.Error(err))
			} else {
				v.log.Info("datapath follows device changes", zap.Strings("devices", want))
			}
		},
	})
}

// statusHandler serves the agent's status as JSON: attached devices and
// everything discovery decided.
func statusHandler(v *nodeView, dp *datapath.Datapath) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		v.mu.Lock()
		st := v.status
		v.mu.Unlock()
		var bs *bgp.Status
		if v.bgp != nil {
			s := v.bgp.Status()
			bs = &s
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(struct {
			Devices []datapath.Device `json:"attached"`
			Node    nodeinfo.Status   `json:"node"`
			BGP     *bgp.Status       `json:"bgp,omitempty"`
		}{dp.Devices(), st, bs})
	})
}
