package metrics

import (
	"context"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/straitlb/strait/controlplane/internal/serve"
)

// DefaultBindAddress is where kube-proxy serves its metrics.
const DefaultBindAddress = "127.0.0.1:10249"

// Handler serves the metrics gathered from g on /metrics, and "ok" on
// /healthz.
func Handler(g prometheus.Gatherer, log *zap.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog: zap.NewStdLog(log),
	}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write([]byte("ok"))
	})
	return mux
}

// Server serves Handler on one address.
type Server struct {
	addr    string
	handler http.Handler
	log     *zap.Logger
}

// NewServer returns a server for addr (DefaultBindAddress when empty).
func NewServer(addr string, g prometheus.Gatherer, log *zap.Logger) *Server {
	if addr == "" {
		addr = DefaultBindAddress
	}
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("server", "metrics"), zap.String("address", addr))
	return &Server{addr: addr, handler: Handler(g, log), log: log}
}

// Run listens and serves until ctx is done.
func (s *Server) Run(ctx context.Context) error {
	if err := serve.ListenAndServe(ctx, s.addr, s.handler, s.log); err != nil {
		return fmt.Errorf("serve metrics: %w", err)
	}
	return nil
}
