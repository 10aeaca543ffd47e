package cpbench

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"testing"

	"go.uber.org/zap"

	"github.com/straitlb/strait/internal/privtest"
)

var agentMode = flag.Bool("agent-mode", false, "run as the benchmark's agent process")

// TestMain lets the test binary be its own agent process.
func TestMain(m *testing.M) {
	flag.Parse()
	if *agentMode {
		os.Exit(agentMain(flag.Args()))
	}
	os.Exit(m.Run())
}

func agentMain(args []string) int {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	var o AgentOptions
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "")
	fs.StringVar(&o.WorkDir, "work-dir", "", "")
	fs.IntVar(&o.Services, "services", 0, "")
	fs.IntVar(&o.Changes, "changes", 0, "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	r, err := RunAgent(context.Background(), zap.NewNop(), o)
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 1
	}
	_ = json.NewEncoder(os.Stdout).Encode(r)
	return 0
}

// A small run for correctness: every service is programmed, every change
// is observed, and the agent reports its memory. No timing is asserted.
func TestPrivilegedControlPlaneSmoke(t *testing.T) {
	privtest.Require(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), Options{Services: 50, Endpoints: 10, Changes: 5,
		Agent: []string{self, "-agent-mode", "--"}, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
	if r.Agent.Services < 50 || r.Agent.Backends < 500 || len(r.Agent.Changes) != 5 || r.Agent.PeakRSS <= 0 {
		t.Fatalf("incomplete run: %+v", r.Agent)
	}
}
