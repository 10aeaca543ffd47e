package harness

import (
	"os"
	"path/filepath"
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
