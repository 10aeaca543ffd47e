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

// The scaled run with the reference program: filler services, a
// pre-filled conntrack table, every figure also relative to the reference.
func TestPrivilegedMicroScaleSmoke(t *testing.T) {
	dp := loadertest.Load(t, loadertest.PinDir(t))
	ref, err := LoadReference()
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	o := Options{Repeat: 10000, Singles: 500, Services: 200, Conntrack: 20000, Ref: ref}
	res, err := Run(zaptest.NewLogger(t), dp, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 8 {
		t.Fatalf("%d results", len(res))
	}
	for _, r := range res {
		t.Log(r)
		if r.Ns <= 0 || r.RefNs <= 0 || r.RatioRef <= 0 || r.Scale != "200 services / 1991 backends / 20000 conntrack" {
			t.Errorf("%s: %+v", r.Name, r)
		}
	}
	var n int
	var k [16]byte
	var v [32]byte
	it := dp.Objects().Conntrack.Iterate()
	for it.Next(&k, &v) {
		n++
	}
	if n < 20000 {
		t.Errorf("conntrack holds %d entries", n)
	}
}
