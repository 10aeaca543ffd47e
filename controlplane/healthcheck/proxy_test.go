package healthcheck

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/straitlb/strait/controlplane/metrics"
	"github.com/straitlb/strait/controlplane/source"
)

var t0 = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

func get(t *testing.T, h http.Handler, path string) (int, string, http.Header) {
	t.Helper()
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, path, nil))
	return rr.Code, rr.Body.String(), rr.Header()
}

func TestProxyHealthAnswers(t *testing.T) {
	clk := testingclock.NewFakeClock(t0)
	eligible := true
	m := metrics.Discard()
	h, err := NewProxyHealth(ProxyHealthConfig{Timeout: 60 * time.Second, NodeEligible: func() bool { return eligible }}, clk, m)
	if err != nil {
		t.Fatal(err)
	}
	srv := h.Handler()

	// Before the first sync: healthy, no per-family status.
	code, body, hdr := get(t, srv, "/healthz")
	if code != 200 || body != `{"lastUpdated":"2026-05-06T07:08:09Z","currentTime":"2026-05-06T07:08:09Z","nodeEligible":true,"healthy":true}` {
		t.Errorf("initial /healthz = %d %s", code, body)
	}
	if hdr.Get("Content-Type") != "application/json" || hdr.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers = %v", hdr)
	}

	h.Updated() // at t0
	clk.Step(10 * time.Second)
	h.QueuedUpdate() // at t0+10s
	clk.Step(30 * time.Second)
	h.QueuedUpdate() // does not move the oldest pending update

	// Pending for 30s < 60s: healthy; lastUpdated reads "now" on 200.
	code, body, _ = get(t, srv, "/healthz")
	if code != 200 || body != `{"lastUpdated":"2026-05-06T07:08:49Z","currentTime":"2026-05-06T07:08:49Z","nodeEligible":true,"healthy":true,"status":{"IPv4":{"lastUpdated":"2026-05-06T07:08:09Z","healthy":true}}}` {
		t.Errorf("pending /healthz = %d %s", code, body)
	}

	// Pending for 60s: overdue.
	clk.Step(30 * time.Second)
	code, body, _ = get(t, srv, "/healthz")
	if code != 503 || body != `{"lastUpdated":"2026-05-06T07:08:09Z","currentTime":"2026-05-06T07:09:19Z","nodeEligible":true,"healthy":false,"status":{"IPv4":{"lastUpdated":"2026-05-06T07:08:09Z","healthy":false}}}` {
		t.Errorf("overdue /healthz = %d %s", code, body)
	}
	code, body, _ = get(t, srv, "/livez")
	if code != 503 || body != `{"lastUpdated":"2026-05-06T07:08:09Z","currentTime":"2026-05-06T07:09:19Z","healthy":false,"status":{"IPv4":{"lastUpdated":"2026-05-06T07:08:09Z","healthy":false}}}` {
		t.Errorf("overdue /livez = %d %s", code, body)
	}

	h.Updated()
	if code, _, _ := get(t, srv, "/healthz"); code != 200 {
		t.Errorf("/healthz after a sync = %d", code)
	}

	// A node that is not eligible fails /healthz but not /livez.
	eligible = false
	code, body, _ = get(t, srv, "/healthz")
	var st Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if code != 503 || st.NodeEligible == nil || *st.NodeEligible || !st.Healthy {
		t.Errorf("ineligible /healthz = %d %s", code, body)
	}
	if code, _, _ := get(t, srv, "/livez"); code != 200 {
		t.Errorf("ineligible /livez = %d", code)
	}

	if got := testutil.ToFloat64(m.HealthzTotal.WithLabelValues("200")); got != 3 {
		t.Errorf("healthz 200 count = %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.HealthzTotal.WithLabelValues("503")); got != 2 {
		t.Errorf("healthz 503 count = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.LivezTotal.WithLabelValues("503")); got != 1 {
		t.Errorf("livez 503 count = %v, want 1", got)
	}
}

func TestProxyHealthConfig(t *testing.T) {
	if _, err := NewProxyHealth(ProxyHealthConfig{}, nil, nil); err == nil {
		t.Error("zero timeout accepted")
	}
}

func TestNodeEligible(t *testing.T) {
	now := metav1.Now()
	for name, tc := range map[string]struct {
		node *v1.Node
		want bool
	}{
		"nil":      {nil, false},
		"ok":       {&v1.Node{Spec: v1.NodeSpec{Taints: []v1.Taint{{Key: "other"}}}}, true},
		"deleting": {&v1.Node{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}}, false},
		"tainted":  {&v1.Node{Spec: v1.NodeSpec{Taints: []v1.Taint{{Key: ToBeDeletedTaint, Effect: v1.TaintEffectNoSchedule}}}}, false},
	} {
		if got := NodeEligible(tc.node); got != tc.want {
			t.Errorf("%s: NodeEligible = %v, want %v", name, got, tc.want)
		}
	}

	src := source.NewMemory(nil)
	if !SourceNodeEligible(src, "node-a", true)() {
		t.Error("ineligible before the source synced")
	}
	if err := src.Set(nil); err != nil {
		t.Fatal(err)
	}
	if SourceNodeEligible(src, "node-a", true)() || !SourceNodeEligible(src, "node-a", false)() {
		t.Error("a missing node: want ineligible when required, eligible when optional")
	}
	if err := src.Set([]runtime.Object{&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", DeletionTimestamp: &now}}}); err != nil {
		t.Fatal(err)
	}
	if SourceNodeEligible(src, "node-a", false)() {
		t.Error("a node being deleted is eligible")
	}
}
