package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/straitlb/strait/bench/bgpbench"
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
	// BGP runs the BGP benchmark (Helper filled in by Run); nil: none.
	BGP *bgpbench.Options
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
			BGP:          &bgpbench.Options{Changes: 20, Prefixes: 2000},
			Compare: compare.Options{Services: []int{10, 1000}, Endpoints: 10, Duration: 2 * time.Second, CPUs: 1, SyncTimeout: 4 * time.Minute,
				RR: &compare.RROptions{Duration: 2 * time.Second, Connections: 32, Connects: 1000}},
		},
		"full": {
			Name: "full",
			Micro: []micro.Options{
				{Services: 10},
				{Services: 10000, BackendsPerService: 10, Conntrack: 1000000},
			},
			ControlPlane: []cpbench.Options{{Services: 1000, Endpoints: 10, Changes: 100}, {Services: 10000, Endpoints: 10, Changes: 100}},
			BGP:          &bgpbench.Options{Changes: 50, Prefixes: 10000},
			// iptables mode over the nf_tables backend (the system's
			// iptables here) needs ~100 s for 1,000 Services, and its
			// iptables-restore grows about quadratically (65 s for a
			// 1,000-Service ruleset alone, 0.4 s for 100): at 10,000 it
			// would need more than an hour, so it is bounded by
			// SyncTimeout and reported as not finished. The same mode on
			// the legacy x_tables backend syncs 10,000 in about a minute
			// and is measured next to it. nftables mode needs about 5
			// minutes at 10,000 on a loaded 2-CPU machine; creating the
			// 10,000 Services about 7 (the apiserver's ClusterIP
			// allocator is quadratic). The whole profile takes about 45
			// minutes there.
			Compare: compare.Options{Services: []int{10, 1000, 10000}, Endpoints: 10, Duration: 5 * time.Second, CPUs: 1,
				SyncTimeout: FullSyncTimeout,
				Proxies:     []string{compare.Strait, compare.KubeProxyNFTables, compare.KubeProxyIPTables, compare.KubeProxyIPTablesLegacy},
				RR:          &compare.RROptions{Duration: 5 * time.Second, Connections: 32, Connects: 3000}},
		},
	}
}

// FullSyncTimeout bounds a proxy's cold sync in the full profile.
const FullSyncTimeout = 10 * time.Minute

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
	BGP          *bgpbench.Result  `json:"bgp,omitempty"`
}

// Commands are the harness's own subprocesses.
type Commands struct {
	CPAgent   []string // cpbench agent
	NodeAgent []string // compare's Strait node
	BGPHelper []string // bgpbench's speaker process
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
		co.LogDir = filepath.Join(dir, "logs")
		res, err := compare.Run(ctx, co)
		if err != nil {
			return r, fmt.Errorf("side by side: %w", err)
		}
		r.Compare = &res
	}
	if p.BGP != nil && len(cmds.BGPHelper) > 0 {
		bo := *p.BGP
		bo.Helper, bo.Logf = cmds.BGPHelper, logf
		logf("bgp: %d changes, %d prefixes", bo.Changes, bo.Prefixes)
		res, err := bgpbench.Run(ctx, bo)
		if err != nil {
			return r, fmt.Errorf("bgp: %w", err)
		}
		r.BGP = &res
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
		t := report.Table{Header: []string{"services", "endpoints/svc", "cold sync", "first apply", "change p50", "change p99", "agent share p50", "agent share p99", "peak RSS MiB"}}
		for _, c := range r.ControlPlane {
			a := c.Agent
			t.Rows = append(t.Rows, []string{strconv.Itoa(c.Services), strconv.Itoa(c.Endpoints), ms(a.ColdSync), ms(a.FirstApply), ms(a.P50), ms(a.P99),
				ms(a.FromWatchP50), ms(a.FromWatchP99), f1(float64(a.PeakRSS) / (1 << 20))})
		}
		s += "## Control plane (Strait agent vs a real kube-apiserver)\n\n" +
			"Cold sync: informers synced to every Service programmed. Change: one EndpointSlice update, from just before it is sent to the apiserver to the map entry " +
			"(includes the apiserver's write and watch); agent share: the same change from the moment a separate watch delivered it.\n\n" + t.Markdown() + "\n"
	}
	if c := r.Compare; c != nil {
		s += compareMarkdown(c)
	}
	if b := r.BGP; b != nil {
		s += bgpMarkdown(b)
	}
	return s
}

// bgpMarkdown renders the BGP benchmark: its own summary, and the
// targets it judged.
func bgpMarkdown(b *bgpbench.Result) string {
	s := "## BGP (assignment and withdrawal to an FRR peer)\n\n```\n" + b.String() + "```\n\n"
	if len(b.Targets) > 0 {
		t := report.Table{Header: []string{"target", "value", "limit", "met"}}
		for _, x := range b.Targets {
			met := "no"
			if x.Met {
				met = "yes"
			}
			t.Rows = append(t.Rows, []string{x.Name, fmt.Sprint(x.Value), fmt.Sprint(x.Limit), met})
		}
		s += t.Markdown() + "\n"
	}
	return s
}

// kubeProxies are the kube-proxy modes, in table order.
var kubeProxies = []string{compare.KubeProxyNFTables, compare.KubeProxyIPTables, compare.KubeProxyIPTablesLegacy}

// shortName is a kube-proxy mode's column name.
func shortName(px string) string { return strings.TrimPrefix(px, "kube-proxy-") }

// modes returns the kube-proxy modes present in c, in table order.
func modes(c *compare.Result) []string {
	var out []string
	for _, px := range kubeProxies {
		for _, p := range c.Points {
			if p.Proxy == px {
				out = append(out, px)
				break
			}
		}
	}
	return out
}

// dnf is the cell of a proxy that did not finish its first sync.
func dnf(p *compare.Point) string { return "did not finish within " + p.ColdSync.String() }

func compareMarkdown(c *compare.Result) string {
	t := report.Table{Header: []string{"proxy", "services", "cold sync", "programming", "established pps/CPU", "new pps/CPU", "forwarded/sent (est, new)", "peak RSS MiB"}}
	rss := func(p *compare.Point) string {
		if p.PeakRSS == 0 {
			return ""
		}
		return f1(float64(p.PeakRSS) / (1 << 20))
	}
	for _, p := range c.Points {
		if p.SyncTimedOut {
			t.Rows = append(t.Rows, []string{p.Proxy, strconv.Itoa(p.Services), dnf(&p), "", "", "", "", ""})
			continue
		}
		if p.Established.Sent == 0 && p.New.Sent == 0 {
			t.Rows = append(t.Rows, []string{p.Proxy, strconv.Itoa(p.Services), ms(p.ColdSync), ms(p.Programming), "", "", "", rss(&p)})
			continue
		}
		t.Rows = append(t.Rows, []string{p.Proxy, strconv.Itoa(p.Services), ms(p.ColdSync), ms(p.Programming),
			f0(p.Established.PPSPerCPU), f0(p.New.PPSPerCPU),
			f2(report.Ratio(float64(p.Established.Forwarded), float64(p.Established.Sent))) + ", " + f2(report.Ratio(float64(p.New.Forwarded), float64(p.New.Sent))), rss(&p)})
	}
	s := fmt.Sprintf("## Side by side with kube-proxy\n\nSame apiserver and objects (%d endpoints per Service, remote), each proxy alone in a fresh node namespace; live-frames generator (%s, frame %d bytes) into the node's uplink, forwarded packets counted by an XDP sink. Cold sync: process start to first complete programming. "+
		"kube-proxy-iptables uses the system's iptables (the nf_tables backend here); kube-proxy-iptables-legacy, when present, the same mode on the legacy x_tables backend.\n\n",
		c.Endpoints, c.Proto, c.FrameSize) + t.Markdown() + "\n"
	ms := modes(c)
	rt := report.Table{Header: []string{"services"}}
	for _, kind := range []string{"est", "new"} {
		for _, m := range ms {
			rt.Header = append(rt.Header, fmt.Sprintf("Strait ÷ %s (%s)", shortName(m), kind))
		}
	}
	for _, n := range serviceCounts(c) {
		st := find(c, compare.Strait, n)
		if st == nil || st.SyncTimedOut || st.Established.Sent == 0 {
			continue
		}
		row := []string{strconv.Itoa(n)}
		for _, kind := range []string{"est", "new"} {
			for _, m := range ms {
				row = append(row, ratioCell(st, find(c, m, n), func(p *compare.Point) float64 {
					if kind == "est" {
						return p.Established.PPSPerCPU
					}
					return p.New.PPSPerCPU
				}))
			}
		}
		rt.Rows = append(rt.Rows, row)
	}
	if len(rt.Rows) > 0 {
		s += "Strait's forwarded pps per CPU as a ratio to each kube-proxy mode (target: at least 5 at 10,000 Services, at least 1 at 10):\n\n" + rt.Markdown() + "\n"
	}
	s += proxyCostMarkdown(c)
	s += rrMarkdown(c)
	for _, p := range c.Points {
		if p.Proxy == compare.Strait && len(p.Counters) > 0 {
			s += fmt.Sprintf("Strait datapath counters at %d services: %v\n\n", p.Services, p.Counters)
		}
	}
	return s
}

// proxyCostMarkdown reports each proxy's own CPU per forwarded packet:
// the point's CPU per packet minus the baseline's (generator, veth and
// sink, which share the CPU with the proxy), and kube-proxy's cost as a
// multiple of Strait's.
func proxyCostMarkdown(c *compare.Result) string {
	b := c.Baseline
	if b == nil || b.Established.PPSPerCPU == 0 {
		return ""
	}
	ns := func(p *compare.Point, isNew bool) float64 {
		if isNew {
			return compare.ProxyNsPerPacket(p.New, b.New)
		}
		return compare.ProxyNsPerPacket(p.Established, b.Established)
	}
	t := report.Table{Header: []string{"proxy", "services", "established ns/pkt", "new ns/pkt", "established: × Strait's", "new: × Strait's"}}
	for _, p := range c.Points {
		if p.SyncTimedOut || p.Established.Sent == 0 {
			continue
		}
		row := []string{p.Proxy, strconv.Itoa(p.Services), f0(ns(&p, false)), f0(ns(&p, true)), "", ""}
		if st := find(c, compare.Strait, p.Services); st != nil && p.Proxy != compare.Strait {
			for i, isNew := range []bool{false, true} {
				if a, s := ns(&p, isNew), ns(st, isNew); a > 0 && s > 0 {
					row[4+i] = f2(a / s)
				}
			}
		}
		t.Rows = append(t.Rows, row)
	}
	return fmt.Sprintf("Each proxy's own CPU per forwarded packet: the point's CPU time per packet minus the baseline's, the same traffic "+
		"reflected by an XDP_TX program with no proxy (generator, veth and sink share the CPU with the proxy: "+
		"%.0f ns/pkt established, %.0f ns/pkt new). kube-proxy's figure as a multiple of Strait's is the pps-per-CPU ratio of the proxies alone "+
		"(target: at least 5 at 10,000 Services); it is sensitive to the baseline's noise when a proxy costs little.\n\n",
		compare.NsPerPacket(b.Established), compare.NsPerPacket(b.New)) + t.Markdown() + "\n"
}

// ratioCell is val(num) ÷ val(den), or why there is none.
func ratioCell(num, den *compare.Point, val func(*compare.Point) float64) string {
	switch {
	case num == nil || den == nil:
		return ""
	case num.SyncTimedOut:
		return dnf(num)
	case den.SyncTimedOut:
		return dnf(den)
	}
	a, b := val(num), val(den)
	if a == 0 || b == 0 {
		return ""
	}
	return f2(a / b)
}

// us prints a latency in microseconds.
func us(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Microsecond), 'f', 0, 64) + " µs"
}

func rrMarkdown(c *compare.Result) string {
	t := report.Table{Header: []string{"proxy", "services", "HTTP req/s", "request p50", "request p99",
		"connect p50", "connect p99", "connect+first byte p50", "connect+first byte p99", "backends answered", "errors"}}
	var target string
	for _, p := range c.Points {
		rr := p.RR
		switch {
		case p.SyncTimedOut:
			t.Rows = append(t.Rows, []string{p.Proxy, strconv.Itoa(p.Services), dnf(&p), "", "", "", "", "", "", "", ""})
			continue
		case rr == nil:
			continue
		}
		target = rr.Target
		row := []string{p.Proxy, strconv.Itoa(p.Services)}
		if rr.WrkError == "" && rr.Requests > 0 {
			row = append(row, f0(rr.RPS), us(rr.Request.P50), us(rr.Request.P99))
		} else {
			row = append(row, "", "", "")
		}
		if rr.Connect.Samples > 0 {
			row = append(row, us(rr.Connect.P50), us(rr.Connect.P99), us(rr.FirstByte.P50), us(rr.FirstByte.P99),
				fmt.Sprintf("%d of %d", rr.Answered, rr.Backends))
		} else {
			row = append(row, "", "", "", "", "")
		}
		errs := fmt.Sprintf("%d requests, %d connections", rr.Errors, rr.ConnectErrors)
		for _, e := range []string{rr.Error, rr.WrkError} {
			if e != "" {
				errs += "; " + truncate(e, 120)
			}
		}
		t.Rows = append(t.Rows, append(row, errs))
	}
	if len(t.Rows) == 0 {
		return ""
	}
	s := "## Request/response through a NodePort\n\n" +
		fmt.Sprintf("HTTP from a client namespace to Service 0's NodePort (%s, externalTrafficPolicy Cluster): each proxy DNATs to one of the Service's endpoints, real HTTP servers in their own namespaces behind a router, and SNATs to the node address. ", target) +
		"Requests per second: wrk over keep-alive connections (established flows). Connect: a Go client in the client namespace opening one new connection after another (connect() returned: SYN to SYN-ACK through the proxy), then sending a GET (connect+first byte: until the first byte of the answer). Latencies are nearest-rank percentiles.\n\n" +
		t.Markdown() + "\n"
	rt := report.Table{Header: []string{"services"}}
	ms := modes(c)
	for _, m := range ms {
		rt.Header = append(rt.Header, "req/s Strait ÷ "+shortName(m))
	}
	for _, m := range ms {
		rt.Header = append(rt.Header, "connect p50 "+shortName(m)+" ÷ Strait")
	}
	for _, n := range serviceCounts(c) {
		st := find(c, compare.Strait, n)
		if st == nil || st.RR == nil || st.SyncTimedOut {
			continue
		}
		row := []string{strconv.Itoa(n)}
		for _, m := range ms {
			row = append(row, ratioCell(st, find(c, m, n), func(p *compare.Point) float64 {
				if p.RR == nil || p.RR.WrkError != "" {
					return 0
				}
				return p.RR.RPS
			}))
		}
		for _, m := range ms {
			// Inverted: above 1 means Strait connects faster.
			row = append(row, ratioCell(find(c, m, n), st, func(p *compare.Point) float64 {
				if p.RR == nil {
					return 0
				}
				return float64(p.RR.Connect.P50)
			}))
		}
		rt.Rows = append(rt.Rows, row)
	}
	if len(rt.Rows) > 0 {
		s += "Ratios (above 1: Strait better):\n\n" + rt.Markdown() + "\n"
	}
	return s
}

func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
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
		proxies := append([]string{compare.Strait}, kubeProxies...)
		// series is one line per proxy (its palette colour fixed by the
		// proxy, so every chart colours a proxy alike) over the points
		// where ok holds.
		series := func(lc *report.LineChart, suffix string, dashed bool, ok func(p *compare.Point) bool, val func(p *compare.Point) float64) {
			for i, px := range proxies {
				s := report.Series{Name: px + suffix, Color: report.Color(i), Dashed: dashed}
				for _, n := range serviceCounts(c) {
					if p := find(c, px, n); p != nil && !p.SyncTimedOut && ok(p) {
						s.Points = append(s.Points, report.XY{X: float64(n), Y: val(p)})
					}
				}
				if len(s.Points) > 0 {
					lc.Series = append(lc.Series, s)
				}
			}
		}
		mk := func(title, y string, ok func(p *compare.Point) bool, val func(p *compare.Point) float64) report.LineChart {
			lc := report.LineChart{Title: title, XLabel: "services", YLabel: y, LogX: true}
			series(&lc, "", false, ok, val)
			return lc
		}
		pps := func(p *compare.Point) bool { return p.Established.Sent > 0 || p.New.Sent > 0 }
		all := func(*compare.Point) bool { return true }
		if lc := mk("Forwarded pps per CPU, established flows", "packets/s per CPU", pps, func(p *compare.Point) float64 { return p.Established.PPSPerCPU }); len(lc.Series) > 0 {
			out["pps-established.svg"] = lc
			out["pps-new.svg"] = mk("Forwarded pps per CPU, new flows", "packets/s per CPU", pps, func(p *compare.Point) float64 { return p.New.PPSPerCPU })
		}
		out["cold-sync.svg"] = mk("Cold sync: start to first complete programming", "ms", all, func(p *compare.Point) float64 { return float64(p.ColdSync) / 1e6 })
		wrk := func(p *compare.Point) bool { return p.RR != nil && p.RR.WrkError == "" && p.RR.Requests > 0 }
		if lc := mk("HTTP requests/s through a NodePort (wrk, keep-alive)", "requests/s", wrk, func(p *compare.Point) float64 { return p.RR.RPS }); len(lc.Series) > 0 {
			out["rr-rps.svg"] = lc
		}
		conn := func(p *compare.Point) bool { return p.RR != nil && p.RR.Connect.Samples > 0 }
		lc := report.LineChart{Title: "Connection setup through a NodePort (p50 solid, p99 dashed)", XLabel: "services", YLabel: "µs", LogX: true}
		series(&lc, " p50", false, conn, func(p *compare.Point) float64 { return float64(p.RR.Connect.P50) / 1e3 })
		series(&lc, " p99", true, conn, func(p *compare.Point) float64 { return float64(p.RR.Connect.P99) / 1e3 })
		if len(lc.Series) > 0 {
			out["rr-connect.svg"] = lc
		}
	}
	return out
}
