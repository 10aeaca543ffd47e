package micro

import (
	"testing"

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
