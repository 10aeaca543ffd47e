package kubetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Defaults of Options. Our test address plan uses only documentation and
// benchmark ranges.
const (
	// DefaultServiceClusterIPRange is the Service ClusterIP range
	// (RFC 2544 benchmark space).
	DefaultServiceClusterIPRange = "198.19.0.0/16"
	// DefaultAdvertiseAddress is the address kube-apiserver advertises
	// (RFC 5737 TEST-NET-1). It is never contacted: the endpoint
	// reconciler is off, so it is not even published in the default
	// "kubernetes" Service's endpoints. kube-apiserver rejects a loopback
	// advertise address, hence a non-loopback one.
	DefaultAdvertiseAddress = "192.0.2.250"
	// AdminUser is the user name of the admin token, a member of
	// system:masters.
	AdminUser = "kubetest-admin"
	// ServiceAccountIssuer is the issuer of service-account tokens.
	ServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"
)

// Options configures StartCluster. The zero value is ready to use.
type Options struct {
	// BinDir holds kube-apiserver and etcd. Empty: FindBinaries, which
	// may build them.
	BinDir string
	// TempDir is the parent of the control plane's temporary directory.
	// Empty: os.TempDir().
	TempDir string
	// ServiceClusterIPRange, empty: DefaultServiceClusterIPRange.
	ServiceClusterIPRange string
	// AdvertiseAddress, empty: DefaultAdvertiseAddress.
	AdvertiseAddress string
	// APIServerArgs are extra kube-apiserver flags ("--name=value"),
	// appended after the defaults. A scalar flag given twice takes the
	// later value; a list flag (such as --etcd-servers) gets both.
	APIServerArgs []string
	// StartTimeout bounds the wait for etcd and kube-apiserver to become
	// ready, not counting a build of the binaries. Zero: 60 s.
	StartTimeout time.Duration
	// Logf, if not nil, receives progress messages.
	Logf func(format string, args ...any)
}

// ControlPlane is a running etcd and kube-apiserver. Stop it when done.
type ControlPlane struct {
	// Config is an admin (system:masters) client configuration with
	// client-side rate limiting disabled. Copy it before changing it
	// (rest.CopyConfig).
	Config *rest.Config
	// Client is a clientset built from Config.
	Client kubernetes.Interface
	// Kubeconfig is the path of a kubeconfig file for Config.
	Kubeconfig string
	// Host is the apiserver URL, https://127.0.0.1:<port>.
	Host string
	// EtcdURL is etcd's client URL, http://127.0.0.1:<port>.
	EtcdURL string
	// Dir is the temporary directory with logs (etcd.log,
	// kube-apiserver.log), certificates and etcd data. Stop removes it
	// unless STRAIT_KUBETEST_KEEP is set.
	Dir string
	// BinDir holds the binaries used, including kube-proxy.
	BinDir string
	// ServiceClusterIPRange and AdvertiseAddress are the values in use.
	ServiceClusterIPRange string
	AdvertiseAddress      string
	// StartupTime is how long etcd and kube-apiserver took to become
	// ready (not counting a build of the binaries); EtcdStartupTime is
	// the part until etcd was healthy.
	StartupTime, EtcdStartupTime time.Duration

	etcd, apiserver *process
	stopOnce        sync.Once
	stopErr         error
}

// StartCluster starts etcd and kube-apiserver and waits until /readyz
// succeeds and the default/kubernetes Service exists. ctx bounds the
// startup (including a build of the binaries, if needed) but not the
// processes' lifetime: call Stop. An error caused by missing binaries wraps
// ErrNoBinaries.
func StartCluster(ctx context.Context, opts Options) (*ControlPlane, error) {
	if opts.ServiceClusterIPRange == "" {
		opts.ServiceClusterIPRange = DefaultServiceClusterIPRange
	}
	if opts.AdvertiseAddress == "" {
		opts.AdvertiseAddress = DefaultAdvertiseAddress
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 60 * time.Second
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	binDir := opts.BinDir
	if binDir == "" {
		var err error
		if binDir, err = FindBinaries(ctx, logf); err != nil {
			return nil, err
		}
	} else if !hasBinaries(binDir, false) {
		return nil, fmt.Errorf("%w: %s lacks %s, %s or %s", ErrNoBinaries, binDir, APIServerBinary, KubeProxyBinary, EtcdBinary)
	}

	dir, err := os.MkdirTemp(opts.TempDir, "kubetest-")
	if err != nil {
		return nil, fmt.Errorf("kubetest: %w", err)
	}
	cp := &ControlPlane{
		Dir:                   dir,
		BinDir:                binDir,
		ServiceClusterIPRange: opts.ServiceClusterIPRange,
		AdvertiseAddress:      opts.AdvertiseAddress,
	}
	if err := cp.start(ctx, opts, logf); err != nil {
		cp.Stop()
		return nil, err
	}
	return cp, nil
}

func (cp *ControlPlane) start(ctx context.Context, opts Options, logf func(string, ...any)) error {
	advertise := net.ParseIP(opts.AdvertiseAddress)
	if advertise == nil {
		return fmt.Errorf("kubetest: bad advertise address %q", opts.AdvertiseAddress)
	}
	firstServiceIP, err := firstIP(opts.ServiceClusterIPRange)
	if err != nil {
		return err
	}
	p, err := newPKI(
		[]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, advertise, firstServiceIP},
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
	)
	if err != nil {
		return fmt.Errorf("kubetest: generate keys: %w", err)
	}
	certFile, keyFile, saKeyFile, saPubFile, err := p.write(cp.Dir)
	if err != nil {
		return err
	}
	token, err := randomHex(32)
	if err != nil {
		return err
	}
	tokenFile := filepath.Join(cp.Dir, "tokens.csv")
	// token,user,uid,"group1,group2"
	if err := os.WriteFile(tokenFile, []byte(fmt.Sprintf("%s,%s,%s,\"system:masters\"\n", token, AdminUser, AdminUser)), 0o600); err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}

	startCtx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	begin := time.Now()
	// Free ports can be taken by someone else before etcd or kube-apiserver
	// binds them: retry with new ones.
	for attempt := 1; ; attempt++ {
		err = cp.startOnce(startCtx, attempt, opts, p.servingCert, token, []string{
			"--tls-cert-file=" + certFile,
			"--tls-private-key-file=" + keyFile,
			"--service-account-key-file=" + saPubFile,
			"--service-account-signing-key-file=" + saKeyFile,
			"--token-auth-file=" + tokenFile,
		})
		if err == nil || !errors.Is(err, errAddrInUse) || attempt == 3 {
			break
		}
		logf("kubetest: port taken, retrying: %v", err)
		cp.apiserver.kill()
		cp.etcd.kill()
		cp.apiserver, cp.etcd = nil, nil
	}
	if err != nil {
		return err
	}
	cp.StartupTime = time.Since(begin)
	cp.Kubeconfig = filepath.Join(cp.Dir, "admin.kubeconfig")
	if err := WriteKubeconfig(cp.Kubeconfig, cp.Config); err != nil {
		return err
	}
	logf("kubetest: kube-apiserver %s ready at %s in %v (etcd %v; dir %s)", KubernetesVersion, cp.Host,
		cp.StartupTime.Round(time.Millisecond), cp.EtcdStartupTime.Round(time.Millisecond), cp.Dir)
	return nil
}

func (cp *ControlPlane) startOnce(ctx context.Context, attempt int, opts Options, caPEM []byte, token string, tlsArgs []string) error {
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	etcdPort, peerPort, apiPort := ports[0], ports[1], ports[2]
	cp.EtcdURL = "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	cp.Host = "https://127.0.0.1:" + strconv.Itoa(apiPort)

	cp.etcd, err = startProcess("etcd", filepath.Join(cp.Dir, "etcd.log"), filepath.Join(cp.BinDir, EtcdBinary),
		"--name=kubetest",
		"--data-dir="+filepath.Join(cp.Dir, fmt.Sprintf("etcd-data-%d", attempt)),
		"--listen-client-urls="+cp.EtcdURL,
		"--advertise-client-urls="+cp.EtcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kubetest="+peerURL,
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	if err != nil {
		return err
	}
	etcdStart := time.Now()
	hc := &http.Client{Timeout: 2 * time.Second}
	if err := waitFor(ctx, []*process{cp.etcd}, func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cp.EtcdURL+"/health", nil)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("etcd /health: %s", resp.Status)
		}
		return nil
	}); err != nil {
		return cp.startError("etcd did not become healthy", err)
	}
	cp.EtcdStartupTime = time.Since(etcdStart)

	args := []string{
		"--etcd-servers=" + cp.EtcdURL,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(apiPort),
		"--advertise-address=" + opts.AdvertiseAddress,
		// The advertise address is not ours: never publish it as the
		// endpoint of the "kubernetes" Service.
		"--endpoint-reconciler-type=none",
		"--cert-dir=" + filepath.Join(cp.Dir, "certs"),
		"--service-account-issuer=" + ServiceAccountIssuer,
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=" + opts.ServiceClusterIPRange,
		"--allow-privileged=true",
	}
	args = append(args, tlsArgs...)
	args = append(args, opts.APIServerArgs...)
	cp.apiserver, err = startProcess("kube-apiserver", filepath.Join(cp.Dir, "kube-apiserver.log"), filepath.Join(cp.BinDir, APIServerBinary), args...)
	if err != nil {
		return err
	}

	cp.Config = &rest.Config{
		Host:            cp.Host,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: caPEM},
		QPS:             -1, // no client-side throttling
		UserAgent:       "strait-kubetest",
	}
	cs, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}
	cp.Client = cs
	if err := waitFor(ctx, []*process{cp.etcd, cp.apiserver}, func(ctx context.Context) error {
		var code int
		res := cs.Discovery().RESTClient().Get().AbsPath("/readyz").Param("verbose", "1").Timeout(2 * time.Second).Do(ctx).StatusCode(&code)
		body, err := res.Raw()
		switch {
		case code == http.StatusOK:
			// The "default" Namespace and the "kubernetes" Service are
			// created asynchronously, after /readyz passes; tests expect
			// them.
			_, err := cs.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
			return err
		case code != 0:
			return fmt.Errorf("/readyz: HTTP %d\n%s", code, notOK(body))
		default:
			return err
		}
	}); err != nil {
		return cp.startError("kube-apiserver did not become ready", err)
	}
	return nil
}

// startError builds a startup error with the tails of the process logs.
// It wraps errAddrInUse if a process failed to bind a port.
func (cp *ControlPlane) startError(what string, err error) error {
	logs := cp.etcd.tail() + "\n" + cp.apiserver.tail()
	e := fmt.Errorf("kubetest: %s: %w\n%s", what, err, logs)
	if strings.Contains(logs, "address already in use") {
		e = fmt.Errorf("%w: %w", errAddrInUse, e)
	}
	return e
}

// waitFor calls check every 100 ms until it succeeds, ctx ends or one of
// procs exits.
func waitFor(ctx context.Context, procs []*process, check func(context.Context) error) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		for _, p := range procs {
			if p.exited() {
				return fmt.Errorf("%s exited: %v", p.name, p.err)
			}
		}
		if last = check(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last check: %v)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// notOK keeps only the failing lines of a verbose /readyz body.
func notOK(body []byte) string {
	var b strings.Builder
	for l := range strings.Lines(string(body)) {
		if !strings.HasPrefix(l, "[+]") {
			b.WriteString(l)
		}
	}
	return b.String()
}

// Stop kills kube-apiserver and etcd (and any children) and removes Dir,
// unless STRAIT_KUBETEST_KEEP is set. It is safe to call more than once.
func (cp *ControlPlane) Stop() error {
	cp.stopOnce.Do(func() {
		cp.apiserver.kill()
		cp.etcd.kill()
		if os.Getenv("STRAIT_KUBETEST_KEEP") == "" {
			cp.stopErr = os.RemoveAll(cp.Dir)
		}
	})
	return cp.stopErr
}

// Logs returns the tails of the etcd and kube-apiserver logs.
func (cp *ControlPlane) Logs() string {
	return cp.etcd.tail() + "\n" + cp.apiserver.tail()
}

func firstIP(cidr string) (net.IP, error) {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil, fmt.Errorf("kubetest: service range: %w", err)
	}
	ip := make(net.IP, len(n.IP))
	copy(ip, n.IP)
	for i := len(ip) - 1; i >= 0; i-- {
		ip[i]++
		if ip[i] != 0 {
			break
		}
	}
	return ip, nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("kubetest: %w", err)
	}
	return hex.EncodeToString(b), nil
}
