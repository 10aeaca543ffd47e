package healthcheck

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/clock"

	"github.com/straitlb/strait/controlplane/internal/serve"
	"github.com/straitlb/strait/controlplane/metrics"
	"github.com/straitlb/strait/controlplane/source"
)

// DefaultHealthzBindAddress is where ProxyHealth listens by default.
// kube-proxy's default is 0.0.0.0:10256.
const DefaultHealthzBindAddress = "127.0.0.1:10256"

// ToBeDeletedTaint is the taint the Cluster Autoscaler puts on a node
// before deleting it; such a node is not eligible for traffic.
const ToBeDeletedTaint = "ToBeDeletedByClusterAutoscaler"

// ProxierHealth is the health of the proxier of one IP family.
type ProxierHealth struct {
	LastUpdated time.Time `json:"lastUpdated"`
	Healthy     bool      `json:"healthy"`
}

// Status is the body of /healthz and /livez, field for field kube-proxy's
// ProxyHealth.
type Status struct {
	// LastUpdated is when the proxier last synced (the current time in a
	// 200 answer).
	LastUpdated  time.Time `json:"lastUpdated"`
	CurrentTime  time.Time `json:"currentTime"`
	NodeEligible *bool     `json:"nodeEligible,omitempty"`
	Healthy      bool      `json:"healthy"`
	// Status is per IP family; empty (omitted) before the first Updated.
	Status map[v1.IPFamily]ProxierHealth `json:"status,omitempty"`
}

// ProxyHealthConfig configures ProxyHealth.
type ProxyHealthConfig struct {
	// Timeout is how long a queued update may stay unsynced before the
	// proxier is unhealthy (kube-proxy: twice the sync period). Required.
	Timeout time.Duration
	// Family keys the per-family status (IPv4 when empty).
	Family v1.IPFamily
	// NodeEligible reports whether the node should get traffic; nil means
	// always. See SourceNodeEligible.
	NodeEligible func() bool
}

// ProxyHealth tracks whether the proxier keeps up with its updates and
// serves kube-proxy's /healthz and /livez. It is safe for concurrent use.
type ProxyHealth struct {
	cfg     ProxyHealthConfig
	clock   clock.PassiveClock
	metrics *metrics.Metrics

	mu            sync.RWMutex
	lastUpdated   time.Time // zero before the first Updated
	oldestPending time.Time // zero when nothing is pending
}

// NewProxyHealth returns a ProxyHealth. m may be nil.
func NewProxyHealth(cfg ProxyHealthConfig, clk clock.PassiveClock, m *metrics.Metrics) (*ProxyHealth, error) {
	if cfg.Timeout <= 0 {
		return nil, fmt.Errorf("create proxy health: timeout %s is not positive", cfg.Timeout)
	}
	if cfg.Family == "" {
		cfg.Family = v1.IPv4Protocol
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	if m == nil {
		m = metrics.Discard()
	}
	return &ProxyHealth{cfg: cfg, clock: clk, metrics: m}, nil
}

// Updated records that the proxier has programmed everything it knows of.
func (h *ProxyHealth) Updated() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.oldestPending = time.Time{}
	h.lastUpdated = h.clock.Now()
}

// QueuedUpdate records that the proxier has something to program. If
// Updated does not follow within the timeout, the proxier is unhealthy.
func (h *ProxyHealth) QueuedUpdate() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.oldestPending.IsZero() {
		h.oldestPending = h.clock.Now()
	}
}

// Health returns the proxier's health, as kube-proxy's Health: healthy
// before the first Updated, and while no queued update is older than the
// timeout.
func (h *ProxyHealth) Health() Status {
	h.mu.RLock()
	defer h.mu.RUnlock()
	now := h.clock.Now()
	st := Status{Healthy: true, CurrentTime: now, LastUpdated: h.lastUpdated, Status: map[v1.IPFamily]ProxierHealth{}}
	if h.lastUpdated.IsZero() {
		return st
	}
	healthy := h.oldestPending.IsZero() || now.Sub(h.oldestPending) < h.cfg.Timeout
	st.Healthy = healthy
	st.Status[h.cfg.Family] = ProxierHealth{LastUpdated: h.lastUpdated, Healthy: healthy}
	return st
}

// NodeEligible reports whether the node should get traffic.
func (h *ProxyHealth) NodeEligible() bool {
	if h.cfg.NodeEligible == nil {
		return true
	}
	return h.cfg.NodeEligible()
}

// Handler serves /healthz and /livez.
func (h *ProxyHealth) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		st := h.Health()
		eligible := h.NodeEligible()
		st.NodeEligible = &eligible
		h.write(w, st, st.Healthy && eligible, h.metrics.HealthzTotal)
	})
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) {
		st := h.Health()
		h.write(w, st, st.Healthy, h.metrics.LivezTotal)
	})
	return mux
}

func (h *ProxyHealth) write(w http.ResponseWriter, st Status, healthy bool, counter *prometheus.CounterVec) {
	code := http.StatusServiceUnavailable
	if healthy {
		code = http.StatusOK
		// As kube-proxy: a healthy answer's lastUpdated is "now", for
		// clients that compare it with the current time.
		st.LastUpdated = h.clock.Now()
	}
	counter.WithLabelValues(strconv.Itoa(code)).Inc()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	out, _ := json.Marshal(st)
	_, _ = w.Write(out)
}

// Serve listens on addr (DefaultHealthzBindAddress when empty) and serves
// Handler until ctx is done.
func (h *ProxyHealth) Serve(ctx context.Context, addr string, log *zap.Logger) error {
	if addr == "" {
		addr = DefaultHealthzBindAddress
	}
	if log == nil {
		log = zap.NewNop()
	}
	if err := serve.ListenAndServe(ctx, addr, h.Handler(), log.With(zap.String("server", "healthz"))); err != nil {
		return fmt.Errorf("serve healthz: %w", err)
	}
	return nil
}

// NodeEligible reports whether node should get traffic, as kube-proxy
// decides it: it exists, is not being deleted, and is not tainted
// ToBeDeletedByClusterAutoscaler.
func NodeEligible(node *v1.Node) bool {
	if node == nil || !node.DeletionTimestamp.IsZero() {
		return false
	}
	for _, t := range node.Spec.Taints {
		if t.Key == ToBeDeletedTaint {
			return false
		}
	}
	return true
}

// SourceNodeEligible returns a NodeEligible function that reads the node
// from src. A node that src does not hold is not eligible when requireNode
// is set (Kubernetes mode, as kube-proxy); otherwise (standalone mode
// without a Node manifest) it is. Before src has synced the node is taken
// as eligible, so that restarting the agent does not fail /healthz while
// the informers list.
func SourceNodeEligible(src source.Source, nodeName string, requireNode bool) func() bool {
	return func() bool {
		if !src.HasSynced() {
			return true
		}
		node, err := src.Listers().Nodes.Get(nodeName)
		if apierrors.IsNotFound(err) || node == nil {
			return !requireNode
		}
		if err != nil {
			return false
		}
		return NodeEligible(node)
	}
}
