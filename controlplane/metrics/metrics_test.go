package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
)

func TestMetricsHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.SyncDuration.Observe(0.003)
	m.SyncErrors.Inc()
	m.PendingChanges.Set(4)
	m.NetworkProgrammingLatency.Observe(1.5)
	m.ServicesProgrammed.Set(10)
	m.BackendsProgrammed.Set(30)
	m.HealthzTotal.WithLabelValues("200").Inc()

	srv := httptest.NewServer(Handler(reg, zaptest.NewLogger(t)))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`strait_sync_duration_seconds_bucket{le="0.004"} 1`,
		"strait_sync_errors_total 1",
		"strait_sync_pending_changes 4",
		`strait_network_programming_duration_seconds_bucket{le="2"} 1`,
		"strait_services_programmed 10",
		"strait_backends_programmed 30",
		`strait_proxy_healthz_total{code="200"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// Not the global registry: nothing of the Go runtime collectors.
	if strings.Contains(string(body), "go_goroutines") {
		t.Error("/metrics serves the global registry")
	}

	resp, err = http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Errorf("/healthz = %d %q", resp.StatusCode, body)
	}

	if _, err := New(reg); err == nil {
		t.Error("registering twice on one registry succeeded")
	}
}

func TestNetworkProgrammingBuckets(t *testing.T) {
	b := networkProgrammingBuckets()
	// kube-proxy's: 2 + 59 + 12 + 7 buckets, none repeated.
	if len(b) != 80 || b[0] != 0.25 || b[1] != 0.5 || b[2] != 1 || b[len(b)-1] != 300 {
		t.Errorf("buckets = %v", b)
	}
}
