// Package bgpbench measures how fast prefixes handed to Strait's BGP speaker
// reach a real router's forwarding table: FRR 8.4 (zebra + bgpd) in a "tor"
// namespace, eBGP 64512 <-> 65000 to one node namespace (192.0.2.11, tor
// 192.0.2.1, maximum-paths 8). The speaker runs in a child process inside the
// node namespace (GoBGP's sockets must be created there), driven over JSON
// lines on stdin/stdout (see ServeHelper). Times run from just before the
// speaker call (SetAdvertisements with the full desired set) to the arrival
// of the route's RTM_NEWROUTE / RTM_DELROUTE from the tor namespace's kernel
// table (a netlink route subscription). The same run measures a bare GoBGP
// server (pkg/server, one AddPath/DeletePath per changed prefix) as the
// baseline, in an identical fresh lab.
package bgpbench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/straitlb/strait/internal/frrlab"
	"github.com/straitlb/strait/internal/netlab"
)

var (
	torIP  = netip.MustParseAddr("192.0.2.1")
	nodeIP = netip.MustParseAddr("192.0.2.11")
	// benchRange holds every Prefix.
	benchRange = netip.MustParsePrefix("198.18.0.0/15")
)

// Options configures Run.
type Options struct {
	// Changes is the number of single-prefix additions, and then
	// removals, to time (default 50).
	Changes int
	// Prefixes is the bulk size (default 10000).
	Prefixes int
	// Helper is the command that runs ServeHelper (e.g. the binary and a
	// hidden subcommand); HelperEnv is added to its environment.
	Helper    []string
	HelperEnv []string
	// HelperLog receives the helpers' stderr (nil: discarded).
	HelperLog io.Writer
	// Logf reports progress (nil: silent).
	Logf func(format string, args ...any)
	// Kinds are the speakers to measure (default Strait, then GoBGP).
	Kinds []string
}

// Stats summarises latencies.
type Stats struct {
	N             int
	P50, P99, Max time.Duration
}

func (s Stats) String() string {
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

// SpeakerResult is one speaker's figures.
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
}

// Result is one run.
type Result struct {
	Changes, Prefixes int
	Speakers          []SpeakerResult
}

func (r Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "BGP: speaker call -> route in FRR 8.4's kernel table (tor netns), %d single changes, %d-prefix bulk\n", r.Changes, r.Prefixes)
	for _, s := range r.Speakers {
		fmt.Fprintf(&b, "%-7s add           %s\n", s.Kind, s.Add)
		fmt.Fprintf(&b, "%-7s withdraw      %s\n", s.Kind, s.Withdraw)
		fmt.Fprintf(&b, "%-7s add call      %s\n", s.Kind, s.AddCall)
		fmt.Fprintf(&b, "%-7s withdraw call %s\n", s.Kind, s.WithdrawCall)
		fmt.Fprintf(&b, "%-7s bulk %d: all in kernel %s (call %s), all withdrawn %s; session up %s\n",
			s.Kind, r.Prefixes, round(s.Bulk), round(s.BulkCall), round(s.BulkWithdraw), round(s.SessionUp))
	}
	if len(r.Speakers) == 2 {
		a, g := r.Speakers[0], r.Speakers[1]
		diff := func(x, y time.Duration) string {
			d := round(x - y).String()
			if x >= y {
				d = "+" + d
			}
			if y == 0 {
				return d
			}
			return fmt.Sprintf("%s (%.2fx)", d, float64(x)/float64(y))
		}
		fmt.Fprintf(&b, "%s - %s: add p50 %s p99 %s; withdraw p50 %s p99 %s; bulk %s; bulk withdraw %s\n",
			a.Kind, g.Kind, diff(a.Add.P50, g.Add.P50), diff(a.Add.P99, g.Add.P99),
			diff(a.Withdraw.P50, g.Withdraw.P50), diff(a.Withdraw.P99, g.Withdraw.P99),
			diff(a.Bulk, g.Bulk), diff(a.BulkWithdraw, g.BulkWithdraw))
	}
	return b.String()
}

// Run measures each kind in its own fresh lab (namespaces, FRR, helper),
// all removed before it returns, also on failure.
func Run(ctx context.Context, opts Options) (Result, error) {
	if opts.Changes <= 0 {
		opts.Changes = 50
	}
	if opts.Prefixes <= 0 {
		opts.Prefixes = 10000
	}
	if opts.Prefixes > 1<<17 {
		return Result{}, fmt.Errorf("at most %d prefixes", 1<<17)
	}
	if len(opts.Helper) == 0 {
		return Result{}, errors.New("no helper command")
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if len(opts.Kinds) == 0 {
		opts.Kinds = []string{KindStrait, KindGoBGP}
	}
	res := Result{Changes: opts.Changes, Prefixes: opts.Prefixes}
	for _, k := range opts.Kinds {
		r, err := measure(ctx, k, opts)
		if err != nil {
			return res, fmt.Errorf("%s: %w", k, err)
		}
		res.Speakers = append(res.Speakers, r)
	}
	return res, nil
}

// event is one route change in the tor kernel table.
type event struct {
	prefix netip.Prefix
	add    bool
	at     time.Time
}

// watcher follows the tor namespace's main table for benchmark prefixes.
type watcher struct {
	events  chan event
	errs    chan error
	done    chan struct{}
	stop    func()
	present map[netip.Prefix]bool
}

func watch(ns *netlab.NS) (*watcher, error) {
	h, err := netns.GetFromPath(ns.Path())
	if err != nil {
		return nil, err
	}
	raw := make(chan netlink.RouteUpdate, 4096)
	w := &watcher{
		events:  make(chan event, 1<<18),
		errs:    make(chan error, 1),
		done:    make(chan struct{}),
		present: make(map[netip.Prefix]bool),
	}
	err = netlink.RouteSubscribeWithOptions(raw, w.done, netlink.RouteSubscribeOptions{
		Namespace:              &h,
		ReceiveBufferSize:      64 << 20,
		ReceiveBufferForceSize: true,
		ErrorCallback: func(err error) {
			select {
			case w.errs <- fmt.Errorf("route subscription: %w", err):
			default:
			}
		},
	})
	if err != nil {
		h.Close()
		return nil, err
	}
	w.stop = sync.OnceFunc(func() { close(w.done); h.Close() })
	go func() {
		for u := range raw {
			at := time.Now()
			if (u.Type != unix.RTM_NEWROUTE && u.Type != unix.RTM_DELROUTE) || u.Dst == nil || u.Table != unix.RT_TABLE_MAIN {
				continue
			}
			ones, _ := u.Dst.Mask.Size()
			a, ok := netip.AddrFromSlice(u.Dst.IP)
			if !ok || ones != 32 {
				continue
			}
			p := netip.PrefixFrom(a.Unmap(), ones)
			if !benchRange.Contains(p.Addr()) {
				continue
			}
			select {
			case w.events <- event{prefix: p, add: u.Type == unix.RTM_NEWROUTE, at: at}:
			default:
				select {
				case w.errs <- errors.New("route event queue overflow"):
				default:
				}
			}
		}
	}()
	return w, nil
}

// until consumes events until cond holds after one, and returns that
// event's arrival time.
func (w *watcher) until(ctx context.Context, timeout time.Duration, what string, cond func(event) bool) (time.Time, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case ev := <-w.events:
			if ev.add {
				w.present[ev.prefix] = true
			} else {
				delete(w.present, ev.prefix)
			}
			if cond(ev) {
				return ev.at, nil
			}
		case err := <-w.errs:
			return time.Time{}, err
		case <-timer.C:
			return time.Time{}, fmt.Errorf("timed out after %s waiting for %s (%d benchmark routes in the tor kernel table)", timeout, what, len(w.present))
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// helper is the speaker child process.
type helper struct {
	proc *netlab.Process
	enc  *json.Encoder
	dec  *json.Decoder
	ch   chan response
}

func startHelper(ns *netlab.NS, opts Options) (*helper, error) {
	cmd := exec.Command(opts.Helper[0], opts.Helper[1:]...)
	cmd.Env = append(os.Environ(), opts.HelperEnv...)
	cmd.Stderr = opts.HelperLog
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p, err := ns.Spawn(cmd)
	if err != nil {
		return nil, err
	}
	h := &helper{proc: p, enc: json.NewEncoder(stdin), dec: json.NewDecoder(bufio.NewReader(stdout)), ch: make(chan response, 1)}
	go func() {
		defer close(h.ch)
		for {
			var r response
			if err := h.dec.Decode(&r); err != nil {
				return
			}
			h.ch <- r
		}
	}()
	return h, nil
}

func (h *helper) send(req request) error {
	if err := h.enc.Encode(req); err != nil {
		return fmt.Errorf("send %s to helper: %w", req.Op, err)
	}
	return nil
}

func (h *helper) reply(ctx context.Context) (response, error) {
	select {
	case r, ok := <-h.ch:
		if !ok {
			return r, errors.New("helper exited")
		}
		if r.Err != "" {
			return r, errors.New(r.Err)
		}
		return r, nil
	case <-time.After(120 * time.Second):
		return response{}, errors.New("helper did not reply in 120s")
	case <-ctx.Done():
		return response{}, ctx.Err()
	}
}

// set asks for prefixes 0..n-1, waits for the kernel table to reach cond,
// and returns call start -> cond and the call's duration.
func (h *helper) set(ctx context.Context, w *watcher, n int, timeout time.Duration, what string, cond func(event) bool) (lat, call time.Duration, err error) {
	if err := h.send(request{Op: "set", N: n}); err != nil {
		return 0, 0, err
	}
	at, werr := w.until(ctx, timeout, what, cond)
	r, err := h.reply(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("set %d: %w", n, err)
	}
	if werr != nil {
		return 0, 0, werr
	}
	start, returned := time.Unix(0, r.Start), time.Unix(0, r.Returned)
	return at.Sub(start), returned.Sub(start), nil
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
	frr, err := frrlab.Start(tor, frrlab.Config{ASN: torASN, RouterID: torIP,
		Neighbors: []frrlab.Neighbor{{Addr: nodeIP, ASN: nodeASN}}})
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
	if _, _, err := h.set(ctx, w, 1, 60*time.Second, "session up (first prefix)", isAdd(Prefix(0))); err != nil {
		return res, err
	}
	res.SessionUp = time.Since(t0)
	opts.Logf("bgp %s: session up in %s", kind, round(res.SessionUp))

	const single = 30 * time.Second
	var lat, call []time.Duration
	for i := 1; i <= opts.Changes; i++ {
		l, c, err := h.set(ctx, w, i+1, single, "add "+Prefix(i).String(), isAdd(Prefix(i)))
		if err != nil {
			return res, err
		}
		lat, call = append(lat, l), append(call, c)
	}
	res.Add, res.AddCall = Summarise(lat), Summarise(call)
	opts.Logf("bgp %s: add %s", kind, res.Add)
	lat, call = nil, nil
	for i := opts.Changes; i >= 1; i-- {
		l, c, err := h.set(ctx, w, i, single, "withdraw "+Prefix(i).String(), isDel(Prefix(i)))
		if err != nil {
			return res, err
		}
		lat, call = append(lat, l), append(call, c)
	}
	res.Withdraw, res.WithdrawCall = Summarise(lat), Summarise(call)
	opts.Logf("bgp %s: withdraw %s", kind, res.Withdraw)

	if _, _, err := h.set(ctx, w, 0, single, "withdraw "+Prefix(0).String(), isDel(Prefix(0))); err != nil {
		return res, err
	}
	if len(w.present) != 0 {
		return res, fmt.Errorf("%d benchmark routes left in the tor kernel table", len(w.present))
	}
	n := opts.Prefixes
	bulk := 300 * time.Second
	res.Bulk, res.BulkCall, err = h.set(ctx, w, n, bulk, fmt.Sprintf("%d routes", n), func(event) bool { return len(w.present) == n })
	if err != nil {
		return res, err
	}
	opts.Logf("bgp %s: %d prefixes in the kernel in %s (call %s)", kind, n, round(res.Bulk), round(res.BulkCall))
	if got, err := countRoutes(tor); err != nil {
		return res, err
	} else if got != n {
		return res, fmt.Errorf("route list shows %d benchmark routes, want %d", got, n)
	}
	res.BulkWithdraw, _, err = h.set(ctx, w, 0, bulk, fmt.Sprintf("%d withdrawals", n), func(event) bool { return len(w.present) == 0 })
	if err != nil {
		return res, err
	}
	opts.Logf("bgp %s: %d prefixes withdrawn in %s", kind, n, round(res.BulkWithdraw))
	if got, err := countRoutes(tor); err != nil {
		return res, err
	} else if got != 0 {
		return res, fmt.Errorf("route list shows %d benchmark routes after withdrawing all", got)
	}
	return res, nil
}

// countRoutes lists the tor main table's benchmark /32s.
func countRoutes(ns *netlab.NS) (int, error) {
	h := ns.Netlink()
	if h == nil {
		return 0, netlab.ErrClosed
	}
	routes, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		if a, ok := netip.AddrFromSlice(r.Dst.IP); ok && ones == 32 && benchRange.Contains(a.Unmap()) {
			n++
		}
	}
	return n, nil
}
