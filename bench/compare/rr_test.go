package compare

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

const wrkOut = `Running 3s test @ http://192.0.2.11:30080/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.13ms    1.20ms  45.61ms   91.12%
    Req/Sec    15.12k     1.01k   17.00k    70.00%
  Latency Distribution
     50%  812.00us
     75%    1.50ms
     90%    3.20ms
     99%    1.02s
  45360 requests in 3.00s, 5.19MB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 5
Requests/sec:  15119.91
Transfer/sec:      1.73MB
`

func TestParseWrk(t *testing.T) {
	r, err := ParseWrk(wrkOut)
	if err != nil {
		t.Fatal(err)
	}
	want := WrkResult{Requests: 45360, Seconds: 3, RPS: 15119.91, P50: 812 * time.Microsecond, P90: 3200 * time.Microsecond,
		P99: 1020 * time.Millisecond, Max: 45610 * time.Microsecond, SocketErrors: 10, Non2x: 5}
	if r != want {
		t.Errorf("got %+v\nwant %+v", r, want)
	}
	// No errors reported, no Requests/sec line: the rate is computed.
	r, err = ParseWrk("  100 requests in 2.00m, 1.00KB read\n")
	if err != nil || r.Requests != 100 || r.Seconds != 120 || r.RPS != 100.0/120 || r.SocketErrors != 0 {
		t.Errorf("got %+v, %v", r, err)
	}
	if _, err := ParseWrk("unable to connect to 192.0.2.11:30080 Connection refused\n"); err == nil {
		t.Error("no error for output without a request count")
	}
	for _, bad := range []string{"12", "ms", "1.0xs", "1.2.3ms"} {
		if _, err := parseWrkDuration(bad); err == nil {
			t.Errorf("parseWrkDuration(%q): no error", bad)
		}
	}
}

func TestWrkArgs(t *testing.T) {
	o := RROptions{Duration: 1500 * time.Millisecond}
	o.defaults()
	got := strings.Join(WrkArgs(o, "http://x/"), " ")
	if want := "-t 1 -c 32 -d 2s --timeout 2s --latency http://x/"; got != want {
		t.Errorf("got %q want %q", got, want)
	}
	o.Duration = 100 * time.Millisecond
	if a := WrkArgs(o, "u"); a[5] != "1s" {
		t.Errorf("short duration: %v", a)
	}
}

func TestSummarize(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	orig := slices.Clone(d)
	l := Summarize(d)
	want := Latency{Samples: 100, Mean: 50500 * time.Microsecond, P50: 50 * time.Millisecond, P90: 90 * time.Millisecond,
		P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}
	if l != want {
		t.Errorf("got %+v want %+v", l, want)
	}
	if !slices.Equal(d, orig) {
		t.Error("Summarize modified its input")
	}
	if (Summarize(nil) != Latency{}) {
		t.Error("empty input")
	}
	one := []time.Duration{7}
	if l := Summarize(one); l.P50 != 7 || l.P99 != 7 || l.Max != 7 {
		t.Errorf("one sample: %+v", l)
	}
	// Nearest rank: of 3 samples the 50th percentile is the 2nd, the
	// 99th the 3rd; of 200, the 99th is the 198th.
	three := []time.Duration{1, 2, 3}
	if Percentile(three, 50) != 2 || Percentile(three, 99) != 3 || Percentile(three, 0) != 1 {
		t.Error("percentiles of three samples")
	}
	var two100 []time.Duration
	for i := 1; i <= 200; i++ {
		two100 = append(two100, time.Duration(i))
	}
	if p := Percentile(two100, 99); p != 198 {
		t.Errorf("p99 of 1..200 = %d", p)
	}
}

func TestPollInterval(t *testing.T) {
	for el, want := range map[time.Duration]time.Duration{
		0: 20 * time.Millisecond, time.Second: 20 * time.Millisecond, 10 * time.Second: 100 * time.Millisecond,
		time.Minute: 600 * time.Millisecond, 10 * time.Minute: time.Second,
	} {
		if got := PollInterval(el); got != want {
			t.Errorf("PollInterval(%s) = %s, want %s", el, got, want)
		}
	}
}

// Service 0 is the request/response phase's NodePort Service; the others
// are plain ClusterIP Services.
func TestServicePlan(t *testing.T) {
	s := Service(0)
	if s.Spec.Type != v1.ServiceTypeNodePort || s.Spec.ExternalTrafficPolicy != v1.ServiceExternalTrafficPolicyCluster ||
		s.Spec.Ports[0].NodePort != RRNodePort || s.Spec.Ports[0].Protocol != v1.ProtocolTCP || s.Spec.Ports[1].NodePort != RRUDPNodePort {
		t.Errorf("service 0: %+v", s.Spec)
	}
	if s := Service(1); s.Spec.Type != "" || s.Spec.Ports[0].NodePort != 0 || s.Spec.ClusterIP != ServiceIP(1).String() {
		t.Errorf("service 1: %+v", s.Spec)
	}
	// The backends of the phase are Service 0's endpoints.
	for j := range 10 {
		if a := EndpointIP(0, j, 10); !BackendNet.Contains(a) || a.As4()[3] != byte(j+1) {
			t.Errorf("endpoint %d: %s", j, a)
		}
	}
}

func TestLegacyIPTablesEnv(t *testing.T) {
	for _, tool := range iptablesTools {
		if _, err := os.Stat(filepath.Join("/usr/sbin", strings.Replace(tool, "tables", "tables-legacy", 1))); err != nil {
			t.Skipf("no legacy iptables tools: %v", err)
		}
	}
	dir := filepath.Join(t.TempDir(), "shim")
	env, err := LegacyIPTablesEnv(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LegacyIPTablesEnv(dir); err != nil { // idempotent
		t.Fatal(err)
	}
	paths := 0
	for _, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			paths++
			if !strings.HasPrefix(kv, "PATH="+dir+":") {
				t.Errorf("PATH does not start with the shim: %s", kv)
			}
		}
	}
	if paths != 1 {
		t.Errorf("%d PATH entries", paths)
	}
	for _, tool := range iptablesTools {
		target, err := os.Readlink(filepath.Join(dir, tool))
		if err != nil || !strings.Contains(target, "legacy") {
			t.Errorf("%s -> %q (%v)", tool, target, err)
		}
	}
}

// The latency client's request against the backends' handler, on
// loopback: the answer names the address the request reached.
func TestOneRequest(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(rrHandler)}
	go srv.Serve(ln)
	defer srv.Close()
	target := ln.Addr().(*net.TCPAddr).AddrPort()
	c, f, backend, err := oneRequest(target, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if backend != "127.0.0.1" || c <= 0 || f < c {
		t.Errorf("backend %q connect %s first byte %s", backend, c, f)
	}
	ln.Close()
	if _, _, _, err := oneRequest(target, 200*time.Millisecond); err == nil {
		t.Error("no error from a closed port")
	}
}
