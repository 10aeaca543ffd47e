package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/straitlb/strait/internal/privtest"
)

// The README's main job, as a test: the real strait-agent binary in
// standalone mode on two nodes (devices discovered, datapath attached, BGP
// to FRR), real traffic through NodePort, LoadBalancer IPs and a ClusterIP.
// run fails if any request fails or the router does not learn the routes.
func TestPrivilegedDemo(t *testing.T) {
	privtest.Require(t)
	bin := filepath.Join(t.TempDir(), "strait-agent")
	build := exec.Command("go", "build", "-o", bin, "../strait-agent")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build agent: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := run(ctx, bin, "../../examples/standalone", 12); err != nil {
		t.Fatal(err)
	}
}
