package bgpbench

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/straitlb/strait/internal/netlab"
)

const helperEnv = "STRAIT_BGPBENCH_HELPER"

// TestMain lets the test binary be the speaker helper.
func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		if err := ServeHelper(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintf(os.Stderr, "helper: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestSummarise(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := Summarise(ds)
	if s.N != 100 || s.P50 != 50*time.Millisecond || s.P99 != 99*time.Millisecond || s.Max != 100*time.Millisecond {
		t.Fatalf("Summarise = %+v", s)
	}
	if s := Summarise([]time.Duration{7}); s.P50 != 7 || s.P99 != 7 || s.Max != 7 {
		t.Fatalf("Summarise one = %+v", s)
	}
	if s := Summarise(nil); s != (Stats{}) {
		t.Fatalf("Summarise nil = %+v", s)
	}
}

func TestPrefix(t *testing.T) {
	seen := map[string]bool{}
	for _, i := range []int{0, 1, 255, 256, 9999, 65535, 65536, 1<<17 - 1} {
		p := Prefix(i)
		if !benchRange.Contains(p.Addr()) || p.Bits() != 32 || seen[p.String()] {
			t.Fatalf("Prefix(%d) = %s", i, p)
		}
		seen[p.String()] = true
	}
	if got := Prefix(258).String(); got != "198.18.1.2/32" {
		t.Fatalf("Prefix(258) = %s", got)
	}
}

// TestPrivilegedBGPBench runs both speakers against FRR with small numbers
// and checks only correctness: Run fails unless every route appears in, and
// disappears from, the tor kernel table, and every change must be seen at
// each observation point (UPDATE at FRR, BGP table, kernel table) in order.
func TestPrivilegedBGPBench(t *testing.T) {
	netlab.RequirePrivileged(t)
	var log strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, err := Run(ctx, Options{
		Changes: 5, Prefixes: 200, Background: 20,
		Helper: []string{os.Args[0], "-test.run=^$"}, HelperEnv: []string{helperEnv + "=1"},
		HelperLog: &syncWriter{b: &log},
		Logf:      t.Logf,
	})
	if err != nil {
		t.Logf("helper stderr:\n%s", log.String())
		t.Fatal(err)
	}
	t.Logf("\n%s", res)
	if len(res.Speakers) != 2 {
		t.Fatalf("%d speaker results, want 2", len(res.Speakers))
	}
	for _, s := range res.Speakers {
		if s.Add.N != 5 || s.Withdraw.N != 5 || s.Bulk <= 0 || s.BulkWithdraw <= 0 {
			t.Errorf("%s: incomplete result %+v", s.Kind, s)
		}
		for _, p := range []struct {
			what                   string
			receipt, table, kernel Stats
			inBGPD, inZebra        Stats
		}{
			{"add", s.AddReceipt, s.AddBGPTable, s.Add, s.AddInBGPD, s.AddInZebra},
			{"withdraw", s.WithdrawReceipt, s.WithdrawBGPTable, s.Withdraw, s.WithdrawInBGPD, s.WithdrawInZebra},
		} {
			if p.receipt.N != 5 || p.table.N != 5 || p.inBGPD.N != 5 || p.inZebra.N != 5 {
				t.Errorf("%s %s: points missing: receipt %v, BGP table %v, in bgpd %v, in zebra %v (notes %q)",
					s.Kind, p.what, p.receipt, p.table, p.inBGPD, p.inZebra, s.Notes)
			}
			if p.receipt.P50 <= 0 || p.receipt.P50 > p.table.P50 || p.table.P50 > p.kernel.P50 {
				t.Errorf("%s %s: points out of order: receipt %v, BGP table %v, kernel %v", s.Kind, p.what, p.receipt, p.table, p.kernel)
			}
		}
		if s.BulkReceipt <= 0 || s.BulkReceipt > s.Bulk || s.BulkWithdrawReceipt <= 0 || s.BulkWithdrawReceipt > s.BulkWithdraw {
			t.Errorf("%s: bulk at FRR %v (kernel %v), withdrawn %v (kernel %v); notes %q",
				s.Kind, s.BulkReceipt, s.Bulk, s.BulkWithdrawReceipt, s.BulkWithdraw, s.Notes)
		}
	}
	if len(res.Targets) != 3 {
		t.Errorf("targets %+v", res.Targets)
	}
}
