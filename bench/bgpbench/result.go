package bgpbench

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Stats summarises latencies.
type Stats struct {
	N             int
	P50, P99, Max time.Duration
}

func (s Stats) String() string {
	if s.N == 0 {
		return "not measured"
	}
	return fmt.Sprintf("p50 %8s  p99 %8s  max %8s  (n=%d)", round(s.P50), round(s.P99), round(s.Max), s.N)
}

func round(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }

// Summarise returns p50/p99 (nearest rank) and max of ds.
func Summarise(ds []time.Duration) Stats {
	if len(ds) == 0 {
		return Stats{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return Stats{N: len(s), P50: rank(0.50), P99: rank(0.99), Max: s[len(s)-1]}
}

// SpeakerResult is one speaker's figures. Each single change is observed at
// three points, all timed from just before the speaker call:
//
//   - Receipt: the UPDATE carrying the change arrives on the tor's
//     interface (kernel receive stamp of the TCP segment that completes
//     the message), i.e. the speaker side plus the wire;
//   - BGPTable: bgpd's best-path run has changed the route in FRR's BGP
//     table and hands it to zebra (bgpd's `debug bgp zebra` "Tx route"
//     log line, microsecond stamps); N is 0 when it could not be read;
//   - Add / Withdraw: the route is added to / removed from the tor kernel
//     table (RTM_NEWROUTE / RTM_DELROUTE), i.e. what FRR forwards with.
//
// The In* fields are per-change differences between the points: InBGPD
// from Receipt to BGPTable (bgpd's read, parse and best-path work queue),
// InZebra from BGPTable to the kernel (zebra's RIB work queue, dataplane
// and netlink).
type SpeakerResult struct {
	Kind string
	// Add and Withdraw: speaker call -> route added to / removed from the
	// tor kernel table. AddCall and WithdrawCall: the call's own duration.
	Add, Withdraw         Stats
	AddCall, WithdrawCall Stats
	// Bulk: one call with Prefixes prefixes -> the last of them in the tor
	// kernel table; BulkCall is the call's duration. BulkWithdraw: one
	// call with none -> the last of them gone.
	Bulk, BulkCall, BulkWithdraw time.Duration
	// SessionUp: helper start -> the first prefix in the tor kernel table.
	SessionUp time.Duration

	// AddReceipt, WithdrawReceipt: speaker call -> UPDATE at FRR.
	AddReceipt, WithdrawReceipt Stats
	// AddBGPTable, WithdrawBGPTable: speaker call -> route changed in
	// FRR's BGP table.
	AddBGPTable, WithdrawBGPTable Stats
	// Per-change spans between the points (see above).
	AddInBGPD, WithdrawInBGPD   Stats
	AddInZebra, WithdrawInZebra Stats
	// BulkReceipt, BulkWithdrawReceipt: the bulk call -> the UPDATE with
	// the last of its prefixes at FRR (0: not measured, see Notes).
	BulkReceipt, BulkWithdrawReceipt time.Duration
	// Notes explains figures that could not be measured.
	Notes []string `json:",omitempty"`
}

// Target is one of the goals, judged on a run.
type Target struct {
	Name  string
	Value time.Duration // the measured figure
	Limit time.Duration
	Met   bool
}

func (t Target) String() string {
	verdict := "MISSED"
	if t.Met {
		verdict = "met"
	}
	return fmt.Sprintf("%s: %s (%s, limit %s)", t.Name, verdict, round(t.Value), t.Limit)
}

// Result is one run.
type Result struct {
	Changes, Prefixes int
	Speakers          []SpeakerResult
	// Background is the number of prefixes advertised during the single
	// changes (Options.Background).
	Background int `json:",omitempty"`
	// FRRConfig are the extra global lines of the tor's frr.conf
	// (Options.FRRConfig).
	FRRConfig []string `json:",omitempty"`
	// Targets judges the run against the goals (see Judge).
	Targets []Target `json:",omitempty"`
}

// Speaker returns the result of kind, if measured.
func (r Result) Speaker(kind string) (SpeakerResult, bool) {
	for _, s := range r.Speakers {
		if s.Kind == kind {
			return s, true
		}
	}
	return SpeakerResult{}, false
}

// Limits of the targets.
const (
	// AssignLimit: Strait's assignment (kernel table, p99) within this of
	// bare GoBGP's.
	AssignLimit = 10 * time.Millisecond
	// WithdrawLimit: a withdrawal seen at FRR (the UPDATE's receipt) within
	// this at p99.
	WithdrawLimit = 10 * time.Millisecond
	// BulkLimit: Prefixes prefixes in the kernel table within this.
	BulkLimit = time.Second
)

// Judge returns the targets for Strait's figures. FRR's own
// processing (bgpd's best-path queue holds changes 50 ms, zebra's RIB queue
// 10 ms) is outside any speaker's reach, so the withdrawal target is
// judged where the withdrawal reaches FRR; the kernel-table figures stay
// in the result.
func Judge(r Result) []Target {
	s, ok := r.Speaker(KindStrait)
	if !ok {
		return nil
	}
	var ts []Target
	if g, ok := r.Speaker(KindGoBGP); ok && s.Add.N > 0 && g.Add.N > 0 {
		d := s.Add.P99 - g.Add.P99
		ts = append(ts, Target{Name: "assignment p99 (kernel table) within 10ms of bare GoBGP", Value: d, Limit: AssignLimit, Met: d <= AssignLimit})
	}
	if s.WithdrawReceipt.N > 0 {
		ts = append(ts, Target{Name: "withdrawal at FRR (UPDATE receipt) p99", Value: s.WithdrawReceipt.P99, Limit: WithdrawLimit, Met: s.WithdrawReceipt.P99 <= WithdrawLimit})
	} else {
		ts = append(ts, Target{Name: "withdrawal at FRR (UPDATE receipt) p99 (not measured)", Limit: WithdrawLimit})
	}
	if s.Bulk > 0 {
		ts = append(ts, Target{Name: fmt.Sprintf("%d prefixes in the kernel table", r.Prefixes), Value: s.Bulk, Limit: BulkLimit, Met: s.Bulk <= BulkLimit})
	}
	return ts
}

func (r Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "BGP: speaker call -> UPDATE at FRR (receipt) -> route in FRR's BGP table -> route in FRR 8.4's kernel table (tor netns), %d single changes over %d advertised, %d-prefix bulk\n", r.Changes, max(1, r.Background), r.Prefixes)
	if len(r.FRRConfig) > 0 {
		fmt.Fprintf(&b, "tor frr.conf extra: %s\n", strings.Join(r.FRRConfig, "; "))
	}
	for _, s := range r.Speakers {
		fmt.Fprintf(&b, "%-7s add           %s\n", s.Kind, s.Add)
		fmt.Fprintf(&b, "%-7s withdraw      %s\n", s.Kind, s.Withdraw)
		fmt.Fprintf(&b, "%-7s add call      %s\n", s.Kind, s.AddCall)
		fmt.Fprintf(&b, "%-7s withdraw call %s\n", s.Kind, s.WithdrawCall)
		for _, l := range []struct {
			what string
			st   Stats
		}{
			{"add      at FRR (receipt)  ", s.AddReceipt},
			{"add      in BGP table      ", s.AddBGPTable},
			{"add      in kernel table   ", s.Add},
			{"add      span in bgpd      ", s.AddInBGPD},
			{"add      span in zebra     ", s.AddInZebra},
			{"withdraw at FRR (receipt)  ", s.WithdrawReceipt},
			{"withdraw in BGP table      ", s.WithdrawBGPTable},
			{"withdraw in kernel table   ", s.Withdraw},
			{"withdraw span in bgpd      ", s.WithdrawInBGPD},
			{"withdraw span in zebra     ", s.WithdrawInZebra},
		} {
			fmt.Fprintf(&b, "%-7s %s %s\n", s.Kind, l.what, l.st)
		}
		fmt.Fprintf(&b, "%-7s bulk %d: all in kernel %s (call %s, last UPDATE at FRR %s), all withdrawn %s (last UPDATE at FRR %s); session up %s\n",
			s.Kind, r.Prefixes, round(s.Bulk), round(s.BulkCall), optDur(s.BulkReceipt),
			round(s.BulkWithdraw), optDur(s.BulkWithdrawReceipt), round(s.SessionUp))
		for _, n := range s.Notes {
			fmt.Fprintf(&b, "%-7s note: %s\n", s.Kind, n)
		}
	}
	if len(r.Speakers) == 2 {
		a, g := r.Speakers[0], r.Speakers[1]
		fmt.Fprintf(&b, "%s - %s: add p50 %s p99 %s; withdraw p50 %s p99 %s; bulk %s; bulk withdraw %s\n",
			a.Kind, g.Kind, diff(a.Add.P50, g.Add.P50), diff(a.Add.P99, g.Add.P99),
			diff(a.Withdraw.P50, g.Withdraw.P50), diff(a.Withdraw.P99, g.Withdraw.P99),
			diff(a.Bulk, g.Bulk), diff(a.BulkWithdraw, g.BulkWithdraw))
		fmt.Fprintf(&b, "%s - %s at FRR (receipt): add p50 %s p99 %s; withdraw p50 %s p99 %s\n",
			a.Kind, g.Kind, diff(a.AddReceipt.P50, g.AddReceipt.P50), diff(a.AddReceipt.P99, g.AddReceipt.P99),
			diff(a.WithdrawReceipt.P50, g.WithdrawReceipt.P50), diff(a.WithdrawReceipt.P99, g.WithdrawReceipt.P99))
	}
	for _, t := range r.Targets {
		fmt.Fprintf(&b, "target: %s\n", t)
	}
	return b.String()
}

func optDur(d time.Duration) string {
	if d <= 0 {
		return "not measured"
	}
	return round(d).String()
}

func diff(x, y time.Duration) string {
	d := round(x - y).String()
	if x >= y {
		d = "+" + d
	}
	if y == 0 {
		return d
	}
	return fmt.Sprintf("%s (%.2fx)", d, float64(x)/float64(y))
}
