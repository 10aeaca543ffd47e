package nodeinfo_test

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/straitlb/strait/nodeinfo"
	"github.com/straitlb/strait/nodeinfo/internal/layouts"
)

func TestMetrics(t *testing.T) {
	l := layouts.TwoSocketSRIOV(t)
	st := inspect(t, l, nodeinfo.Config{NodeAddresses: l.NodeAddresses})
	reg := prometheus.NewRegistry()
	m, err := nodeinfo.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.Update(st)
	m.Update(st)
	got := gather(t, reg)
	for series, want := range map[string]float64{
		`strait_nodeinfo_remote_numa_queue_irqs{device="ens1f0"}`:                                                                 0,
		`strait_nodeinfo_remote_numa_queue_irqs{device="ens2f0np0"}`:                                                              6,
		`strait_nodeinfo_queue_irqs{device="ens2f0np0"}`:                                                                          8,
		`strait_nodeinfo_xdp_plan_mode{device="ens1f0",mode="native"}`:                                                            1,
		`strait_nodeinfo_xdp_plan_mode{device="ens2f0np0",mode="generic"}`:                                                        1,
		`strait_nodeinfo_xdp_plan_warnings{device="ens2f0np0"}`:                                                                   2,
		`strait_nodeinfo_xdp_plan_errors{device="ens2f0np0"}`:                                                                     0,
		`strait_nodeinfo_inspections_total`:                                                                                       2,
		`strait_nodeinfo_device_used{device="ens1f0",driver="ice",kind="physical",numa_node="0",role="pf"}`:                       1,
		`strait_nodeinfo_device_used{device="ens2f0npf0vf3",driver="mlx5_core",kind="physical",numa_node="1",role="representor"}`: 0,
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
	if n := count(got, "strait_nodeinfo_device_used{"); n != len(st.Devices) {
		t.Errorf("device_used series %d, want %d", n, len(st.Devices))
	}

	// A later status without the mlx5 device drops its series.
	st.Plans = st.Plans[:1]
	st.IRQ.Devices = st.IRQ.Devices[:1]
	m.Update(st)
	if n := count(gather(t, reg), "strait_nodeinfo_xdp_plan_mode{"); n != 1 {
		t.Errorf("stale plan series kept: %d", n)
	}
	if _, err := nodeinfo.NewMetrics(reg); err == nil {
		t.Error("registering twice should fail")
	}
}

func TestLogStatus(t *testing.T) {
	l := layouts.BondedNICs(t)
	st := inspect(t, l, nodeinfo.Config{NodeAddresses: l.NodeAddresses, PlanPinning: true})
	core, logs := observer.New(zapcore.DebugLevel)
	nodeinfo.LogStatus(zap.New(core), st)
	if n := logs.FilterMessage("device decision").Len(); n != len(st.Devices) {
		t.Errorf("%d decision lines, want %d", n, len(st.Devices))
	}
	errs := logs.FilterLevelExact(zapcore.ErrorLevel).All()
	if len(errs) != 1 || errs[0].ContextMap()["device"] != "bond0" {
		t.Fatalf("error lines: %+v", errs)
	}
	if got := errs[0].ContextMap()["errors"]; got.([]any)[0] != "LRO is on on slave eno2 of bond0 and native XDP needs it off: disable LRO: ethtool -K eno2 lro off" {
		t.Errorf("logged errors %v", got)
	}
	if logs.FilterMessage("CPU pinning plan").Len() != 1 {
		t.Error("pinning plan not logged")
	}
}

func TestWatchNeedsInspector(t *testing.T) {
	if err := nodeinfo.Watch(context.Background(), nodeinfo.WatchConfig{}); err == nil {
		t.Error("Watch without an inspector should fail")
	}
}

// gather renders every series as name{label="value",...} -> value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			sort.Strings(labels)
			name := mf.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.GetGauge() != nil:
				out[name] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[name] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

func count(series map[string]float64, prefix string) int {
	n := 0
	for k := range series {
		if strings.HasPrefix(k, prefix) {
			n++
		}
	}
	return n
}
