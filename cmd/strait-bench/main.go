// Command strait-bench measures Strait. Subcommands:
//
//	micro         per-packet cost of datapath paths under BPF_PROG_TEST_RUN,
//	              as ratios to a no-op program measured in the same run
//	controlplane  cold sync, endpoint-change latency and peak RSS against a
//	              real kube-apiserver, for N services x E endpoints
//
// The full harness (packet generator, kube-proxy side by side, charts) is
// being built in bench/.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/straitlb/strait/bench/cpbench"
	"github.com/straitlb/strait/bench/micro"
	"github.com/straitlb/strait/dataplane/loader"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: strait-bench micro|controlplane [flags]")
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
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "strait-bench:", err)
		os.Exit(1)
	}
}

func runMicro(args []string) error {
	fs := flag.NewFlagSet("micro", flag.ExitOnError)
	repeat := fs.Int("repeat", 1000000, "repetitions for the repeat method")
	singles := fs.Int("singles", 20000, "runs for the single-run method")
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
	res, err := micro.Run(zap.NewNop(), dp, micro.Options{Repeat: *repeat, Singles: *singles})
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
	fmt.Printf("services=%d endpoints/service=%d: cold sync %s (first apply %s); endpoint change p50 %s p99 %s max %s over %d changes; agent peak RSS %.1f MiB\n",
		a.Services, r.Endpoints, a.ColdSync.Round(time.Microsecond), a.FirstApply.Round(time.Microsecond),
		a.P50.Round(time.Microsecond), a.P99.Round(time.Microsecond), a.Max.Round(time.Microsecond), len(a.Changes),
		float64(a.PeakRSS)/(1<<20))
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
