// Command strait-agent is Strait's node agent: it keeps the node's eBPF
// datapath in sync with the cluster's Services and EndpointSlices (or, in
// standalone mode, with Kubernetes YAML in a directory), with kube-proxy's
// semantics. On SIGTERM it stops syncing and leaves the datapath
// forwarding; --cleanup removes it instead.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/clock"

	"github.com/straitlb/strait/bgp"
	"github.com/straitlb/strait/controlplane/events"
	"github.com/straitlb/strait/controlplane/healthcheck"
	"github.com/straitlb/strait/controlplane/lbipam"
	"github.com/straitlb/strait/controlplane/metrics"
	"github.com/straitlb/strait/controlplane/proxier"
	"github.com/straitlb/strait/controlplane/source"
	"github.com/straitlb/strait/dataplane/datapath"
	"github.com/straitlb/strait/dataplane/program"
)

type flags struct {
	config  string
	cleanup bool
	cfg     Config
	devices string
}

func parseFlags(args []string) (*flags, error) {
	f := &flags{}
	fs := flag.NewFlagSet("strait-agent", flag.ContinueOnError)
	fs.StringVar(&f.config, "config", "", "configuration file (YAML)")
	fs.BoolVar(&f.cleanup, "cleanup", false, "remove the datapath (detach, unpin) and exit")
	fs.StringVar(&f.cfg.NodeName, "node-name", "", "this node's name (default $NODE_NAME, then the hostname)")
	fs.StringVar(&f.cfg.Kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster)")
	fs.StringVar(&f.cfg.Standalone, "standalone", "", "read Kubernetes YAML from this directory instead of a cluster")
	fs.StringVar(&f.devices, "devices", "", "comma-separated uplinks to attach to")
	fs.StringVar(&f.cfg.PinDir, "pin-dir", "", "bpffs directory for pinned objects (default /sys/fs/bpf/strait)")
	fs.StringVar(&f.cfg.MetricsBindAddress, "metrics-bind-address", "", "metrics address (default 127.0.0.1:10249; \"off\" disables)")
	fs.StringVar(&f.cfg.HealthzBindAddress, "healthz-bind-address", "", "healthz address (default 127.0.0.1:10256; \"off\" disables)")
	fs.StringVar(&f.cfg.LogLevel, "log-level", "", "debug, info, warn or error")
	fs.StringVar(&f.cfg.LogFormat, "log-format", "", "json or console")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return f, nil
}

// merge applies flags over the file's values.
func (f *flags) merge() (Config, error) {
	var c Config
	if f.config != "" {
		var err error
		if c, err = LoadConfig(f.config); err != nil {
			return c, err
		}
	}
	o := f.cfg
	for _, kv := range []struct {
		dst *string
		v   string
	}{
		{&c.NodeName, o.NodeName}, {&c.Kubeconfig, o.Kubeconfig}, {&c.Standalone, o.Standalone},
		{&c.PinDir, o.PinDir}, {&c.MetricsBindAddress, o.MetricsBindAddress},
		{&c.HealthzBindAddress, o.HealthzBindAddress}, {&c.LogLevel, o.LogLevel}, {&c.LogFormat, o.LogFormat},
	} {
		if kv.v != "" {
			*kv.dst = kv.v
		}
	}
	if f.devices != "" {
		c.Devices = strings.Split(f.devices, ",")
	}
	c.setDefaults()
	return c, c.Validate()
}

func newLogger(c Config) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(c.LogLevel)
	if err != nil {
		return nil, fmt.Errorf("parse log level: %w", err)
	}
	zc := zap.NewProductionConfig()
	if c.LogFormat == "console" {
		zc = zap.NewDevelopmentConfig()
	}
	zc.Level = zap.NewAtomicLevelAt(lvl)
	return zc.Build()
}

func main() {
	f, err := parseFlags(os.Args[1:])
	if err != nil {
		os.Exit(2)
	}
	cfg, err := f.merge()
	if err != nil {
		fmt.Fprintln(os.Stderr, "strait-agent: invalid configuration:", err)
		os.Exit(2)
	}
	log, err := newLogger(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "strait-agent:", err)
		os.Exit(2)
	}
	defer log.Sync()
	setMemoryLimit(log, "/sys/fs/cgroup")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, cfg, f.cleanup); err != nil {
		log.Error("agent failed", zap.Error(err))
		os.Exit(1)
	}
}

func run(ctx context.Context, log *zap.Logger, cfg Config, cleanup bool) error {
	nodeIPs, err := parseAddrs(cfg.NodeIPs)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	node, err := newNodeView(log, cfg, reg)
	if err != nil {
		return err
	}
	nst, err := node.inspect()
	if err != nil {
		return fmt.Errorf("discover devices: %w", err)
	}
	devices := cfg.Devices
	if len(devices) == 0 {
		devices = nst.Chosen
	}
	if len(devices) == 0 {
		return errors.New("no uplink: configure devices, or give the node an address and a default route")
	}
	for _, d := range devices {
		if p, ok := nst.Plan(d); ok && len(p.Errors) > 0 {
			return fmt.Errorf("device %s cannot run the datapath: %s", d, strings.Join(p.Errors, "; "))
		}
	}
	if err := node.applyPinning(nst); err != nil {
		return err
	}
	snatMin, snatMax, err := ParsePortRange(cfg.SNATPortRange)
	if err != nil {
		return fmt.Errorf("snatPortRange: %w", err)
	}
	if lo, hi, err := LocalPortRange(); err != nil {
		log.Warn("cannot read net.ipv4.ip_local_port_range to check snatPortRange against it", zap.Error(err))
	} else if PortRangesOverlap(snatMin, snatMax, lo, hi) {
		log.Warn("snatPortRange overlaps net.ipv4.ip_local_port_range: a local connection and an SNATed flow to the same backend can collide; move one of them",
			zap.String("snatPortRange", cfg.SNATPortRange), zap.String("ipLocalPortRange", fmt.Sprintf("%d-%d", lo, hi)))
	}
	dp, err := datapath.Open(log, datapath.Config{
		PinDir:     cfg.PinDir,
		Devices:    devices,
		NativeOnly: cfg.NativeXDPOnly,
		SocketLB:   cfg.SocketLB,
		CgroupPath: cfg.CgroupPath,
		PodDevices: cfg.PodDevices,
		Program:    program.Config{SNATPortMin: snatMin, SNATPortMax: snatMax},
	})
	if err != nil {
		return err
	}
	if cleanup {
		log.Info("removing the datapath")
		return dp.Remove()
	}
	// Handles close on exit; the pinned datapath keeps forwarding.
	defer dp.Close()
	for _, d := range dp.Devices() {
		log.Info("datapath attached", zap.String("device", d.Name), zap.String("mode", string(d.Mode)),
			zap.Bool("updatedInPlace", d.Updated), zap.Stringer("snatAddress", d.SNATAddr))
	}

	reg.MustRegister(dp.Collector())
	m, err := metrics.New(reg)
	if err != nil {
		return err
	}

	var src source.Source
	var rec events.Recorder = events.NewLogging(log)
	var client kubernetes.Interface
	var dyn dynamic.Interface
	g, gctx := errgroup.WithContext(ctx)
	if cfg.Standalone != "" {
		fsrc, err := source.NewFile(source.FileConfig{Dir: cfg.Standalone}, clock.RealClock{}, log)
		if err != nil {
			return err
		}
		src = fsrc
		log.Info("standalone mode", zap.String("dir", cfg.Standalone))
	} else {
		rc, err := restConfig(cfg.Kubeconfig)
		if err != nil {
			return err
		}
		if client, err = kubernetes.NewForConfig(rc); err != nil {
			return fmt.Errorf("create Kubernetes client: %w", err)
		}
		if dyn, err = dynamic.NewForConfig(rc); err != nil {
			return fmt.Errorf("create dynamic client: %w", err)
		}
		ksrc, err := source.NewKubernetes(client, source.KubernetesConfig{NodeName: cfg.NodeName}, log)
		if err != nil {
			return err
		}
		src = ksrc
		krec, err := events.NewKubernetes(client, "strait-agent")
		if err != nil {
			return err
		}
		rec = krec
		g.Go(func() error { return krec.Run(gctx) })
	}

	health, err := healthcheck.NewProxyHealth(healthcheck.ProxyHealthConfig{
		Timeout:      2 * cfg.SyncPeriod.Duration,
		NodeEligible: healthcheck.SourceNodeEligible(src, cfg.NodeName, cfg.Standalone == ""),
	}, clock.RealClock{}, m)
	if err != nil {
		return err
	}
	svcHealth, err := healthcheck.NewServiceHealth(healthcheck.ServiceHealthConfig{Addresses: nodeIPs}, health, log)
	if err != nil {
		return err
	}
	var dpl proxier.Dataplane = dp
	snat := dp.Devices()[0].SNATAddr
	ba, err := newBGPAgent(ctx, log, cfg, src, snat, dyn, client)
	if err != nil {
		return err
	}
	if ba != nil {
		dpl = announcingDataplane{Dataplane: dp, ctx: ctx, bgp: ba}
		defer ba.shutdown()
		if err := bgp.RegisterMetrics(reg, ba.speaker); err != nil {
			return err
		}
		node.bgp = ba.speaker
		g.Go(func() error { return ba.watchConfig(gctx, 10*time.Second) })
	}
	p, err := proxier.New(log, proxier.Config{
		NodeName:          cfg.NodeName,
		NodeIPs:           nodeIPs,
		NodePortAddresses: cfg.NodePortAddresses,
		ProxyName:         cfg.ProxyName,
		MinSyncPeriod:     cfg.MinSyncPeriod.Duration,
		SyncPeriod:        cfg.SyncPeriod.Duration,
		FullSyncPeriod:    cfg.FullSyncPeriod.Duration,
	}, proxier.Deps{
		Source: src, Dataplane: dpl, Recorder: rec, Metrics: m,
		Health: health, ServiceHealth: svcHealth, Clock: clock.RealClock{},
	})
	if err != nil {
		return err
	}
	if a := cfg.HealthzBindAddress; a != "off" {
		g.Go(func() error { return health.Serve(gctx, a, log) })
	}
	if a := cfg.MetricsBindAddress; a != "off" {
		mux := http.NewServeMux()
		mux.Handle("/", metrics.Handler(reg, log))
		mux.Handle("/status", statusHandler(node, dp))
		g.Go(func() error { return serveHTTP(gctx, a, mux, log) })
	}
	g.Go(func() error { return node.watch(gctx, dp) })
	if client != nil && cfg.LBIPAM {
		ipam, err := lbipam.New(lbipam.Config{Client: client, Dynamic: dyn, Identity: cfg.NodeName,
			Recorder: rec, Registry: reg, Logger: log.Named("lbipam")})
		if err != nil {
			return err
		}
		g.Go(func() error { return ipam.Run(gctx) })
	}
	g.Go(func() error { return p.Run(gctx) })
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("agent stopped; the datapath keeps forwarding")
	return err
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	var rc *rest.Config
	var err error
	if kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		rc, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("load Kubernetes client config: %w", err)
	}
	rc.UserAgent = "strait-agent"
	return rc, nil
}

func parseAddrs(ss []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range ss {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("nodeIPs: %w", err)
		}
		out = append(out, a)
	}
	return out, nil
}

// serveHTTP serves h on addr until ctx is done.
func serveHTTP(ctx context.Context, addr string, h http.Handler, log *zap.Logger) error {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("serving metrics and status", zap.String("address", addr))
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", addr, err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}
}
