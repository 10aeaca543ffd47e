package harness

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/straitlb/strait/bench/compare"
	"github.com/straitlb/strait/bench/micro"
)

func sample() *Results {
	pt := func(px string, n int, est, nw float64) compare.Point {
		return compare.Point{Proxy: px, Services: n, ColdSync: time.Second, Programming: 10 * time.Millisecond,
			Established: compare.Traffic{Sent: 100, Forwarded: 100, PPS: est, PPSPerCPU: est, CPUs: 1},
			New:         compare.Traffic{Sent: 100, Forwarded: 50, PPS: nw, PPSPerCPU: nw, CPUs: 1}}
	}
	return &Results{Profile: "quick",
		Micro: []micro.Result{{Name: "established flow", Method: "repeat", Ns: 100, NoopNs: 25, Ratio: 4, RefNs: 50, RatioRef: 2}},
		Compare: &compare.Result{Proto: "tcp", FrameSize: 54, Points: []compare.Point{
			pt(compare.Strait, 10, 800000, 150000), pt(compare.KubeProxyNFTables, 10, 200000, 100000), pt(compare.KubeProxyIPTables, 10, 250000, 120000),
			pt(compare.Strait, 1000, 790000, 140000), pt(compare.KubeProxyNFTables, 1000, 200000, 100000), pt(compare.KubeProxyIPTables, 1000, 240000, 60000),
		}}}
}

func TestMarkdownRatios(t *testing.T) {
	md := Markdown(sample())
	for _, want := range []string{
		"| 10 | 4.00 | 3.20 | 1.50 | 1.25 |",
		"| 1000 | 3.95 | 3.29 | 1.40 | 2.33 |",
		"| strait | 10 | 1000.0 ms | 10.0 ms | 800000 | 150000 | 1.00, 0.50 |",
		"| established flow | repeat | 100.0 | 25.0 | 4.00 | 50.0 | 2.00 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("missing %q in\n%s", want, md)
		}
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	if err := Write(sample(), dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"results.json", "results.md", "pps-established.svg", "pps-new.svg", "cold-sync.svg"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || len(b) == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	c := Charts(sample())["pps-established.svg"]
	if len(c.Series) != 3 || len(c.Series[0].Points) != 2 || c.Series[0].Points[1].X != 1000 {
		t.Errorf("chart %+v", c)
	}
}

// sampleFull is a full-profile shape: a fourth proxy, request/response
// results, and iptables (nf_tables backend) not finishing at 10,000.
func sampleFull() *Results {
	rr := func(rps float64, c50, c99 time.Duration) *compare.RR {
		return &compare.RR{Target: "192.0.2.11:30080", Backends: 10, Connections: 32, Requests: uint64(rps * 5), Seconds: 5, RPS: rps,
			Request:   compare.Latency{P50: 400 * time.Microsecond, P99: 2 * time.Millisecond},
			Connect:   compare.Latency{Samples: 3000, P50: c50, P99: c99},
			FirstByte: compare.Latency{Samples: 3000, P50: 2 * c50, P99: 2 * c99}, Answered: 10}
	}
	pt := func(px string, n int, est, nw float64, r *compare.RR) compare.Point {
		return compare.Point{Proxy: px, Services: n, ColdSync: 2 * time.Second, Programming: time.Second,
			Established: compare.Traffic{Sent: 100, Forwarded: 100, PPSPerCPU: est, CPUs: 1},
			New:         compare.Traffic{Sent: 100, Forwarded: 100, PPSPerCPU: nw, CPUs: 1}, RR: r}
	}
	us := time.Microsecond
	return &Results{Profile: "full", Compare: &compare.Result{Proto: "tcp", FrameSize: 54, Endpoints: 10, Points: []compare.Point{
		pt(compare.Strait, 10, 300000, 150000, rr(12000, 150*us, 300*us)),
		pt(compare.KubeProxyNFTables, 10, 150000, 100000, rr(10000, 200*us, 600*us)),
		pt(compare.KubeProxyIPTables, 10, 120000, 75000, rr(8000, 300*us, 900*us)),
		pt(compare.KubeProxyIPTablesLegacy, 10, 100000, 50000, rr(6000, 450*us, 1200*us)),
		pt(compare.Strait, 10000, 280000, 140000, rr(11000, 160*us, 320*us)),
		pt(compare.KubeProxyNFTables, 10000, 56000, 28000, rr(9000, 320*us, 640*us)),
		{Proxy: compare.KubeProxyIPTables, Services: 10000, SyncTimedOut: true, ColdSync: 10 * time.Minute},
		pt(compare.KubeProxyIPTablesLegacy, 10000, 40000, 1400, &compare.RR{Target: "192.0.2.11:30080", Backends: 10,
			Connect: compare.Latency{Samples: 3000, P50: 640 * us, P99: 3200 * us}, FirstByte: compare.Latency{Samples: 3000, P50: time.Millisecond, P99: 4 * time.Millisecond},
			Answered: 10, WrkError: "wrk not found"}),
	}}}
}

func TestMarkdownFull(t *testing.T) {
	md := Markdown(sampleFull())
	for _, want := range []string{
		// pps ratios: est for each mode, then new for each mode.
		"| services | Strait ÷ nftables (est) | Strait ÷ iptables (est) | Strait ÷ iptables-legacy (est) | Strait ÷ nftables (new) | Strait ÷ iptables (new) | Strait ÷ iptables-legacy (new) |",
		"| 10 | 2.00 | 2.50 | 3.00 | 1.50 | 2.00 | 3.00 |",
		"| 10000 | 5.00 | did not finish within 10m0s | 7.00 | 5.00 | did not finish within 10m0s | 100.00 |",
		"| kube-proxy-iptables | 10000 | did not finish within 10m0s |  |",
		// Request/response rows.
		"| strait | 10 | 12000 | 400 µs | 2000 µs | 150 µs | 300 µs | 300 µs | 600 µs | 10 of 10 | 0 requests, 0 connections |",
		"| kube-proxy-iptables-legacy | 10000 |  |  |  | 640 µs | 3200 µs | 1000 µs | 4000 µs | 10 of 10 | 0 requests, 0 connections; wrk not found |",
		// Request/response ratios: req/s Strait ÷ mode, then connect p50 mode ÷ Strait.
		"| 10 | 1.20 | 1.50 | 2.00 | 1.33 | 2.00 | 3.00 |",
		"| 10000 | 1.22 | did not finish within 10m0s |  | 2.00 | did not finish within 10m0s | 4.00 |",
		"192.0.2.11:30080",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("missing %q in\n%s", want, md)
		}
	}
}

func TestChartsFull(t *testing.T) {
	ch := Charts(sampleFull())
	for _, name := range []string{"pps-established.svg", "pps-new.svg", "cold-sync.svg", "rr-rps.svg", "rr-connect.svg"} {
		if _, ok := ch[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
	// rps: the legacy mode's wrk failed at 10,000 and iptables did not
	// finish there: one point each for them.
	rps := ch["rr-rps.svg"]
	if len(rps.Series) != 4 {
		t.Fatalf("rr-rps: %d series", len(rps.Series))
	}
	for _, s := range rps.Series {
		want := 2
		if s.Name == compare.KubeProxyIPTables || s.Name == compare.KubeProxyIPTablesLegacy {
			want = 1
		}
		if len(s.Points) != want {
			t.Errorf("rr-rps %s: %v", s.Name, s.Points)
		}
	}
	// connect: p50 and p99 per proxy, same colour, p99 dashed.
	cn := ch["rr-connect.svg"]
	if len(cn.Series) != 8 {
		t.Fatalf("rr-connect: %d series", len(cn.Series))
	}
	if cn.Series[0].Name != "strait p50" || cn.Series[4].Name != "strait p99" || cn.Series[0].Color != cn.Series[4].Color ||
		cn.Series[0].Dashed || !cn.Series[4].Dashed || cn.Series[4].Points[0].Y != 300 {
		t.Errorf("rr-connect series: %+v", cn.Series)
	}
	// Every chart colours a proxy alike.
	if ch["pps-new.svg"].Series[1].Color != rps.Series[1].Color {
		t.Error("colours differ between charts")
	}
	// No packet phases (SkipPPS): no pps charts.
	r := sampleFull()
	for i := range r.Compare.Points {
		r.Compare.Points[i].Established, r.Compare.Points[i].New = compare.Traffic{}, compare.Traffic{}
	}
	if _, ok := Charts(r)["pps-new.svg"]; ok {
		t.Error("pps chart without packet phases")
	}
	if md := Markdown(r); strings.Contains(md, "Strait ÷ nftables (est)") {
		t.Error("pps ratios without packet phases")
	}
}

func TestProfiles(t *testing.T) {
	p := Profiles()
	q, f := p["quick"].Compare, p["full"].Compare
	if q.RR == nil || f.RR == nil || q.RR.Duration > 3*time.Second {
		t.Errorf("request/response: quick %+v full %+v", q.RR, f.RR)
	}
	if !slices.Equal(f.Services, []int{10, 1000, 10000}) || !slices.Contains(f.Proxies, compare.KubeProxyIPTables) ||
		!slices.Contains(f.Proxies, compare.KubeProxyNFTables) || f.SyncTimeout != FullSyncTimeout {
		t.Errorf("full: %+v", f)
	}
}
