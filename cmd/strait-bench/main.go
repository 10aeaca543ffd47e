// Command strait-bench measures Strait. Subcommands:
//
//	micro         per-packet cost of datapath paths under BPF_PROG_TEST_RUN,
//	              as ratios to a no-op program measured in the same run
//	controlplane  cold sync, endpoint-change latency and peak RSS against a
//	              real kube-apiserver, for N services x E endpoints
//	compare       Strait and kube-proxy (nftables, iptables) side by side:
//	              cold sync and forwarded pps per CPU through a live-frames
//	              packet generator, each proxy in its own node namespace
//	bgp           prefix assignment/withdrawal -> route in FRR's kernel
//	              table (tor netns), Strait's speaker next to bare GoBGP
//	run           a whole profile (quick: make bench; full: make bench-full)
//	              into bench/results/<timestamp>/: results.json,
//	              results.md and SVG charts
//
// "agent", "node-agent" and "bgp-helper" are the harness's own subprocesses.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/straitlb/strait/bench/bgpbench"
	"github.com/straitlb/strait/bench/compare"
	"github.com/straitlb/strait/bench/cpbench"
	"github.com/straitlb/strait/bench/harness"
	"github.com/straitlb/strait/bench/micro"
	"github.com/straitlb/strait/bench/report"
	"github.com/straitlb/strait/dataplane/loader"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: strait-bench micro|controlplane|compare|bgp|run [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "micro":
		err = runMicro(os.Args[2:])
	case "controlplane":
		err = runControlPlane(ctx, os.Args[2:])
	case "agent":
		err = runAgent(ctx, os.Args[2:])
	case "node-agent":
		err = runNodeAgent(ctx, os.Args[2:])
	case "compare":
		err = runCompare(ctx, os.Args[2:])
	case "run":
		err = runProfile(ctx, os.Args[2:])
	case "bgp":
		err = runBGP(ctx, os.Args[2:])
	case "bgp-helper":
		err = bgpbench.ServeHelper(os.Stdin, os.Stdout)
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "strait-bench:", err)
		os.Exit(1)
	}
}

func runBGP(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bgp", flag.ExitOnError)
	changes := fs.Int("changes", 50, "single-prefix additions (then removals) to time")
	prefixes := fs.Int("prefixes", 10000, "prefixes in the bulk step")
	jsonOut := fs.Bool("json", false, "also print the result as JSON")
	background := fs.Int("background", 1, "prefixes already advertised while the single changes are timed")
	var frrConfig []string
	fs.Func("frr-config", "extra global line for the tor's frr.conf, e.g. 'zebra work-queue 0' (repeatable)", func(s string) error {
		frrConfig = append(frrConfig, s)
		return nil
	})
	_ = fs.Parse(args)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	res, err := bgpbench.Run(ctx, bgpbench.Options{Changes: *changes, Prefixes: *prefixes,
		Helper: []string{self, "bgp-helper"}, HelperLog: os.Stderr, FRRConfig: frrConfig, Background: *background,
		Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }})
	if err != nil {
		return err
	}
	fmt.Print(res)
	if *jsonOut {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		fmt.Println(string(b))
	}
	return nil
}

func runMicro(args []string) error {
	fs := flag.NewFlagSet("micro", flag.ExitOnError)
	repeat := fs.Int("repeat", 1000000, "repetitions for the repeat method")
	singles := fs.Int("singles", 20000, "runs for the single-run method")
	services := fs.Int("services", 10, "services programmed (fillers with 10 backends each)")
	ct := fs.Int("conntrack", 0, "conntrack entries to pre-fill")
	_ = fs.Parse(args)
	dir, err := os.MkdirTemp("", "strait-micro-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fsDir := filepath.Join(dir, "bpffs")
	if err := loader.EnsureBPFFS(fsDir); err != nil {
		return err
	}
	defer unix.Unmount(fsDir, unix.MNT_DETACH)
	dp, err := loader.Load(zap.NewNop(), loader.Options{PinDir: filepath.Join(fsDir, "strait")})
	if err != nil {
		return err
	}
	defer dp.Close()
	ref, err := micro.LoadReference()
	if err != nil {
		return err
	}
	defer ref.Close()
	res, err := micro.Run(zap.NewNop(), dp, micro.Options{Repeat: *repeat, Singles: *singles, Services: *services, Conntrack: *ct, Ref: ref})
	if err != nil {
		return err
	}
	for _, r := range res {
		fmt.Println(r)
	}
	return nil
}

func runControlPlane(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("controlplane", flag.ExitOnError)
	n := fs.Int("services", 1000, "services")
	e := fs.Int("endpoints", 10, "endpoints per service")
	c := fs.Int("changes", 100, "single endpoint changes to time")
	_ = fs.Parse(args)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	r, err := cpbench.Run(ctx, cpbench.Options{Services: *n, Endpoints: *e, Changes: *c,
		Agent: []string{self, "agent"}, Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }})
	if err != nil {
		return err
	}
	a := r.Agent
	us := func(d time.Duration) time.Duration { return d.Round(time.Microsecond) }
	fmt.Printf("services=%d endpoints/service=%d: cold sync %s (first apply %s); endpoint change p50 %s p99 %s max %s over %d changes "+
		"(from the watch event: p50 %s p99 %s max %s); agent peak RSS %.1f MiB\n",
		a.Services, r.Endpoints, us(a.ColdSync), us(a.FirstApply), us(a.P50), us(a.P99), us(a.Max), len(a.Changes),
		us(a.FromWatchP50), us(a.FromWatchP99), us(a.FromWatchMax), float64(a.PeakRSS)/(1<<20))
	return json.NewEncoder(os.Stderr).Encode(r)
}

func runAgent(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("agent", flag.ExitOnError)
	var o cpbench.AgentOptions
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "")
	fs.StringVar(&o.WorkDir, "work-dir", "", "")
	fs.IntVar(&o.Services, "services", 0, "")
	fs.IntVar(&o.Changes, "changes", 0, "")
	_ = fs.Parse(args)
	defer unix.Unmount(filepath.Join(o.WorkDir, "bpffs"), unix.MNT_DETACH)
	r, err := cpbench.RunAgent(ctx, zap.NewNop(), o)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

func selfCmd(sub string) ([]string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return []string{self, sub}, nil
}

func runNodeAgent(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("node-agent", flag.ExitOnError)
	var o compare.NodeAgentOptions
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "")
	fs.StringVar(&o.Device, "device", "", "")
	fs.StringVar(&o.WorkDir, "work-dir", "", "")
	fs.IntVar(&o.Services, "services", 0, "")
	_ = fs.Parse(args)
	return compare.RunNodeAgent(ctx, zap.NewNop(), o, os.Stdin, os.Stdout)
}

func logf(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }

func runCompare(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("compare", flag.ExitOnError)
	services := fs.String("services", "10,1000", "comma-separated Service counts")
	eps := fs.Int("endpoints", 10, "endpoints per Service")
	proxies := fs.String("proxies", "", "comma-separated subset of strait,kube-proxy-nftables,kube-proxy-iptables,kube-proxy-iptables-legacy (default: the first three)")
	proto := fs.String("proto", "tcp", "tcp or udp")
	size := fs.Int("size", 0, "frame size in bytes (0: headers only)")
	dur := fs.Duration("duration", 2*time.Second, "per traffic phase")
	cpus := fs.Int("cpus", 1, "generator CPUs")
	flows := fs.Int("flows", 0, "established flows (0: max(4 x services, 4096))")
	syncTimeout := fs.Duration("sync-timeout", 3*time.Minute, "bound on each proxy's cold sync (recorded as not finished beyond)")
	rr := fs.Bool("rr", true, "request/response phase: wrk and a connect-latency client through Service 0's NodePort")
	rrDur := fs.Duration("rr-duration", 3*time.Second, "wrk's run (whole seconds)")
	rrConns := fs.Int("rr-connections", 32, "wrk's keep-alive connections")
	rrConnects := fs.Int("rr-connects", 2000, "new connections timed by the latency client")
	noPPS := fs.Bool("no-pps", false, "leave out the packet phases")
	logDir := fs.String("log-dir", "", "keep the proxies' logs in this directory")
	_ = fs.Parse(args)
	node, err := selfCmd("node-agent")
	if err != nil {
		return err
	}
	o := compare.Options{Endpoints: *eps, Proto: *proto, Size: *size, Duration: *dur, CPUs: *cpus, Flows: *flows, NodeAgent: node,
		SyncTimeout: *syncTimeout, SkipPPS: *noPPS, LogDir: *logDir, Logf: logf}
	if *rr {
		o.RR = &compare.RROptions{Duration: *rrDur, Connections: *rrConns, Connects: *rrConnects}
	}
	for _, s := range strings.Split(*services, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("--services: %w", err)
		}
		o.Services = append(o.Services, n)
	}
	if *proxies != "" {
		o.Proxies = strings.Split(*proxies, ",")
	}
	r, err := compare.Run(ctx, o)
	if err != nil {
		return err
	}
	fmt.Print(harness.Markdown(&harness.Results{Profile: "compare", Started: time.Now(), Machine: report.CollectMachine(), Compare: &r}))
	return nil
}

func runProfile(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	profile := fs.String("profile", "quick", "quick or full")
	out := fs.String("out", "bench/results", "parent directory of the timestamped results directory")
	_ = fs.Parse(args)
	p, ok := harness.Profiles()[*profile]
	if !ok {
		return fmt.Errorf("unknown profile %q", *profile)
	}
	cpa, err := selfCmd("agent")
	if err != nil {
		return err
	}
	node, err := selfCmd("node-agent")
	if err != nil {
		return err
	}
	bgpHelper, err := selfCmd("bgp-helper")
	if err != nil {
		return err
	}
	dir := filepath.Join(*out, time.Now().Format("20060102-150405"))
	r, err := harness.Run(ctx, p, harness.Commands{CPAgent: cpa, NodeAgent: node, BGPHelper: bgpHelper}, dir, logf)
	if err != nil {
		if r != nil {
			_ = harness.Write(r, dir)
			fmt.Fprintln(os.Stderr, "partial results in", dir)
		}
		return err
	}
	md, _ := os.ReadFile(filepath.Join(dir, "results.md"))
	fmt.Print(string(md))
	fmt.Println("results in", dir)
	return nil
}
