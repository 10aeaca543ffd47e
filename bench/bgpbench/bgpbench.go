// Package bgpbench measures how fast prefixes handed to Strait's BGP speaker
// reach a real router: FRR 8.4 (zebra + bgpd) in a "tor" namespace, eBGP
// 64512 <-> 65000 to one node namespace (192.0.2.11, tor 192.0.2.1,
// maximum-paths 8). The speaker runs in a child process inside the node
// namespace (GoBGP's sockets must be created there), driven over JSON lines
// on stdin/stdout (see ServeHelper). Times run from just before the speaker
// call (SetAdvertisements with the full desired set) to three points:
//
//   - receipt: the UPDATE reaches the tor's interface (a packet socket in
//     the tor namespace, kernel receive stamps, TCP stream reassembled into
//     BGP messages; see wire.go);
//   - BGP table: bgpd's best-path run changed the route and hands it to
//     zebra (bgpd's `debug bgp zebra` log, microsecond stamps; see
//     frrlog.go);
//   - kernel table: the route's RTM_NEWROUTE / RTM_DELROUTE from the tor
//     namespace's main table (a netlink route subscription).
//
// FRR's own delay sits between receipt and the kernel: bgpd holds its
// best-path work queue 50 ms (hard-coded in bgp_process_queue_init) and
// zebra its RIB work queue 10 ms (ZEBRA_RIB_PROCESS_HOLD_TIME; the
// `zebra work-queue` command changes it, see Options.FRRConfig). The same
// run measures a bare GoBGP server (pkg/server, one AddPath/DeletePath per
// changed prefix) as the baseline, in an identical fresh lab.
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
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

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
	// Background is the number of prefixes already advertised while the
	// single changes are timed (default and minimum 1): a speaker whose
	// per-call work grows with its table shows it here.
	Background int
	// FRRConfig are extra global lines for the tor's frr.conf, e.g.
	// "zebra work-queue 0" (zebra's RIB queue hold, default 10 ms).
	FRRConfig []string
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
	if opts.Prefixes > 1<<17 || max(1, opts.Background)+opts.Changes > 1<<17 {
		return Result{}, fmt.Errorf("at most %d prefixes (bulk, or background plus changes)", 1<<17)
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
	res := Result{Changes: opts.Changes, Prefixes: opts.Prefixes, Background: max(1, opts.Background), FRRConfig: opts.FRRConfig}
	for _, k := range opts.Kinds {
		r, err := measure(ctx, k, opts)
		if err != nil {
			return res, fmt.Errorf("%s: %w", k, err)
		}
		res.Speakers = append(res.Speakers, r)
	}
	res.Targets = Judge(res)
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

// change is one timed speaker call.
type change struct {
	prefix netip.Prefix // the prefix a single change adds or withdraws
	add    bool
	// start and returned: just before the speaker call and just after it
	// returned (helper clock); kernel: the tor kernel table reached the
	// awaited state.
	start, returned, kernel time.Time
}

func (c change) latency() time.Duration { return c.kernel.Sub(c.start) }
func (c change) call() time.Duration    { return c.returned.Sub(c.start) }

// set asks for prefixes 0..n-1 and waits for the kernel table to reach
// cond.
func (h *helper) set(ctx context.Context, w *watcher, n int, timeout time.Duration, what string, cond func(event) bool) (change, error) {
	if err := h.send(request{Op: "set", N: n}); err != nil {
		return change{}, err
	}
	at, werr := w.until(ctx, timeout, what, cond)
	r, err := h.reply(ctx)
	if err != nil {
		return change{}, fmt.Errorf("set %d: %w", n, err)
	}
	if werr != nil {
		return change{}, werr
	}
	return change{start: time.Unix(0, r.Start), returned: time.Unix(0, r.Returned), kernel: at}, nil
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
