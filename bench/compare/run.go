package compare

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"k8s.io/client-go/kubernetes"

	"github.com/straitlb/strait/bench/cpbench"
	"github.com/straitlb/strait/bench/pktgen"
	"github.com/straitlb/strait/bench/report"
	"github.com/straitlb/strait/internal/kubetest"
	"github.com/straitlb/strait/internal/netlab"
)

// Proxies.
const (
	Strait            = "strait"
	KubeProxyNFTables = "kube-proxy-nftables"
	KubeProxyIPTables = "kube-proxy-iptables"
	// KubeProxyIPTablesLegacy is iptables mode on the legacy (x_tables)
	// backend: the iptables commands kube-proxy runs are xtables-legacy
	// ones. Not in the default set.
	KubeProxyIPTablesLegacy = "kube-proxy-iptables-legacy"
)

// Options size a side-by-side run.
type Options struct {
	Services  []int    // Service counts, ascending (default 10, 1000)
	Endpoints int      // per Service (default 10)
	Proxies   []string // default all three
	// Traffic: protocol and frame size; flows are chosen per point.
	Proto    string
	Size     int
	Duration time.Duration // per traffic phase (default 2 s)
	CPUs     int           // generator CPUs (default 1)
	// Flows for established traffic (default max(4 x services, 4096)).
	Flows int
	// NodeAgent runs Strait's node process: a command taking
	// NodeAgentArgs and behaving as RunNodeAgent.
	NodeAgent []string
	// BinDir holds kube-proxy (default kubetest.FindBinaries).
	BinDir string
	// SyncTimeout bounds each proxy's cold sync (default 3 min); a proxy
	// that does not finish in time is recorded as such and the run goes on.
	SyncTimeout time.Duration
	// RR adds the request/response phase (HTTP through Service 0's
	// NodePort to real backends) to every point; nil: none.
	RR *RROptions
	// SkipPPS leaves out the packet phases (cold sync and RR only).
	SkipPPS bool
	// LogDir keeps the proxies' logs (<proxy>-<services>.log); empty:
	// they go to the run's temporary directory and are removed with it.
	LogDir string
	Logf   func(string, ...any)
}

// Point is one proxy at one Service count.
type Point struct {
	Proxy    string `json:"proxy"`
	Services int    `json:"services"`
	Backends int    `json:"backends"`
	// ColdSync: process start to the end of its first complete
	// programming. Programming: that programming alone (Strait's first
	// Apply; kube-proxy's first sync_proxy_rules).
	ColdSync    time.Duration `json:"cold_sync_ns"`
	Programming time.Duration `json:"programming_ns"`
	Established Traffic       `json:"established"`
	New         Traffic       `json:"new"`
	// Counters are Strait's datapath counters over the traffic phases.
	Counters map[string]uint64 `json:"counters,omitempty"`
	Programs []report.ProgInfo `json:"programs,omitempty"`
	// SyncTimedOut: the proxy had not finished its first sync within
	// Options.SyncTimeout; nothing else was measured.
	SyncTimedOut bool   `json:"sync_timed_out,omitempty"`
	XDPMode      string `json:"xdp_mode,omitempty"`
	// RR is the request/response phase (Options.RR).
	RR *RR `json:"request_response,omitempty"`
	// PeakRSS is the proxy process's VmHWM at the end of the point.
	PeakRSS int64 `json:"peak_rss_bytes,omitempty"`
}

// Traffic is one traffic phase's outcome.
type Traffic struct {
	Flows     int     `json:"flows"` // 0: every packet new
	Sent      uint64  `json:"sent"`
	Forwarded uint64  `json:"forwarded"`
	Seconds   float64 `json:"seconds"`
	CPUs      int     `json:"cpus"`
	PPS       float64 `json:"pps"`
	PPSPerCPU float64 `json:"pps_per_cpu"`
}

// Result is a whole run.
type Result struct {
	Endpoints  int                   `json:"endpoints_per_service"`
	Proto      string                `json:"proto"`
	FrameSize  int                   `json:"frame_size"`
	Points     []Point               `json:"points"`
	CreateTime map[int]time.Duration `json:"create_time_ns"`
	// Baseline is the traffic with no proxy (see Baseline).
	Baseline *Baseline `json:"baseline,omitempty"`
}

func (o *Options) defaults() {
	if len(o.Services) == 0 {
		o.Services = []int{10, 1000}
	}
	if o.Endpoints == 0 {
		o.Endpoints = 10
	}
	if len(o.Proxies) == 0 {
		o.Proxies = []string{Strait, KubeProxyNFTables, KubeProxyIPTables}
	}
	if o.Proto == "" {
		o.Proto = pktgen.TCP
	}
	if o.Duration == 0 {
		o.Duration = 2 * time.Second
	}
	if o.CPUs == 0 {
		o.CPUs = 1
	}
	if o.SyncTimeout == 0 {
		o.SyncTimeout = 3 * time.Minute
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.RR != nil {
		rr := *o.RR
		rr.defaults()
		o.RR = &rr
	}
}

// Run starts a control plane, creates the objects step by step and
// measures every proxy at every count.
func Run(ctx context.Context, o Options) (Result, error) {
	o.defaults()
	res := Result{Endpoints: o.Endpoints, Proto: o.Proto, CreateTime: map[int]time.Duration{}}
	if f, err := (pktgen.Traffic{Proto: o.Proto, Size: o.Size, DstBase: ServiceIP(0)}).Frame(make([]byte, 6), make([]byte, 6)); err == nil {
		res.FrameSize = len(f)
	} else {
		return res, err
	}
	dir, err := os.MkdirTemp("", "strait-compare-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	if o.LogDir != "" {
		if err := os.MkdirAll(o.LogDir, 0o755); err != nil {
			return res, err
		}
	}
	cp, err := kubetest.StartCluster(ctx, kubetest.Options{TempDir: dir, BinDir: o.BinDir, Logf: o.Logf})
	if err != nil {
		return res, err
	}
	defer cp.Stop()
	cfg := *cp.Config
	cfg.QPS, cfg.Burst = 2000, 4000
	client, err := kubernetes.NewForConfig(&cfg)
	if err != nil {
		return res, err
	}
	if err := CreateNode(ctx, client); err != nil {
		return res, err
	}
	u, err := url.Parse(cp.Host)
	if err != nil {
		return res, err
	}
	if !o.SkipPPS {
		b, err := runBaseline(ctx, o, o.Services[0])
		if err != nil {
			return res, fmt.Errorf("baseline: %w", err)
		}
		res.Baseline = &b
		o.Logf("compare: baseline (XDP_TX, no proxy): established %.0f pps/CPU, new %.0f pps/CPU", b.Established.PPSPerCPU, b.New.PPSPerCPU)
	}
	have := 0
	for _, n := range o.Services {
		if n > have {
			t0 := time.Now()
			if err := CreateServices(ctx, client, have, n, o.Endpoints, 32); err != nil {
				return res, err
			}
			res.CreateTime[n] = time.Since(t0)
			o.Logf("compare: %d services with %d endpoints each (created in %s)", n, o.Endpoints, res.CreateTime[n].Round(time.Millisecond))
			have = n
		}
		for _, px := range o.Proxies {
			pt, err := runPoint(ctx, o, px, n, cp.Kubeconfig, cp.BinDir, u.Host, dir)
			if errors.Is(err, errSyncTimeout) {
				o.Logf("compare: %s %d services: %v", px, n, err)
				pt.SyncTimedOut, pt.ColdSync = true, o.SyncTimeout
				res.Points = append(res.Points, pt)
				continue
			}
			if err != nil {
				return res, fmt.Errorf("%s at %d services: %w", px, n, err)
			}
			msg := fmt.Sprintf("compare: %s %d services: cold sync %s (programming %s)", px, n, pt.ColdSync.Round(time.Millisecond), pt.Programming.Round(time.Millisecond))
			if !o.SkipPPS {
				msg += fmt.Sprintf("; established %.0f pps/CPU, new %.0f pps/CPU", pt.Established.PPSPerCPU, pt.New.PPSPerCPU)
			}
			o.Logf("%s", msg)
			if r := pt.RR; r != nil {
				o.Logf("compare: %s %d services: %.0f HTTP req/s (p99 %s, %d errors%s); connect p50 %s p99 %s, first byte p50 %s p99 %s (%d failed)",
					px, n, r.RPS, r.Request.P99, r.Errors, r.WrkError, r.Connect.P50, r.Connect.P99, r.FirstByte.P50, r.FirstByte.P99, r.ConnectErrors)
			}
			res.Points = append(res.Points, pt)
		}
	}
	return res, nil
}

// errSyncTimeout marks a proxy that did not finish its first sync in time.
var errSyncTimeout = errors.New("no complete sync within the timeout")

// node is the proxy under test in its namespace.
type node struct {
	stats func() (map[string]uint64, error)
	stop  func()
	pid   int // the proxy's process
}

// trafficLab is a pktgen node lab with the generator's objects loaded and
// the sink attached to the generator's device, counting frames to match.
type trafficLab struct {
	lab  *netlab.Lab
	nl   *pktgen.NodeLab
	objs *pktgen.Objects
	// sink is attached here rather than by nl.AttachSink so that the
	// request/response phase can swap it for an XDP_PASS program.
	sink link.Link
}

func newTrafficLab(match netip.Prefix) (tl *trafficLab, err error) {
	tl = &trafficLab{}
	if tl.lab, err = netlab.New("sb"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, tl.close())
		}
	}()
	if tl.nl, err = pktgen.NewNodeLab(tl.lab); err != nil {
		return tl, err
	}
	if tl.objs, err = pktgen.Load(); err != nil {
		return tl, err
	}
	if tl.sink, err = tl.nl.Gen.AttachXDP(tl.nl.GenDev, tl.objs.BenchSink, link.XDPDriverMode); err != nil {
		return tl, err
	}
	return tl, pktgen.SetSinkMatch(tl.objs, match)
}

func (tl *trafficLab) close() error {
	if tl.objs != nil {
		tl.objs.Close()
	}
	return tl.lab.Shutdown()
}

func runPoint(ctx context.Context, o Options, px string, n int, kubeconfig, binDir, apiAddr, dir string) (pt Point, err error) {
	pt = Point{Proxy: px, Services: n, Backends: n * o.Endpoints}
	tl, err := newTrafficLab(BackendNet)
	if err != nil {
		return pt, err
	}
	defer func() { err = errors.Join(err, tl.close()) }()
	nl, objs, sink := tl.nl, tl.objs, tl.sink
	var rl *rrLab
	if o.RR != nil {
		var bes []netip.Addr
		for j := range o.Endpoints {
			bes = append(bes, EndpointIP(0, j, o.Endpoints))
		}
		if rl, err = setupRR(nl, bes); err != nil {
			return pt, fmt.Errorf("request/response lab: %w", err)
		}
		defer rl.close()
	}
	fw, err := forwardInto(nl.Node, apiAddr)
	if err != nil {
		return pt, err
	}
	defer fw.Close()

	var nd node
	t0 := time.Now()
	switch px {
	case Strait:
		work, err := os.MkdirTemp(dir, "strait-node-")
		if err != nil {
			return pt, err
		}
		// Each Service has a TCP and a UDP port: two model services.
		args := append(append([]string(nil), o.NodeAgent[1:]...), NodeAgentArgs(NodeAgentOptions{
			Kubeconfig: kubeconfig, Device: nl.Uplink, WorkDir: work, Services: 2 * n})...)
		cmd := exec.Command(o.NodeAgent[0], args...)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return pt, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return pt, err
		}
		logPath := filepath.Join(logDir(o, dir), fmt.Sprintf("%s-%d.log", px, n))
		logf, err := os.Create(logPath)
		if err != nil {
			return pt, err
		}
		defer logf.Close()
		cmd.Stderr = logf
		t0 = time.Now()
		proc, err := nl.Node.Spawn(cmd)
		if err != nil {
			return pt, err
		}
		out := bufio.NewReader(stdout)
		var ready Ready
		line, err := readLine(ctx, out, o.SyncTimeout)
		if errors.Is(err, errNoAnswer) {
			_ = proc.Stop()
			return pt, errSyncTimeout
		}
		if err == nil {
			err = json.Unmarshal(line, &ready)
		}
		if err != nil {
			_ = proc.Stop()
			return pt, fmt.Errorf("strait node: %w\n%s", err, tailFile(logPath))
		}
		pt.ColdSync = time.Unix(0, ready.ProgrammedAt).Sub(t0)
		pt.Programming = ready.FirstApply
		pt.Programs, pt.XDPMode = ready.Programs, ready.XDPMode
		nd.stats = func() (map[string]uint64, error) {
			if _, err := io.WriteString(stdin, "stats\n"); err != nil {
				return nil, err
			}
			line, err := readLine(ctx, out, 10*time.Second)
			if err != nil {
				return nil, err
			}
			m := map[string]uint64{}
			return m, json.Unmarshal(line, &m)
		}
		nd.pid = proc.Cmd.Process.Pid
		nd.stop = func() {
			stdin.Close()
			select {
			case <-proc.Done():
			case <-time.After(10 * time.Second):
				_ = proc.Stop()
			}
		}
	case KubeProxyNFTables, KubeProxyIPTables, KubeProxyIPTablesLegacy:
		mode := "nftables"
		var env []string
		switch px {
		case KubeProxyIPTables:
			mode = "iptables"
		case KubeProxyIPTablesLegacy:
			mode = "iptables"
			if env, err = LegacyIPTablesEnv(filepath.Join(dir, "iptables-legacy")); err != nil {
				return pt, err
			}
		}
		if err := nl.AttachNodePass(); err != nil {
			return pt, err
		}
		t0 = time.Now()
		kp, end, dur, err := startKubeProxy(ctx, nl.Node, filepath.Join(binDir, kubetest.KubeProxyBinary), kubeconfig, mode, env,
			filepath.Join(logDir(o, dir), fmt.Sprintf("%s-%d.log", px, n)), o.SyncTimeout)
		if err != nil {
			return pt, err
		}
		pt.ColdSync, pt.Programming = end.Sub(t0), dur
		nd.stop, nd.pid = kp.stop, kp.proc.Cmd.Process.Pid
	default:
		return pt, fmt.Errorf("unknown proxy %q", px)
	}
	defer nd.stop()
	defer func() { pt.PeakRSS = cpbench.PeakRSS(nd.pid) }() // before the stop

	if rl != nil {
		pass, err := passProgram()
		if err != nil {
			return pt, err
		}
		defer pass.Close()
		if err := sink.Update(pass); err != nil {
			return pt, fmt.Errorf("swap the sink for XDP_PASS: %w", err)
		}
		// A failure here is recorded in the point; the packet phases still run.
		rr, err := rrPhase(ctx, *o.RR, rl, netip.AddrPortFrom(pktgen.NodeIP, RRNodePort))
		if err != nil {
			if ctx.Err() != nil {
				return pt, err
			}
			rr.Error = err.Error()
			o.Logf("compare: %s %d services: request/response: %v", px, n, err)
		}
		pt.RR = &rr
		rl.close()
		if err := sink.Update(objs.BenchSink); err != nil {
			return pt, fmt.Errorf("restore the sink: %w", err)
		}
	}
	if o.SkipPPS {
		return pt, nil
	}

	var before map[string]uint64
	if nd.stats != nil {
		if before, err = nd.stats(); err != nil {
			return pt, err
		}
	}
	flows := o.Flows
	if flows == 0 {
		flows = max(4*n, 4096)
	}
	if pt.Established, err = phase(ctx, o, nl, objs, n, flows, false); err != nil {
		return pt, err
	}
	if pt.New, err = phase(ctx, o, nl, objs, n, 0, true); err != nil {
		return pt, err
	}
	if nd.stats != nil {
		after, err := nd.stats()
		if err != nil {
			return pt, err
		}
		pt.Counters = map[string]uint64{}
		for k, v := range after {
			if d := v - before[k]; d != 0 {
				pt.Counters[k] = d
			}
		}
	}
	return pt, nil
}

// phase runs one traffic phase: established (flows repeat; a warm-up pass
// creates them first) or new (every packet a new flow).
func phase(ctx context.Context, o Options, nl *pktgen.NodeLab, objs *pktgen.Objects, services, flows int, isNew bool) (Traffic, error) {
	tr := pktgen.Traffic{Proto: o.Proto, Size: o.Size, New: isNew, Flows: flows, Services: services,
		DstBase: ServiceIP(0), DPort: Port}
	frame, err := nl.Frame(tr)
	if err != nil {
		return Traffic{}, err
	}
	if err := pktgen.Configure(objs, tr, frame); err != nil {
		return Traffic{}, err
	}
	ro := nl.RunOptions(frame)
	ro.CPUs = o.CPUs
	if !isNew {
		// Warm-up: every flow once from each CPU's offset, twice to be
		// sure drops of a first packet do not leave a flow without state.
		warm := ro
		warm.Packets = uint64(2 * flows)
		if _, err := pktgen.Run(ctx, objs.BenchGen, warm); err != nil {
			return Traffic{}, err
		}
		time.Sleep(100 * time.Millisecond)
	}
	s0, err := pktgen.ReadSink(objs)
	if err != nil {
		return Traffic{}, err
	}
	ro.Duration = o.Duration
	r, err := pktgen.Run(ctx, objs.BenchGen, ro)
	if err != nil {
		return Traffic{}, err
	}
	time.Sleep(50 * time.Millisecond) // let the last batch drain
	s1, err := pktgen.ReadSink(objs)
	if err != nil {
		return Traffic{}, err
	}
	d := s1.Sub(s0)
	t := Traffic{Sent: r.Sent, Forwarded: d.Matched, Seconds: r.Elapsed.Seconds(), CPUs: r.CPUs}
	if !isNew {
		t.Flows = flows
	}
	t.PPS = float64(t.Forwarded) / t.Seconds
	t.PPSPerCPU = t.PPS / float64(t.CPUs)
	return t, nil
}

// logDir is where the proxies' logs go.
func logDir(o Options, tmp string) string {
	if o.LogDir != "" {
		return o.LogDir
	}
	return tmp
}

// passProgram loads an XDP program returning XDP_PASS.
func passProgram() (*ebpf.Program, error) {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "compare_pass", Type: ebpf.XDP, AttachType: ebpf.AttachXDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()}})
	if err != nil {
		return nil, fmt.Errorf("load xdp pass program: %w", err)
	}
	return p, nil
}

var errNoAnswer = errors.New("no answer")

func readLine(ctx context.Context, r *bufio.Reader, timeout time.Duration) ([]byte, error) {
	type res struct {
		b   []byte
		err error
	}
	ch := make(chan res, 1)
	go func() {
		b, err := r.ReadBytes('\n')
		ch <- res{b, err}
	}()
	select {
	case x := <-ch:
		return x.b, x.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(timeout):
		return nil, fmt.Errorf("%w in %s", errNoAnswer, timeout)
	}
}
