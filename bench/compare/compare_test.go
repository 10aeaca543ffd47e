package compare

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/straitlb/strait/internal/privtest"
)

var nodeMode = flag.Bool("node-agent-mode", false, "run as Strait's node process")

// TestMain lets the test binary be Strait's node process.
func TestMain(m *testing.M) {
	flag.Parse()
	if *nodeMode {
		os.Exit(nodeMain(flag.Args()))
	}
	os.Exit(m.Run())
}

func nodeMain(args []string) int {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	var o NodeAgentOptions
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "")
	fs.StringVar(&o.Device, "device", "", "")
	fs.StringVar(&o.WorkDir, "work-dir", "", "")
	fs.IntVar(&o.Services, "services", 0, "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := RunNodeAgent(context.Background(), zap.NewNop(), o, os.Stdin, os.Stdout); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 1
	}
	return 0
}

func TestParseMetrics(t *testing.T) {
	m, err := ParseMetrics(strings.NewReader(`# HELP x y
# TYPE kubeproxy_sync_proxy_rules_duration_seconds histogram
kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.001"} 0
kubeproxy_sync_proxy_rules_duration_seconds_sum 0.25
kubeproxy_sync_proxy_rules_duration_seconds_count 2
kubeproxy_sync_proxy_rules_last_timestamp_seconds 1.7e+09
with_ts{a="b c"} 3 1700000000000
fam{ip_family="IPv6"} 4
fam{ip_family="IPv4"} 5
`))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := m.IPv4("fam"); !ok || v != 5 {
		t.Errorf("IPv4(fam) = %v %v", v, ok)
	}
	for k, want := range map[string]float64{
		`kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.001"}`: 0,
		"kubeproxy_sync_proxy_rules_duration_seconds_sum":                0.25,
		"kubeproxy_sync_proxy_rules_duration_seconds_count":              2,
		"kubeproxy_sync_proxy_rules_last_timestamp_seconds":              1.7e9,
		`fam{ip_family="IPv4"}`:                                          5,
		`with_ts{a="b c"}`:                                               3,
	} {
		if got, ok := m[k]; !ok || got != want {
			t.Errorf("%s = %v (%v), want %v", k, got, ok, want)
		}
	}
}

func TestEndpointPlan(t *testing.T) {
	seen := map[string]bool{}
	for i := range 10000 {
		for j := range 10 {
			a := EndpointIP(i, j, 10)
			if !BackendNet.Contains(a) || seen[a.String()] {
				t.Fatalf("endpoint %d/%d: %s", i, j, a)
			}
			seen[a.String()] = true
		}
	}
	if ServiceIP(1).Prev() != ServiceIP(0) {
		t.Fatal("service addresses not contiguous")
	}
}

// A small side-by-side run for correctness: every proxy syncs, forwards
// established and new flows, and Strait's counters show the forwarding.
// No timing is asserted.
func TestPrivilegedCompareSmoke(t *testing.T) {
	privtest.Require(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(t.Context(), Options{Services: []int{10}, Endpoints: 10, Duration: 300 * time.Millisecond, Flows: 256, SyncTimeout: 40 * time.Second,
		NodeAgent: []string{self, "-node-agent-mode", "--"}, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Points) != 3 {
		t.Fatalf("%d points", len(r.Points))
	}
	if b := r.Baseline; b == nil || b.Established.Forwarded < b.Established.Sent/2 || b.New.Forwarded < b.New.Sent/2 {
		t.Errorf("baseline %+v: the XDP_TX reflection did not reach the sink", r.Baseline)
	}
	for _, p := range r.Points {
		t.Logf("%+v", p)
		for _, tr := range []Traffic{p.Established, p.New} {
			if tr.Sent == 0 || tr.Forwarded < tr.Sent/2 {
				t.Errorf("%s: forwarded %d of %d", p.Proxy, tr.Forwarded, tr.Sent)
			}
		}
		if p.ColdSync <= 0 || p.Programming <= 0 {
			t.Errorf("%s: sync %s programming %s", p.Proxy, p.ColdSync, p.Programming)
		}
		if p.PeakRSS < 1<<20 {
			t.Errorf("%s: peak RSS %d bytes", p.Proxy, p.PeakRSS)
		}
		if p.Proxy == Strait && (p.Counters["ct_hit"] == 0 || p.Counters["ct_new"] == 0 || p.XDPMode != "native") {
			t.Errorf("strait counters %v mode %q", p.Counters, p.XDPMode)
		}
	}
}

// The request/response phase for correctness: every proxy answers HTTP
// through Service 0's NodePort from real backends in their namespaces,
// wrk runs and the latency client spreads over several backends. No
// timing is asserted.
func TestPrivilegedRequestResponseSmoke(t *testing.T) {
	privtest.Require(t)
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Fatalf("wrk is needed (hack/deps.sh installs it): %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(t.Context(), Options{Services: []int{10}, Endpoints: 4, SyncTimeout: 40 * time.Second, SkipPPS: true,
		RR:        &RROptions{Duration: 500 * time.Millisecond, Connections: 4, Connects: 100},
		NodeAgent: []string{self, "-node-agent-mode", "--"}, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Points) != 3 {
		t.Fatalf("%d points", len(r.Points))
	}
	if r.Baseline != nil {
		t.Errorf("baseline measured with SkipPPS: %+v", r.Baseline)
	}
	for _, p := range r.Points {
		rr := p.RR
		if rr == nil {
			t.Errorf("%s: no request/response result", p.Proxy)
			continue
		}
		t.Logf("%s: %+v", p.Proxy, *rr)
		if !rr.OK() {
			t.Errorf("%s: %q %q", p.Proxy, rr.Error, rr.WrkError)
		}
		if rr.Requests == 0 || rr.RPS <= 0 || rr.Errors != 0 || rr.Request.P50 <= 0 {
			t.Errorf("%s: wrk %d requests, %.0f/s, %d errors, p50 %s", p.Proxy, rr.Requests, rr.RPS, rr.Errors, rr.Request.P50)
		}
		if rr.Connect.Samples != 100 || rr.ConnectErrors != 0 || rr.Connect.P50 <= 0 || rr.FirstByte.P50 < rr.Connect.P50 {
			t.Errorf("%s: connect %+v first byte %+v, %d failed", p.Proxy, rr.Connect, rr.FirstByte, rr.ConnectErrors)
		}
		if rr.Answered < 2 || rr.Backends != 4 {
			t.Errorf("%s: %d of %d backends answered", p.Proxy, rr.Answered, rr.Backends)
		}
		if p.Established.Sent != 0 {
			t.Errorf("%s: packet phases ran with SkipPPS", p.Proxy)
		}
	}
}
