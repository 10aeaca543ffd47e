package cpbench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/straitlb/strait/internal/kubetest"
)

// Options size a run.
type Options struct {
	Services, Endpoints, Changes int
	// Agent runs the agent side: a command that takes the flags of
	// AgentArgs and prints an AgentResult as JSON.
	Agent []string
	Logf  func(string, ...any)
}

// Result is one run.
type Result struct {
	Services, Endpoints int
	CreateTime          time.Duration
	Agent               AgentResult
}

// AgentArgs are the flags the agent command gets.
func AgentArgs(kubeconfig, workDir string, services, changes int) []string {
	return []string{"--kubeconfig", kubeconfig, "--work-dir", workDir,
		"--services", strconv.Itoa(services), "--changes", strconv.Itoa(changes)}
}

// Run starts a control plane, creates the objects and runs the agent.
func Run(ctx context.Context, o Options) (Result, error) {
	r := Result{Services: o.Services, Endpoints: o.Endpoints}
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	dir, err := os.MkdirTemp("", "strait-cpbench-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	cp, err := kubetest.StartCluster(ctx, kubetest.Options{TempDir: dir, Logf: logf})
	if err != nil {
		return r, err
	}
	defer cp.Stop()
	cfg := *cp.Config
	cfg.QPS, cfg.Burst = 2000, 4000
	client, err := kubernetes.NewForConfig(&cfg)
	if err != nil {
		return r, err
	}
	t0 := time.Now()
	if err := Create(ctx, client, o.Services, o.Endpoints, 32); err != nil {
		return r, err
	}
	r.CreateTime = time.Since(t0)
	logf("created %d services with %d endpoints each in %s", o.Services, o.Endpoints, r.CreateTime.Round(time.Millisecond))

	work := filepath.Join(dir, "agent")
	if err := os.MkdirAll(work, 0o700); err != nil {
		return r, err
	}
	args := append(append([]string(nil), o.Agent[1:]...), AgentArgs(cp.Kubeconfig, work, o.Services, o.Changes)...)
	cmd := exec.CommandContext(ctx, o.Agent[0], args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return r, fmt.Errorf("agent: %w: %s", err, tail(errb.String()))
	}
	if err := json.Unmarshal(out.Bytes(), &r.Agent); err != nil {
		return r, fmt.Errorf("agent output: %w: %s", err, tail(out.String()))
	}
	return r, nil
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}
