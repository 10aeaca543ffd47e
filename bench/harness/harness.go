package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/straitlb/strait/bench/compare"
	"github.com/straitlb/strait/bench/cpbench"
	"github.com/straitlb/strait/bench/micro"
	"github.com/straitlb/strait/bench/report"
	"github.com/straitlb/strait/dataplane/loader"
)

// Profile sizes a run.
type Profile struct {
	Name          string
	Micro         []micro.Options
	ControlPlane  []cpbench.Options // Agent filled in by Run
	Compare       compare.Options   // NodeAgent filled in by Run
	SkipCompare   bool
	SkipControlPl bool
}

// Profiles: quick (make bench, < 10 minutes) and full (make bench-full).
func Profiles() map[string]Profile {
	return map[string]Profile{
		"quick": {
			Name: "quick",
			Micro: []micro.Options{
				{Services: 10},
				{Services: 10000, BackendsPerService: 10, Conntrack: 1000000},
			},
			ControlPlane: []cpbench.Options{{Services: 1000, Endpoints: 10, Changes: 50}},
			Compare:      compare.Options{Services: []int{10, 1000}, Endpoints: 10, Duration: 2 * time.Second, CPUs: 1, SyncTimeout: 4 * time.Minute},
		},
		"full": {
			Name: "full",
			Micro: []micro.Options{
				{Services: 10},
				{Services: 10000, BackendsPerService: 10, Conntrack: 1000000},
			},
			ControlPlane: []cpbench.Options{{Services: 1000, Endpoints: 10, Changes: 100}, {Services: 10000, Endpoints: 10, Changes: 100}},
			// iptables mode over the nf_tables backend needs ~100 s for
			// 1,000 Services here: 10,000 may not sync in 10 minutes, and
			// is then reported as timed out.
			Compare: compare.Options{Services: []int{10, 1000, 10000}, Endpoints: 10, Duration: 5 * time.Second, CPUs: 1, SyncTimeout: 10 * time.Minute},
		},
	}
}

// Results is results.json.
type Results struct {
	Profile      string            `json:"profile"`
	Started      time.Time         `json:"started"`
	Duration     time.Duration     `json:"duration_ns"`
	Machine      report.Machine    `json:"machine"`
	Programs     []report.ProgInfo `json:"programs"`
	Micro        []micro.Result    `json:"micro"`
	ControlPlane []cpbench.Result  `json:"controlplane,omitempty"`
	Compare      *compare.Result   `json:"compare,omitempty"`
}

// Commands are the harness's own subprocesses.
type Commands struct {
	CPAgent   []string // cpbench agent
	NodeAgent []string // compare's Strait node
}

// Run runs the profile and writes its outputs into dir.
func Run(ctx context.Context, p Profile, cmds Commands, dir string, logf func(string, ...any)) (*Results, error) {
	r := &Results{Profile: p.Name, Started: time.Now(), Machine: report.CollectMachine()}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for _, mo := range p.Micro {
		logf("micro: %s", micro.ScaleName(mo))
		res, progs, err := runMicro(mo)
		if err != nil {
			return r, fmt.Errorf("micro %s: %w", micro.ScaleName(mo), err)
		}
		r.Micro = append(r.Micro, res...)
		if r.Programs == nil {
			r.Programs = progs
		}
	}
	if !p.SkipControlPl {
		for _, co := range p.ControlPlane {
			co.Agent, co.Logf = cmds.CPAgent, logf
			logf("controlplane: %d services x %d endpoints", co.Services, co.Endpoints)
			res, err := cpbench.Run(ctx, co)
			if err != nil {
				return r, fmt.Errorf("controlplane: %w", err)
			}
			r.ControlPlane = append(r.ControlPlane, res)
		}
	}
	if !p.SkipCompare {
		co := p.Compare
		co.NodeAgent, co.Logf = cmds.NodeAgent, logf
		res, err := compare.Run(ctx, co)
		if err != nil {
			return r, fmt.Errorf("side by side: %w", err)
		}
		r.Compare = &res
	}
	r.Duration = time.Since(r.Started)
	return r, Write(r, dir)
}

func runMicro(o micro.Options) ([]micro.Result, []report.ProgInfo, error) {
	dir, err := os.MkdirTemp("", "strait-micro-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	fs := filepath.Join(dir, "bpffs")
	if err := loader.EnsureBPFFS(fs); err != nil {
		return nil, nil, err
	}
	defer unix.Unmount(fs, unix.MNT_DETACH)
	dp, err := loader.Load(zap.NewNop(), loader.Options{PinDir: filepath.Join(fs, "strait")})
	if err != nil {
		return nil, nil, err
	}
	defer dp.Close()
	ref, err := micro.LoadReference()
	if err != nil {
		return nil, nil, err
	}
	defer ref.Close()
	o.Ref = ref
	res, err := micro.Run(zap.NewNop(), dp, o)
	if err != nil {
		return nil, nil, err
	}
	objs := dp.Objects()
	progs := []report.ProgInfo{
		report.InfoOf("strait_xdp", objs.StraitXdp),
		report.InfoOf("strait_tc_egress", objs.StraitTcEgress),
		report.InfoOf("strait_tc_pod", objs.StraitTcPod),
		report.InfoOf("bench_calib (reference)", ref.Prog),
	}
	return res, progs, nil
}

// Write writes results.json, results.md and the charts.
func Write(r *Results, dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), b, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(Markdown(r)), 0o644); err != nil {
		return err
	}
	for name, c := range Charts(r) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(c.SVG()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func f0(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }
func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
func f2(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
}

// Markdown renders the results.
func Markdown(r *Results) string {
	m := r.Machine
	s := fmt.Sprintf("# Strait benchmark (%s profile)\n\n%s, %d CPUs, kernel %s, %s, %s; %s, took %s.\n\n",
		r.Profile, m.CPUModel, m.CPUs, m.Kernel, m.Clang, m.Go, r.Started.Format(time.RFC3339), r.Duration.Round(time.Second))
	if len(r.Programs) > 0 {
		t := report.Table{Header: []string{"program", "xlated insns", "JITed bytes", "verifier insns processed"}}
		for _, p := range r.Programs {
			t.Rows = append(t.Rows, []string{p.Name, strconv.Itoa(p.XlatedInsns), strconv.Itoa(int(p.JitedBytes)), strconv.Itoa(int(p.VerifiedInsns))})
		}
		s += "## Programs\n\n" + t.Markdown() + "\n"
	}
	if len(r.Micro) > 0 {
		t := report.Table{Header: []string{"scale", "path", "method", "ns/pkt", "no-op ns", "× no-op", "reference ns", "× reference"}}
		for _, x := range r.Micro {
			t.Rows = append(t.Rows, []string{x.Scale, x.Name, x.Method, f1(x.Ns), f1(x.NoopNs), f2(x.Ratio), f1(x.RefNs), f2(x.RatioRef)})
		}
		s += "## Per-packet cost (BPF_PROG_TEST_RUN)\n\n" +
			"Method `repeat`: one test run of N repetitions on one packet (the kernel's mean, no-op included); `single`: N test runs of one repetition each, kernel-timed, averaged (a timer read per run is included in the no-op and the reference too). " +
			"The reference is bench_calib: parse Ethernet/IPv4/L4, one hash lookup, XDP_TX.\n\n" + t.Markdown() + "\n"
	}
	if len(r.ControlPlane) > 0 {
		t := report.Table{Header: []string{"services", "endpoints/svc", "cold sync", "first apply", "change p50", "change p99", "peak RSS MiB"}}
		for _, c := range r.ControlPlane {
			a := c.Agent
			t.Rows = append(t.Rows, []string{strconv.Itoa(c.Services), strconv.Itoa(c.Endpoints), ms(a.ColdSync), ms(a.FirstApply), ms(a.P50), ms(a.P99), f1(float64(a.PeakRSS) / (1 << 20))})
		}
		s += "## Control plane (Strait agent vs a real kube-apiserver)\n\n" + t.Markdown() + "\n"
	}
	if c := r.Compare; c != nil {
		t := report.Table{Header: []string{"proxy", "services", "cold sync", "programming", "established pps/CPU", "new pps/CPU", "forwarded/sent (est, new)"}}
		for _, p := range c.Points {
			if p.SyncTimedOut {
				t.Rows = append(t.Rows, []string{p.Proxy, strconv.Itoa(p.Services), "> " + ms(p.ColdSync) + " (timed out)", "", "", "", ""})
				continue
			}
			t.Rows = append(t.Rows, []string{p.Proxy, strconv.Itoa(p.Services), ms(p.ColdSync), ms(p.Programming),
				f0(p.Established.PPSPerCPU), f0(p.New.PPSPerCPU),
				f2(report.Ratio(float64(p.Established.Forwarded), float64(p.Established.Sent))) + ", " + f2(report.Ratio(float64(p.New.Forwarded), float64(p.New.Sent)))})
		}
		s += fmt.Sprintf("## Side by side with kube-proxy\n\nSame apiserver and objects (%d endpoints per Service, remote), each proxy alone in a fresh node namespace; live-frames generator (%s, frame %d bytes) into the node's uplink, forwarded packets counted by an XDP sink. Cold sync: process start to first complete programming.\n\n",
			c.Endpoints, c.Proto, c.FrameSize) + t.Markdown() + "\n"
		rt := report.Table{Header: []string{"services", "Strait ÷ nftables (est)", "Strait ÷ iptables (est)", "Strait ÷ nftables (new)", "Strait ÷ iptables (new)"}}
		for _, n := range serviceCounts(c) {
			st, nf, ip := find(c, compare.Strait, n), find(c, compare.KubeProxyNFTables, n), find(c, compare.KubeProxyIPTables, n)
			if st == nil || nf == nil || ip == nil || st.SyncTimedOut || nf.SyncTimedOut || ip.SyncTimedOut {
				continue
			}
			rt.Rows = append(rt.Rows, []string{strconv.Itoa(n),
				f2(report.Ratio(st.Established.PPSPerCPU, nf.Established.PPSPerCPU)), f2(report.Ratio(st.Established.PPSPerCPU, ip.Established.PPSPerCPU)),
				f2(report.Ratio(st.New.PPSPerCPU, nf.New.PPSPerCPU)), f2(report.Ratio(st.New.PPSPerCPU, ip.New.PPSPerCPU))})
		}
		s += "Strait's forwarded pps per CPU as a ratio to each kube-proxy mode:\n\n" + rt.Markdown() + "\n"
		for _, p := range c.Points {
			if p.Proxy == compare.Strait {
				s += fmt.Sprintf("Strait datapath counters at %d services: %v\n\n", p.Services, p.Counters)
			}
		}
	}
	return s
}

func serviceCounts(c *compare.Result) []int {
	var ns []int
	for _, p := range c.Points {
		if !slices.Contains(ns, p.Services) {
			ns = append(ns, p.Services)
		}
	}
	slices.Sort(ns)
	return ns
}

func find(c *compare.Result, proxy string, n int) *compare.Point {
	for i := range c.Points {
		if c.Points[i].Proxy == proxy && c.Points[i].Services == n {
			return &c.Points[i]
		}
	}
	return nil
}

// Charts are the SVG files by name.
func Charts(r *Results) map[string]report.LineChart {
	out := map[string]report.LineChart{}
	if c := r.Compare; c != nil && len(c.Points) > 0 {
		proxies := []string{compare.Strait, compare.KubeProxyNFTables, compare.KubeProxyIPTables}
		mk := func(title, y string, val func(p *compare.Point) float64) report.LineChart {
			lc := report.LineChart{Title: title, XLabel: "services", YLabel: y, LogX: true}
			for _, px := range proxies {
				s := report.Series{Name: px}
				for _, n := range serviceCounts(c) {
					if p := find(c, px, n); p != nil && !p.SyncTimedOut {
						s.Points = append(s.Points, report.XY{X: float64(n), Y: val(p)})
					}
				}
				if len(s.Points) > 0 {
					lc.Series = append(lc.Series, s)
				}
			}
			return lc
		}
		out["pps-established.svg"] = mk("Forwarded pps per CPU, established flows", "packets/s per CPU", func(p *compare.Point) float64 { return p.Established.PPSPerCPU })
		out["pps-new.svg"] = mk("Forwarded pps per CPU, new flows", "packets/s per CPU", func(p *compare.Point) float64 { return p.New.PPSPerCPU })
		out["cold-sync.svg"] = mk("Cold sync: start to first complete programming", "ms", func(p *compare.Point) float64 { return float64(p.ColdSync) / 1e6 })
	}
	return out
}
