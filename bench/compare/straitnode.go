package compare

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/straitlb/strait/bench/report"
	"github.com/straitlb/strait/controlplane/proxier"
	"github.com/straitlb/strait/controlplane/source"
	"github.com/straitlb/strait/dataplane/datapath"
	"github.com/straitlb/strait/dataplane/loader"
	"github.com/straitlb/strait/dataplane/program"
	"github.com/straitlb/strait/dataplane/stats"
	"github.com/straitlb/strait/model"
)

// NodeAgentOptions configure the Strait node process.
type NodeAgentOptions struct {
	Kubeconfig string
	Device     string
	WorkDir    string // holds a private bpffs
	Services   int    // model services to wait for
}

// NodeAgentArgs are the flags of the Strait node command.
func NodeAgentArgs(o NodeAgentOptions) []string {
	return []string{"--kubeconfig", o.Kubeconfig, "--device", o.Device, "--work-dir", o.WorkDir,
		"--services", strconv.Itoa(o.Services)}
}

// Ready is the node process's first output line.
type Ready struct {
	ProgrammedAt int64 // unix ns: the first Apply holding every service returned
	FirstApply   time.Duration
	Services     int
	Backends     int
	XDPMode      string
	Programs     []report.ProgInfo
}

type recordDP struct {
	inner *datapath.Datapath
	mu    sync.Mutex
	cond  *sync.Cond
	first time.Duration
	at    time.Time
	res   program.Result
}

func (r *recordDP) Apply(s model.State) (program.Result, error) {
	t0 := time.Now()
	res, err := r.inner.Apply(s)
	end := time.Now()
	r.mu.Lock()
	if r.first == 0 {
		r.first = end.Sub(t0)
	}
	r.at, r.res = end, res
	r.cond.Broadcast()
	r.mu.Unlock()
	return res, err
}

// SNATPortMin is the lowest SNAT source port of the Strait node under
// test.
const SNATPortMin = 1024

// RunNodeAgent is the Strait node process: it loads and attaches the
// datapath to the device, runs the Kubernetes source and the proxier until
// opts.Services are programmed, prints Ready as a JSON line, then answers
// each "stats" line on in with the global counters (JSON, summed over
// CPUs) until in is closed, and removes the datapath.
func RunNodeAgent(ctx context.Context, log *zap.Logger, o NodeAgentOptions, in io.Reader, out io.Writer) error {
	rc, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	rc.QPS, rc.Burst = 1000, 2000
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	fs := filepath.Join(o.WorkDir, "bpffs")
	if err := loader.EnsureBPFFS(fs); err != nil {
		return err
	}
	defer unix.Unmount(fs, unix.MNT_DETACH)
	// SNAT source ports as wide as kube-proxy's masquerade (the whole
	// port space): the new-flow phase opens hundreds of thousands of
	// flows to few backends, which the default 61000-65535 cannot hold.
	// Nothing in the node namespace opens connections through the uplink.
	d, err := datapath.Open(log, datapath.Config{PinDir: filepath.Join(fs, "strait"), Devices: []string{o.Device}, NativeOnly: true,
		Program: program.Config{SNATPortMin: SNATPortMin, SNATPortMax: 65535}})
	if err != nil {
		return err
	}
	defer d.Remove()
	w := &recordDP{inner: d}
	w.cond = sync.NewCond(&w.mu)
	src, err := source.NewKubernetes(client, source.KubernetesConfig{NodeName: NodeName}, log)
	if err != nil {
		return err
	}
	p, err := proxier.New(log, proxier.Config{NodeName: NodeName}, proxier.Deps{Source: src, Dataplane: w})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	go func() {
		<-ctx.Done()
		w.mu.Lock()
		w.cond.Broadcast()
		w.mu.Unlock()
	}()
	w.mu.Lock()
	for w.res.Services < o.Services && ctx.Err() == nil {
		w.cond.Wait()
	}
	r := Ready{ProgrammedAt: w.at.UnixNano(), FirstApply: w.first, Services: w.res.Services, Backends: w.res.Backends}
	w.mu.Unlock()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	objs := d.Loader().Objects()
	r.Programs = []report.ProgInfo{report.InfoOf("strait_xdp", objs.StraitXdp), report.InfoOf("strait_tc_egress", objs.StraitTcEgress)}
	for _, dev := range d.Devices() {
		r.XDPMode = string(dev.Mode)
	}
	enc := json.NewEncoder(out)
	if err := enc.Encode(r); err != nil {
		return err
	}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		if sc.Text() != "stats" {
			continue
		}
		if err := enc.Encode(readGlobal(d)); err != nil {
			return err
		}
	}
	cancel()
	select {
	case <-errc:
	case <-time.After(5 * time.Second):
	}
	return nil
}

func readGlobal(d *datapath.Datapath) map[string]uint64 {
	m := make(map[string]uint64)
	g := d.Loader().Objects().GlobalStats
	for i, name := range stats.GlobalCounters {
		var per []uint64
		if err := g.Lookup(uint32(i), &per); err != nil {
			continue
		}
		var sum uint64
		for _, v := range per {
			sum += v
		}
		m[name] = sum
	}
	return m
}
