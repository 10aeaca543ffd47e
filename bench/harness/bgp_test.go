package harness

import (
	"strings"
	"testing"
	"time"

	"github.com/straitlb/strait/bench/bgpbench"
)

func TestMarkdownBGP(t *testing.T) {
	r := &Results{Profile: "quick", BGP: &bgpbench.Result{Targets: []bgpbench.Target{
		{Name: "withdrawal at FRR (receipt) p99", Value: 2 * time.Millisecond, Limit: 10 * time.Millisecond, Met: true},
		{Name: "10,000 prefixes", Value: 1200 * time.Millisecond, Limit: time.Second},
	}}}
	md := Markdown(r)
	for _, want := range []string{"## BGP", "| withdrawal at FRR (receipt) p99 | 2ms | 10ms | yes |", "| 10,000 prefixes | 1.2s | 1s | no |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}
