package micro

import (
	"os"
	"testing"

	"go.uber.org/zap"

	"github.com/straitlb/strait/dataplane/loader"

	"go.uber.org/zap/zaptest"

	"github.com/straitlb/strait/dataplane/loader/loadertest"
)

// A smoke run for correctness: every path is measured and costs more than
// nothing. No timing is asserted.
func TestPrivilegedMicroSmoke(t *testing.T) {
	dp := loadertest.Load(t, loadertest.PinDir(t))
	res, err := Run(zaptest.NewLogger(t), dp, Options{Repeat: 10000, Singles: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 4 {
		t.Fatalf("%d results", len(res))
	}
	for _, r := range res {
		t.Log(r)
		if r.Ns <= 0 || r.NoopNs <= 0 {
			t.Errorf("%s: non-positive measurement %+v", r.Name, r)
		}
	}
}

// The tc east-west program, measured the same way (run with -v and a
// larger Repeat through the Benchmark below for numbers).
func TestPrivilegedMicroTCSmoke(t *testing.T) {
	dp := loadertest.Load(t, loadertest.PinDir(t))
	res, err := RunTC(zaptest.NewLogger(t), dp, Options{Repeat: 10000, Singles: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 {
		t.Fatalf("%d results", len(res))
	}
	for _, r := range res {
		t.Log(r)
		if r.Ns <= 0 || r.NoopNs <= 0 {
			t.Errorf("%s: non-positive measurement %+v", r.Name, r)
		}
	}
}

// TestPrivilegedMicroTCReport prints full-size numbers when
// STRAIT_MICRO_REPORT is set (go test ./bench/micro -run TCReport -v).
func TestPrivilegedMicroTCReport(t *testing.T) {
	if os.Getenv("STRAIT_MICRO_REPORT") == "" {
		t.Skip("set STRAIT_MICRO_REPORT=1 for the full-size run")
	}
	dp := loadertest.Load(t, loadertest.PinDir(t))
	for _, run := range []func(*zap.Logger, *loader.Datapath, Options) ([]Result, error){Run, RunTC} {
		res, err := run(zaptest.NewLogger(t), dp, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			t.Log(r)
		}
	}
}
