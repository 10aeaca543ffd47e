package bgpbench

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/straitlb/strait/internal/frrlab"
	"github.com/straitlb/strait/internal/netlab"
)

// points are one kind of single change's latencies, per observation point
// (all from the speaker call) and per span between points.
type points struct {
	call, receipt, table, kernel []time.Duration
	inBGPD, inZebra              []time.Duration
}

// collect sorts the single changes' times into add and withdraw points:
// receipt from wire, BGP table from table (bgpd's log). A table time
// outside [call start, kernel] means bgpd's log cannot be trusted (e.g. a
// time zone mismatch): the table points are then dropped, with a note.
func collect(changes []change, wire, table *timeline) (add, del points, notes []string) {
	missWire, missTable, bad := 0, 0, 0
	type obs struct {
		c                  change
		receipt, tbl       time.Time
		hasReceipt, hasTbl bool
	}
	all := make([]obs, 0, len(changes))
	for _, c := range changes {
		o := obs{c: c}
		o.receipt, o.hasReceipt = wire.first(c.prefix, c.add, c.start)
		if o.hasReceipt && o.receipt.After(c.kernel) {
			o.hasReceipt = false // a later change's UPDATE
		}
		if !o.hasReceipt {
			missWire++
		}
		o.tbl, o.hasTbl = table.first(c.prefix, c.add, c.start)
		switch {
		case !o.hasTbl:
			missTable++
		case o.tbl.After(c.kernel):
			bad++
		}
		all = append(all, o)
	}
	useTable := bad == 0
	for _, o := range all {
		pt := &del
		if o.c.add {
			pt = &add
		}
		pt.call = append(pt.call, o.c.call())
		pt.kernel = append(pt.kernel, o.c.latency())
		if o.hasReceipt {
			pt.receipt = append(pt.receipt, o.receipt.Sub(o.c.start))
		}
		if useTable && o.hasTbl {
			pt.table = append(pt.table, o.tbl.Sub(o.c.start))
			pt.inZebra = append(pt.inZebra, o.c.kernel.Sub(o.tbl))
			if o.hasReceipt {
				pt.inBGPD = append(pt.inBGPD, o.tbl.Sub(o.receipt))
			}
		}
	}
	if missWire > 0 {
		notes = append(notes, fmt.Sprintf("%d of %d changes: no UPDATE captured at FRR", missWire, len(changes)))
	}
	if bad > 0 {
		notes = append(notes, fmt.Sprintf("BGP table point dropped: %d of %d bgpd log times fall outside call..kernel (bgpd's time zone differs?)", bad, len(changes)))
	} else if missTable > 0 {
		notes = append(notes, fmt.Sprintf("%d of %d changes: no \"Tx route\" line in bgpd's log", missTable, len(changes)))
	}
	return add, del, notes
}

func (p points) apply(call, receipt, table, kernel, inBGPD, inZebra *Stats) {
	*call, *receipt, *table, *kernel = Summarise(p.call), Summarise(p.receipt), Summarise(p.table), Summarise(p.kernel)
	*inBGPD, *inZebra = Summarise(p.inBGPD), Summarise(p.inZebra)
}

// bulkReceipt returns the bulk call -> the last of prefixes 0..n-1 in an
// UPDATE at FRR, or 0 and a note when the capture missed data.
func bulkReceipt(cp *capture, wire *timeline, c change, n int, add bool) (time.Duration, string) {
	what := "bulk announce"
	if !add {
		what = "bulk withdrawal"
	}
	// The capture reader may trail the kernel table by a little.
	deadline := time.Now().Add(2 * time.Second)
	for {
		if err := cp.Err(); err != nil {
			return 0, fmt.Sprintf("%s at FRR not measured: %v", what, err)
		}
		if drops, err := cp.drops(); err != nil || drops > 0 {
			return 0, fmt.Sprintf("%s at FRR not measured: capture dropped %d packets (%v)", what, drops, err)
		}
		if at, ok := wire.last(n, add, c.start); ok {
			return at.Sub(c.start), ""
		}
		if time.Now().After(deadline) {
			return 0, fmt.Sprintf("%s at FRR not measured: not every prefix was captured", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func measure(ctx context.Context, kind string, opts Options) (res SpeakerResult, err error) {
	res.Kind = kind
	lab, err := netlab.New("bgpb")
	if err != nil {
		return res, err
	}
	defer func() {
		if e := lab.Shutdown(); e != nil && err == nil {
			err = e
		}
	}()
	tor, err := lab.AddNS("tor")
	if err != nil {
		return res, err
	}
	node, err := lab.AddNS("node")
	if err != nil {
		return res, err
	}
	tn, err := lab.IfName("t")
	if err != nil {
		return res, err
	}
	nn, err := lab.IfName("n")
	if err != nil {
		return res, err
	}
	if err := lab.AddVeth(netlab.VethEnd{NS: tor, Name: tn, Addr: netip.PrefixFrom(torIP, 24)},
		netlab.VethEnd{NS: node, Name: nn, Addr: netip.PrefixFrom(nodeIP, 24)}); err != nil {
		return res, err
	}
	w, err := watch(tor)
	if err != nil {
		return res, err
	}
	defer w.stop()
	wire := newTimeline()
	capt, err := captureBGP(tor, tn, nodeIP, wire)
	if err != nil {
		return res, err
	}
	defer capt.close()
	frr, err := frrlab.Start(tor, frrlab.Config{ASN: torASN, RouterID: torIP,
		Neighbors: []frrlab.Neighbor{{Addr: nodeIP, ASN: nodeASN}},
		Global:    append([]string{"log timestamp precision 6"}, opts.FRRConfig...),
		LogLevel:  "debugging"})
	if err != nil {
		return res, err
	}
	defer frr.Close()
	h, err := startHelper(node, opts)
	if err != nil {
		return res, err
	}
	defer h.proc.Stop()
	t0 := time.Now()
	if err := h.send(request{Op: "start", Kind: kind, NodeIP: nodeIP, Peer: torIP}); err != nil {
		return res, err
	}
	if _, err := h.reply(ctx); err != nil {
		return res, fmt.Errorf("start: %w", err)
	}
	isAdd := func(p netip.Prefix) func(event) bool {
		return func(ev event) bool { return ev.add && ev.prefix == p }
	}
	isDel := func(p netip.Prefix) func(event) bool {
		return func(ev event) bool { return !ev.add && ev.prefix == p }
	}
	// Warm-up: prefix 0 in the kernel means the session is up.
	if _, err := h.set(ctx, w, 1, 60*time.Second, "session up (first prefix)", isAdd(Prefix(0))); err != nil {
		return res, err
	}
	res.SessionUp = time.Since(t0)
	opts.Logf("bgp %s: session up in %s", kind, round(res.SessionUp))
	// The single changes happen on top of base prefixes 0..base-1 (at
	// least prefix 0, from the warm-up).
	base := max(1, opts.Background)
	if base > 1 {
		if _, err := h.set(ctx, w, base, 300*time.Second, fmt.Sprintf("%d background routes", base), func(event) bool { return len(w.present) == base }); err != nil {
			return res, err
		}
		opts.Logf("bgp %s: %d background routes in the kernel", kind, base)
	}

	// bgpd logs each route it hands to zebra during the single changes
	// (not during the bulk steps, which it would slow down).
	if _, err := frr.Vtysh("debug bgp zebra"); err != nil {
		return res, err
	}
	const single = 30 * time.Second
	var changes []change
	for i := base; i < base+opts.Changes; i++ {
		c, err := h.set(ctx, w, i+1, single, "add "+Prefix(i).String(), isAdd(Prefix(i)))
		if err != nil {
			return res, err
		}
		c.prefix, c.add = Prefix(i), true
		changes = append(changes, c)
	}
	for i := base + opts.Changes - 1; i >= base; i-- {
		c, err := h.set(ctx, w, i, single, "withdraw "+Prefix(i).String(), isDel(Prefix(i)))
		if err != nil {
			return res, err
		}
		c.prefix = Prefix(i)
		changes = append(changes, c)
	}
	if _, err := frr.Vtysh("no debug bgp zebra"); err != nil {
		return res, err
	}
	// Let the capture reader catch up with the last UPDATE.
	last := changes[len(changes)-1]
	wire.wait(ctx, last.prefix, last.add, last.start, time.Second)
	table := newTimeline()
	if f, err := os.Open(frr.LogPath("bgpd")); err != nil {
		res.Notes = append(res.Notes, fmt.Sprintf("bgpd log: %v", err))
	} else {
		_, err := parseTxRoutes(f, time.Local, table)
		f.Close()
		if err != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("bgpd log: %v", err))
		}
	}
	add, del, notes := collect(changes, wire, table)
	res.Notes = append(res.Notes, notes...)
	add.apply(&res.AddCall, &res.AddReceipt, &res.AddBGPTable, &res.Add, &res.AddInBGPD, &res.AddInZebra)
	del.apply(&res.WithdrawCall, &res.WithdrawReceipt, &res.WithdrawBGPTable, &res.Withdraw, &res.WithdrawInBGPD, &res.WithdrawInZebra)
	opts.Logf("bgp %s: add      receipt %s | BGP table %s | kernel %s", kind, res.AddReceipt, res.AddBGPTable, res.Add)
	opts.Logf("bgp %s: withdraw receipt %s | BGP table %s | kernel %s", kind, res.WithdrawReceipt, res.WithdrawBGPTable, res.Withdraw)

	if _, err := h.set(ctx, w, 0, 300*time.Second, "withdraw the remaining routes", func(event) bool { return len(w.present) == 0 }); err != nil {
		return res, err
	}
	if len(w.present) != 0 {
		return res, fmt.Errorf("%d benchmark routes left in the tor kernel table", len(w.present))
	}
	// Start the bulk steps with the capture's drop counter at zero (reading
	// it resets it).
	if _, err := capt.drops(); err != nil {
		return res, err
	}
	n := opts.Prefixes
	bulk := 300 * time.Second
	c, err := h.set(ctx, w, n, bulk, fmt.Sprintf("%d routes", n), func(event) bool { return len(w.present) == n })
	if err != nil {
		return res, err
	}
	res.Bulk, res.BulkCall = c.latency(), c.call()
	var note string
	if res.BulkReceipt, note = bulkReceipt(capt, wire, c, n, true); note != "" {
		res.Notes = append(res.Notes, note)
	}
	opts.Logf("bgp %s: %d prefixes in the kernel in %s (call %s, last UPDATE at FRR %s)", kind, n, round(res.Bulk), round(res.BulkCall), optDur(res.BulkReceipt))
	if got, err := countRoutes(tor); err != nil {
		return res, err
	} else if got != n {
		return res, fmt.Errorf("route list shows %d benchmark routes, want %d", got, n)
	}
	c, err = h.set(ctx, w, 0, bulk, fmt.Sprintf("%d withdrawals", n), func(event) bool { return len(w.present) == 0 })
	if err != nil {
		return res, err
	}
	res.BulkWithdraw = c.latency()
	if res.BulkWithdrawReceipt, note = bulkReceipt(capt, wire, c, n, false); note != "" {
		res.Notes = append(res.Notes, note)
	}
	opts.Logf("bgp %s: %d prefixes withdrawn in %s (last UPDATE at FRR %s)", kind, n, round(res.BulkWithdraw), optDur(res.BulkWithdrawReceipt))
	if got, err := countRoutes(tor); err != nil {
		return res, err
	} else if got != 0 {
		return res, fmt.Errorf("route list shows %d benchmark routes after withdrawing all", got)
	}
	return res, nil
}
