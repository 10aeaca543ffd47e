package cpbench

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/straitlb/strait/controlplane/proxier"
	"github.com/straitlb/strait/controlplane/source"
	"github.com/straitlb/strait/dataplane/loader"
	"github.com/straitlb/strait/dataplane/program"
	"github.com/straitlb/strait/model"
)

// AgentOptions size the agent side of the run.
type AgentOptions struct {
	Kubeconfig string
	Services   int
	Changes    int
	// WorkDir holds the private bpffs.
	WorkDir string
}

// AgentResult is what the agent process measured.
type AgentResult struct {
	Services, Backends int
	// ColdSync is from the informers having synced to the maps holding
	// every Service.
	ColdSync time.Duration
	// FirstApply is the programming part of it.
	FirstApply time.Duration
	// Changes are single-endpoint change latencies: from just before the
	// EndpointSlice update is sent to the apiserver, to the Apply that
	// programmed it returning.
	Changes       []time.Duration
	P50, P99, Max time.Duration
	// FromWatch are the same changes timed from the moment a separate
	// watch on the apiserver delivered the update: the agent's share,
	// without the apiserver's write and etcd's commit.
	FromWatch                                []time.Duration
	FromWatchP50, FromWatchP99, FromWatchMax time.Duration
	// PeakRSS is the process's VmHWM in bytes.
	PeakRSS int64
}

type watchDP struct {
	inner *program.Programmer
	mu    sync.Mutex
	cond  *sync.Cond
	// applied: services programmed and the end time of each Apply, with
	// what the state held for the watched service.
	gen      int
	lastEnd  time.Time
	lastRes  program.Result
	firstDur time.Duration
	watch    model.ServiceName
	watchHas netip.Addr
	seen     bool
}

func (w *watchDP) Apply(s model.State) (program.Result, error) {
	return w.record(s, func() (program.Result, error) { return w.inner.Apply(s) })
}

func (w *watchDP) ApplyChanges(s model.State, changed []model.ServiceName) (program.Result, error) {
	return w.record(s, func() (program.Result, error) { return w.inner.ApplyChanges(s, changed) })
}

func (w *watchDP) record(s model.State, apply func() (program.Result, error)) (program.Result, error) {
	start := time.Now()
	res, err := apply()
	end := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gen == 0 {
		w.firstDur = end.Sub(start)
	}
	w.gen++
	w.lastEnd, w.lastRes = end, res
	if w.watchHas.IsValid() && !w.seen {
		i, ok := slices.BinarySearchFunc(s.Services, w.watch, func(a model.Service, n model.ServiceName) int { return a.Name.Compare(n) })
		if ok {
			for _, b := range s.Services[i].Backends {
				if b.Addr == w.watchHas {
					w.seen = true
				}
			}
		}
	}
	w.cond.Broadcast()
	return res, err
}

// RunAgent runs the control plane against the cluster until it has
// programmed opts.Services services, then makes opts.Changes endpoint
// changes one at a time.
func RunAgent(ctx context.Context, log *zap.Logger, opts AgentOptions) (AgentResult, error) {
	var r AgentResult
	if v := os.Getenv(EnvAgentMemLimit); v != "" {
		mib, err := strconv.Atoi(v)
		if err != nil || mib <= 0 {
			return r, fmt.Errorf("%s=%q: want a number of MiB", EnvAgentMemLimit, v)
		}
		debug.SetMemoryLimit(int64(mib) << 20)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", opts.Kubeconfig)
	if err != nil {
		return r, fmt.Errorf("load kubeconfig: %w", err)
	}
	rc.QPS, rc.Burst = 1000, 2000
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return r, err
	}
	fs := filepath.Join(opts.WorkDir, "bpffs")
	if err := loader.EnsureBPFFS(fs); err != nil {
		return r, err
	}
	defer unix.Unmount(fs, unix.MNT_DETACH)
	dp, err := loader.Load(log, loader.Options{PinDir: filepath.Join(fs, "strait")})
	if err != nil {
		return r, err
	}
	defer dp.Remove()
	prog, err := program.New(log, dp.Maps, program.Config{})
	if err != nil {
		return r, err
	}
	w := &watchDP{inner: prog}
	w.cond = sync.NewCond(&w.mu)
	src, err := source.NewKubernetes(client, source.KubernetesConfig{NodeName: "bench-node"}, log)
	if err != nil {
		return r, err
	}
	p, err := proxier.New(log, proxier.Config{NodeName: "bench-node", NodeIPs: []netip.Addr{netip.MustParseAddr("192.0.2.11")}},
		proxier.Deps{Source: src, Dataplane: w})
	if err != nil {
		return r, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = p.Run(ctx) }()

	// When did the informers sync?
	var syncedAt time.Time
	for !src.HasSynced() {
		if ctx.Err() != nil {
			return r, ctx.Err()
		}
		time.Sleep(200 * time.Microsecond)
	}
	syncedAt = time.Now()
	stopCPU := startCPUProfile(os.Getenv(EnvCPUProfile))
	w.mu.Lock()
	for w.lastRes.Services < opts.Services {
		w.cond.Wait()
	}
	stopCPU()
	r.ColdSync = w.lastEnd.Sub(syncedAt)
	r.FirstApply = w.firstDur
	r.Services, r.Backends = w.lastRes.Services, w.lastRes.Backends
	w.mu.Unlock()

	wi, err := client.DiscoveryV1().EndpointSlices(Namespace).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return r, fmt.Errorf("watch endpointslices: %w", err)
	}
	defer wi.Stop()
	var (
		seenMu sync.Mutex
		seenAt = make(map[string]time.Time)
	)
	go func() {
		for ev := range wi.ResultChan() {
			if s, ok := ev.Object.(*discoveryv1.EndpointSlice); ok {
				now := time.Now()
				seenMu.Lock()
				seenAt[s.Name+"/"+s.ResourceVersion] = now
				seenMu.Unlock()
			}
		}
	}()
	for k := range opts.Changes {
		i := (k * 7919) % opts.Services
		name := ServiceName(i) + "-1"
		slice, err := client.DiscoveryV1().EndpointSlices(Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return r, err
		}
		addr := netip.AddrFrom4([4]byte{203, 0, 113, byte(1 + k%250)})
		if slice.Endpoints[0].Addresses[0] == addr.String() {
			addr = netip.AddrFrom4([4]byte{203, 0, 113, byte(251 + k%4)})
		}
		slice.Endpoints[0].Addresses = []string{addr.String()}
		w.mu.Lock()
		w.watch = model.ServiceName{Namespace: Namespace, Name: ServiceName(i), Port: "http"}
		w.watchHas, w.seen = addr, false
		w.mu.Unlock()
		t0 := time.Now()
		updated, err := client.DiscoveryV1().EndpointSlices(Namespace).Update(ctx, slice, metav1.UpdateOptions{})
		if err != nil {
			return r, err
		}
		w.mu.Lock()
		for !w.seen {
			w.cond.Wait()
		}
		end := w.lastEnd
		r.Changes = append(r.Changes, end.Sub(t0))
		w.mu.Unlock()
		key := updated.Name + "/" + updated.ResourceVersion
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Microsecond) {
			seenMu.Lock()
			at, ok := seenAt[key]
			seenMu.Unlock()
			if ok {
				r.FromWatch = append(r.FromWatch, max(0, end.Sub(at)))
				break
			}
		}
	}
	r.P50, r.P99, r.Max = percentiles(r.Changes)
	r.FromWatchP50, r.FromWatchP99, r.FromWatchMax = percentiles(r.FromWatch)
	r.PeakRSS = PeakRSS(0)
	if path := os.Getenv(EnvHeapProfile); path != "" {
		if err := writeHeapProfile(path); err != nil {
			return r, err
		}
	}
	return r, nil
}

// percentiles returns p50, p99 and the maximum.
func percentiles(ds []time.Duration) (p50, p99, maxd time.Duration) {
	n := len(ds)
	if n == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[n/2], s[min(n-1, n*99/100)], s[n-1]
}

// Profiles of the agent side, for finding where time and memory go.
const (
	// EnvCPUProfile names a file for a CPU profile of the cold sync.
	EnvCPUProfile = "STRAIT_BENCH_CPUPROFILE"
	// EnvHeapProfile names a file for a heap profile after the run.
	EnvHeapProfile = "STRAIT_BENCH_HEAPPROFILE"
	// EnvAgentMemLimit gives the agent side a soft Go memory limit in
	// MiB, as a container limit does to the agent (GOMEMLIMIT itself
	// would reach the apiserver and etcd too).
	EnvAgentMemLimit = "STRAIT_BENCH_AGENT_MEMLIMIT_MIB"
)

func startCPUProfile(path string) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write heap profile: %w", err)
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		return fmt.Errorf("write heap profile: %w", err)
	}
	return nil
}

// PeakRSS reads a process's VmHWM in bytes (pid 0: this process; 0 when
// unreadable).
func PeakRSS(pid int) int64 {
	path := "/proc/self/status"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
