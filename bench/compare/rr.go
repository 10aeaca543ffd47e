package compare

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/straitlb/strait/bench/pktgen"
	"github.com/straitlb/strait/internal/netlab"
)

// The request/response phase: a client namespace and real HTTP backends
// hang off the generator namespace, which routes between them and the node
// (its sink is swapped for an XDP_PASS program meanwhile):
//
//	client ns   198.51.100.10/24, default via 198.51.100.1
//	   |
//	gen ns      router: 198.51.100.1/24 to the client, 169.254.100.1 on
//	            each backend veth with a /32 route per backend address,
//	            192.0.2.1/24 to the node (ip_forward on)
//	   |
//	node ns     the proxy under test, Service 0's NodePort on 192.0.2.11
//	   |        (through the gen ns again)
//	backend nss 10.0.0.1..E (Service 0's endpoints), default via
//	            169.254.100.1, an HTTP server on :8080 each
//
// The client talks to the NodePort (externalTrafficPolicy Cluster): every
// proxy DNATs to a remote backend and SNATs to the node address, so
// replies come back through the node for all of them.

// RRNodePort is Service 0's TCP NodePort; RRUDPNodePort its UDP one.
const (
	RRNodePort    = 30080
	RRUDPNodePort = 30081
)

var (
	rrClientIP = netip.MustParseAddr("198.51.100.10")
	rrRouterIP = netip.MustParseAddr("198.51.100.1")
	rrGateway  = netip.MustParseAddr("169.254.100.1")
)

// rrMaxBackendNS bounds the backend namespaces; more endpoints share them.
const rrMaxBackendNS = 10

// RROptions size the request/response phase.
type RROptions struct {
	Duration    time.Duration // wrk's run (default 3 s)
	Connections int           // wrk's keep-alive connections (default 32)
	Threads     int           // wrk threads (default 1)
	Connects    int           // sequential new connections timed (default 2000)
	Wrk         string        // wrk binary (default "wrk" on PATH)
}

func (o *RROptions) defaults() {
	if o.Duration == 0 {
		o.Duration = 3 * time.Second
	}
	if o.Connections == 0 {
		o.Connections = 32
	}
	if o.Threads == 0 {
		o.Threads = 1
	}
	if o.Connects == 0 {
		o.Connects = 2000
	}
	if o.Wrk == "" {
		o.Wrk = "wrk"
	}
}

// Latency summarises a latency distribution.
type Latency struct {
	Samples int           `json:"samples,omitempty"`
	Mean    time.Duration `json:"mean_ns,omitempty"`
	P50     time.Duration `json:"p50_ns"`
	P90     time.Duration `json:"p90_ns"`
	P99     time.Duration `json:"p99_ns"`
	Max     time.Duration `json:"max_ns"`
}

// Summarize returns the distribution of d (nearest-rank percentiles); d is
// not modified.
func Summarize(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	var sum time.Duration
	for _, v := range s {
		sum += v
	}
	return Latency{Samples: len(s), Mean: sum / time.Duration(len(s)),
		P50: Percentile(s, 50), P90: Percentile(s, 90), P99: Percentile(s, 99), Max: s[len(s)-1]}
}

// Percentile is the nearest-rank p-th percentile of sorted (ascending):
// the smallest value with at least p% of the samples at or below it.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(float64(len(sorted))*p/100 + 0.9999999)
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// RR is one proxy's request/response outcome.
type RR struct {
	Target   string `json:"target"`   // the NodePort, host:port
	Backends int    `json:"backends"` // HTTP servers behind it
	// wrk: HTTP/1.1 GETs on Connections keep-alive connections.
	Connections int     `json:"connections"`
	Requests    uint64  `json:"requests"`
	Seconds     float64 `json:"seconds"`
	RPS         float64 `json:"rps"`
	// Errors: wrk's socket errors plus non-2xx/3xx responses.
	Errors  uint64  `json:"errors"`
	Request Latency `json:"request_latency"` // wrk's percentiles (no mean, no samples)
	// The latency client: Connects new connections, one after the other.
	Connect   Latency `json:"connect"`    // connect(): SYN to established
	FirstByte Latency `json:"first_byte"` // connect + GET + first byte of the response
	// ConnectErrors: connections of the latency client that failed.
	ConnectErrors int `json:"connect_errors"`
	// Answered: distinct backends that answered the latency client.
	Answered int    `json:"backends_answered"`
	WrkError string `json:"wrk_error,omitempty"`
	// Error: the phase failed (the target never answered, or too many
	// connections failed); what was measured before is kept.
	Error string `json:"error,omitempty"`
}

// OK reports whether the phase measured both figures.
func (r *RR) OK() bool { return r != nil && r.Error == "" && r.WrkError == "" }

// rrLab is the client and backends of the request/response phase.
type rrLab struct {
	client   *netlab.NS
	backends []netip.Addr
	servers  []*http.Server
}

// setupRR builds the client and backend namespaces in nl's lab and starts
// the HTTP servers; backends are Service 0's endpoint addresses.
func setupRR(nl *pktgen.NodeLab, backends []netip.Addr) (r *rrLab, err error) {
	l := nl.Lab
	r = &rrLab{backends: backends}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	if err := nl.Gen.EnableForwarding(); err != nil {
		return nil, err
	}
	if r.client, err = l.AddNSNoRPFilter("cl"); err != nil {
		return nil, err
	}
	cdev, rdev := l.Name("c"), l.Name("rc")
	if err := l.AddVeth(netlab.VethEnd{NS: r.client, Name: cdev, Addr: netip.PrefixFrom(rrClientIP, 24)},
		netlab.VethEnd{NS: nl.Gen, Name: rdev, Addr: netip.PrefixFrom(rrRouterIP, 24)}); err != nil {
		return nil, err
	}
	if err := r.client.AddRoute(netlab.DefaultRoute(), rrRouterIP, ""); err != nil {
		return nil, err
	}
	if err := offloadOff(r.client, cdev, nl.Gen, rdev); err != nil {
		return nil, err
	}
	nns := min(len(backends), rrMaxBackendNS)
	var bns []*netlab.NS
	for k := range nns {
		ns, err := l.AddNSNoRPFilter(fmt.Sprintf("be%d", k))
		if err != nil {
			return nil, err
		}
		bdev, rbdev := l.Name(fmt.Sprintf("b%d", k)), l.Name(fmt.Sprintf("rb%d", k))
		if err := l.AddVeth(netlab.VethEnd{NS: ns, Name: bdev}, netlab.VethEnd{NS: nl.Gen, Name: rbdev}); err != nil {
			return nil, err
		}
		if err := offloadOff(ns, bdev, nl.Gen, rbdev); err != nil {
			return nil, err
		}
		gw := netip.PrefixFrom(rrGateway, 32)
		if err := nl.Gen.AddAddr(rbdev, gw); err != nil {
			return nil, err
		}
		if err := ns.AddRoute(gw, netip.Addr{}, bdev); err != nil {
			return nil, err
		}
		if err := ns.AddRoute(netlab.DefaultRoute(), rrGateway, bdev); err != nil {
			return nil, err
		}
		for j := k; j < len(backends); j += nns {
			if err := ns.AddAddr(bdev, netip.PrefixFrom(backends[j], 32)); err != nil {
				return nil, err
			}
			if err := nl.Gen.AddRoute(netip.PrefixFrom(backends[j], 32), netip.Addr{}, rbdev); err != nil {
				return nil, err
			}
		}
		bns = append(bns, ns)
	}
	for _, ns := range bns {
		var ln net.Listener
		if err := ns.Do(func() (err error) {
			ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", TargetPort))
			return err
		}); err != nil {
			return nil, err
		}
		srv := &http.Server{Handler: http.HandlerFunc(rrHandler), ReadHeaderTimeout: 10 * time.Second}
		r.servers = append(r.servers, srv)
		go func() { _ = srv.Serve(ln) }()
	}
	return r, nil
}

// rrHandler answers with the address the request reached: the backend.
func rrHandler(w http.ResponseWriter, req *http.Request) {
	body := "?\n"
	if a, ok := req.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap := addrPortOf(a); ap.IsValid() {
			body = ap.Addr().String() + "\n"
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = io.WriteString(w, body)
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

func (r *rrLab) close() {
	for _, s := range r.servers {
		_ = s.Close()
	}
	r.servers = nil
}

// offloadOff turns tx checksum offload off on both ends: the node's XDP
// then always sees complete checksums.
func offloadOff(a *netlab.NS, adev string, b *netlab.NS, bdev string) error {
	if err := a.DisableTxChecksum(adev); err != nil {
		return err
	}
	return b.DisableTxChecksum(bdev)
}

// rrRequest is the latency client's request.
const rrRequest = "GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: strait-bench\r\n\r\n"

// errTooManyFailures stops the latency client.
var errTooManyFailures = errors.New("too many failed connections")

// oneRequest opens a connection to target (from the calling thread's
// namespace), sends one GET and reads the response. It returns the time
// connect() took, the time to the first response byte (from before
// connect) and the answering backend.
func oneRequest(target netip.AddrPort, timeout time.Duration) (connect, first time.Duration, backend string, err error) {
	d := net.Dialer{Timeout: timeout}
	t0 := time.Now()
	c, err := d.Dial("tcp4", target.String())
	if err != nil {
		return 0, 0, "", err
	}
	connect = time.Since(t0)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, rrRequest); err != nil {
		return connect, 0, "", err
	}
	br := bufio.NewReader(c)
	if _, err := br.Peek(1); err != nil {
		return connect, 0, "", err
	}
	first = time.Since(t0)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return connect, first, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return connect, first, "", err
	}
	if resp.StatusCode != http.StatusOK {
		return connect, first, "", fmt.Errorf("status %s", resp.Status)
	}
	return connect, first, strings.TrimSpace(string(b)), nil
}

// latencyClient times n sequential connections from inside ns. Warm-up
// connections first wait (up to ready) for the target to answer at all.
func latencyClient(ctx context.Context, ns *netlab.NS, target netip.AddrPort, n int, ready time.Duration) (connect, first []time.Duration, answered map[string]int, failed int, err error) {
	answered = map[string]int{}
	err = ns.Do(func() error {
		deadline := time.Now().Add(ready)
		var last error
		for ok := 0; ok < 20; {
			if _, _, _, err := oneRequest(target, time.Second); err != nil {
				last = err
				if time.Now().After(deadline) {
					return fmt.Errorf("%s does not answer: %w", target, last)
				}
				time.Sleep(20 * time.Millisecond)
				continue
			}
			ok++
		}
		var firstErr error
		for range n {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c, f, b, err := oneRequest(target, 2*time.Second)
			if err != nil {
				failed++
				if firstErr == nil {
					firstErr = err
				}
				if failed > n/10+10 {
					return fmt.Errorf("%w: %d (first: %v)", errTooManyFailures, failed, firstErr)
				}
				continue
			}
			connect, first = append(connect, c), append(first, f)
			answered[b]++
		}
		return nil
	})
	return connect, first, answered, failed, err
}

// WrkResult is what wrk reports.
type WrkResult struct {
	Requests            uint64
	Seconds             float64
	RPS                 float64
	P50, P90, P99, Max  time.Duration
	SocketErrors, Non2x uint64
}

var (
	wrkReqs    = regexp.MustCompile(`(?m)^\s*(\d+) requests in ([0-9.]+[a-z]+)`)
	wrkRPS     = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	wrkPct     = regexp.MustCompile(`(?m)^\s+(50|75|90|99)%\s+([0-9.]+[a-z]+)\s*$`)
	wrkLatency = regexp.MustCompile(`(?m)^\s+Latency\s+([0-9.]+[a-z]+)\s+([0-9.]+[a-z]+)\s+([0-9.]+[a-z]+)`)
	wrkSockErr = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2x   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

// ParseWrk parses wrk's output (run with --latency).
func ParseWrk(out string) (WrkResult, error) {
	var r WrkResult
	m := wrkReqs.FindStringSubmatch(out)
	if m == nil {
		return r, errors.New("wrk: no request count in the output")
	}
	r.Requests, _ = strconv.ParseUint(m[1], 10, 64)
	d, err := parseWrkDuration(m[2])
	if err != nil {
		return r, err
	}
	r.Seconds = d.Seconds()
	if m := wrkRPS.FindStringSubmatch(out); m != nil {
		r.RPS, _ = strconv.ParseFloat(m[1], 64)
	} else if r.Seconds > 0 {
		r.RPS = float64(r.Requests) / r.Seconds
	}
	for _, m := range wrkPct.FindAllStringSubmatch(out, -1) {
		d, err := parseWrkDuration(m[2])
		if err != nil {
			return r, err
		}
		switch m[1] {
		case "50":
			r.P50 = d
		case "90":
			r.P90 = d
		case "99":
			r.P99 = d
		}
	}
	if m := wrkLatency.FindStringSubmatch(out); m != nil {
		if r.Max, err = parseWrkDuration(m[3]); err != nil {
			return r, err
		}
	}
	if m := wrkSockErr.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			v, _ := strconv.ParseUint(s, 10, 64)
			r.SocketErrors += v
		}
	}
	if m := wrkNon2x.FindStringSubmatch(out); m != nil {
		r.Non2x, _ = strconv.ParseUint(m[1], 10, 64)
	}
	return r, nil
}

// parseWrkDuration parses wrk's times: 512.00us, 1.20ms, 3.00s, 2.00m, 1.00h.
func parseWrkDuration(s string) (time.Duration, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return r >= 'a' && r <= 'z' })
	if i <= 0 {
		return 0, fmt.Errorf("wrk: bad duration %q", s)
	}
	v, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, fmt.Errorf("wrk: bad duration %q", s)
	}
	unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour}[s[i:]]
	if unit == 0 {
		return 0, fmt.Errorf("wrk: bad duration unit in %q", s)
	}
	return time.Duration(v * float64(unit)), nil
}

// WrkArgs are wrk's arguments for o against url. wrk takes whole seconds:
// the duration is rounded up, to one second at least.
func WrkArgs(o RROptions, url string) []string {
	secs := max(int64((o.Duration+time.Second-1)/time.Second), 1)
	return []string{"-t", strconv.Itoa(o.Threads), "-c", strconv.Itoa(o.Connections),
		"-d", strconv.FormatInt(secs, 10) + "s", "--timeout", "2s", "--latency", url}
}

// runWrk runs wrk inside the client namespace (ip netns exec).
func runWrk(ctx context.Context, o RROptions, ns *netlab.NS, target netip.AddrPort) (WrkResult, error) {
	bin, err := exec.LookPath(o.Wrk)
	if err != nil {
		return WrkResult{}, fmt.Errorf("wrk not found (apt-get install wrk): %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.Duration+30*time.Second)
	defer cancel()
	args := append([]string{"netns", "exec", ns.Name(), bin}, WrkArgs(o, "http://"+target.String()+"/")...)
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return WrkResult{}, fmt.Errorf("wrk: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return ParseWrk(string(out))
}

// rrPhase measures request/response through target: the latency client
// first (idle path), then wrk.
func rrPhase(ctx context.Context, o RROptions, r *rrLab, target netip.AddrPort) (RR, error) {
	res := RR{Target: target.String(), Backends: len(r.backends), Connections: o.Connections}
	connect, first, answered, failed, err := latencyClient(ctx, r.client, target, o.Connects, 10*time.Second)
	if err != nil {
		return res, fmt.Errorf("latency client: %w", err)
	}
	res.Connect, res.FirstByte, res.ConnectErrors, res.Answered = Summarize(connect), Summarize(first), failed, len(answered)
	w, err := runWrk(ctx, o, r.client, target)
	if err != nil {
		res.WrkError = err.Error()
		return res, nil
	}
	res.Requests, res.Seconds, res.RPS = w.Requests, w.Seconds, w.RPS
	res.Errors = w.SocketErrors + w.Non2x
	res.Request = Latency{P50: w.P50, P90: w.P90, P99: w.P99, Max: w.Max}
	return res, nil
}
