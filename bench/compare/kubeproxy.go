package compare

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/straitlb/strait/internal/netlab"
)

// kube-proxy's endpoints inside the node namespace.
const (
	kpMetricsAddr = "127.0.0.1:10249"
	kpHealthzAddr = "127.0.0.1:10256"
)

// KubeProxyArgs are the flags kube-proxy runs with in mode ("iptables" or
// "nftables").
func KubeProxyArgs(kubeconfig, mode string) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--hostname-override=" + NodeName,
		"--proxy-mode=" + mode,
		"--metrics-bind-address=" + kpMetricsAddr,
		"--healthz-bind-address=" + kpHealthzAddr,
		// Leave the global conntrack sysctls alone.
		"--conntrack-max-per-core=0",
		"--conntrack-tcp-timeout-established=0",
		"--conntrack-tcp-timeout-close-wait=0",
		"--v=2",
	}
}

// nsHTTPClient dials from inside ns.
func nsHTTPClient(ns *netlab.NS) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := ns.Do(func() (err error) {
				var d net.Dialer
				c, err = d.DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
}

// Metrics is a parsed Prometheus text exposition: sample name with labels
// (as written) -> value.
type Metrics map[string]float64

// ParseMetrics parses the text format, skipping comments.
func ParseMetrics(r io.Reader) (Metrics, error) {
	m := make(Metrics)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		name, val := line[:i], line[i+1:]
		// An optional timestamp follows the value.
		if j := strings.LastIndexByte(name, ' '); j >= 0 && !strings.Contains(name[j:], "}") {
			name, val = name[:j], line[j+1:i]
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		m[name] = v
	}
	return m, sc.Err()
}

// IPv4 returns the sample of name without labels, or the one labelled
// ip_family="IPv4" (kube-proxy labels its sync metrics by family).
func (m Metrics) IPv4(name string) (float64, bool) {
	if v, ok := m[name]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.HasPrefix(k, name+"{") && strings.Contains(k, `ip_family="IPv4"`) {
			return v, true
		}
	}
	return 0, false
}

func scrape(ctx context.Context, c *http.Client) (Metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+kpMetricsAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: %s", resp.Status)
	}
	return ParseMetrics(resp.Body)
}

// kubeProxy is a running kube-proxy.
type kubeProxy struct {
	proc    *netlab.Process
	logPath string
}

// startKubeProxy spawns kube-proxy in the node namespace and waits for its
// first complete sync. It returns the end of that sync (the metric's wall
// clock) and its duration.
// env, when not nil, is the process's environment.
func startKubeProxy(ctx context.Context, ns *netlab.NS, bin, kubeconfig, mode string, env []string, logPath string, timeout time.Duration) (*kubeProxy, time.Time, time.Duration, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, time.Time{}, 0, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, KubeProxyArgs(kubeconfig, mode)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = env
	p, err := ns.Spawn(cmd)
	if err != nil {
		return nil, time.Time{}, 0, err
	}
	kp := &kubeProxy{proc: p, logPath: logPath}
	hc := nsHTTPClient(ns)
	start := time.Now()
	deadline := start.Add(timeout)
	var lastErr error
	for {
		m, err := scrape(ctx, hc)
		lastErr = err
		if err == nil {
			n, _ := m.IPv4("kubeproxy_sync_proxy_rules_duration_seconds_count")
			ts, ok := m.IPv4("kubeproxy_sync_proxy_rules_last_timestamp_seconds")
			if n >= 1 && ok && ts > 0 {
				sum, _ := m.IPv4("kubeproxy_sync_proxy_rules_duration_seconds_sum")
				dur := time.Duration(sum / n * float64(time.Second))
				return kp, time.Unix(0, int64(ts*1e9)), dur, nil
			}
			lastErr = errors.New("no completed sync in the metrics yet")
		}
		select {
		case <-p.Done():
			return nil, time.Time{}, 0, fmt.Errorf("kube-proxy (%s) exited: %v\n%s", mode, p.Wait(), tailFile(logPath))
		case <-ctx.Done():
			kp.stop()
			return nil, time.Time{}, 0, ctx.Err()
		case <-time.After(PollInterval(time.Since(start))):
		}
		if time.Now().After(deadline) {
			kp.stop()
			return nil, time.Time{}, 0, fmt.Errorf("kube-proxy (%s): %w (%s; %v); its log ends:\n%s", mode, errSyncTimeout, timeout, lastErr, tailFile(logPath))
		}
	}
}

func (k *kubeProxy) stop() { _ = k.proc.Stop() }

// PollInterval is the wait between two scrapes of kube-proxy's metrics
// after elapsed: 20 ms at first, then 1% of the time waited so far, at
// most a second, so a sync of many minutes is not slowed by the polling.
// The cold sync itself comes from the metric's timestamp, not from the
// time of the scrape.
func PollInterval(elapsed time.Duration) time.Duration {
	return min(max(elapsed/100, 20*time.Millisecond), time.Second)
}

// iptablesTools are the commands kube-proxy's iptables mode runs.
var iptablesTools = []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"}

// LegacyIPTablesEnv returns an environment whose PATH starts with dir,
// where it creates iptables, iptables-save, iptables-restore (and the
// ip6tables ones) as links to the xtables-legacy tools: kube-proxy then
// programs the legacy (x_tables) backend instead of the system's default.
func LegacyIPTablesEnv(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for _, t := range iptablesTools {
		legacy, err := exec.LookPath(strings.Replace(t, "tables", "tables-legacy", 1))
		if err != nil {
			return nil, fmt.Errorf("iptables legacy backend: %w", err)
		}
		// xtables-legacy-multi dispatches on the name it is called by.
		if err := os.Symlink(legacy, filepath.Join(dir, t)); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, err
		}
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	return append(env, "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH")), nil
}

func tailFile(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
