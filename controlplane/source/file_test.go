package source

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
	"k8s.io/apimachinery/pkg/labels"
	testingclock "k8s.io/utils/clock/testing"
)

const webYAML = `# the web service and its endpoints
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  clusterIP: 198.19.0.10
  ports:
  - name: http
    port: 80
    protocol: TCP
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: default
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
endpoints:
- addresses: ["198.18.0.1"]
  conditions: {ready: true}
  nodeName: node-a
ports:
- name: http
  port: 8080
  protocol: TCP
---
# a kind that is not ours is ignored
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  whatever: 1
`

const listYAML = `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: dns, namespace: kube-system}
  spec:
    clusterIP: 198.19.0.53
    ports: [{name: dns, port: 53, protocol: UDP}]
- apiVersion: v1
  kind: Node
  metadata:
    name: node-a
    labels: {topology.kubernetes.io/zone: z1}
  status:
    addresses: [{type: InternalIP, address: 192.0.2.11}]
`

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func newFileSource(t *testing.T, dir string) (*File, *testingclock.FakeClock) {
	t.Helper()
	clk := testingclock.NewFakeClock(time.Now())
	f, err := NewFile(FileConfig{Dir: dir}, clk, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return f, clk
}

func TestFileSourceValidDirectory(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "web.yaml", webYAML)
	writeFile(t, dir, "list.yml", listYAML)
	writeFile(t, dir, "README.md", "not a manifest: {")
	writeFile(t, dir, ".hidden.yaml", "not: [valid")
	core, logs := observer.New(zap.InfoLevel)
	f, err := NewFile(FileConfig{Dir: dir}, testingclock.NewFakeClock(time.Now()), zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	if f.HasSynced() {
		t.Fatal("synced before reading")
	}
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if !f.HasSynced() {
		t.Fatal("not synced after a good read")
	}
	l := f.Listers()
	if got := serviceNames(t, l); strings.Join(got, ",") != "default/web,kube-system/dns" {
		t.Errorf("services = %v", got)
	}
	eps, err := l.EndpointSlices.EndpointSlices("default").Get("web-1")
	if err != nil || len(eps.Endpoints) != 1 || *eps.Ports[0].Port != 8080 {
		t.Errorf("endpointslice = %v, %v", eps, err)
	}
	n, err := l.Nodes.Get("node-a")
	if err != nil || n.Status.Addresses[0].Address != "192.0.2.11" {
		t.Errorf("node = %v, %v", n, err)
	}
	ignored := logs.FilterMessage("ignoring object of unsupported kind").All()
	if len(ignored) != 1 || ignored[0].ContextMap()["kind"] != "Deployment" ||
		!strings.HasPrefix(ignored[0].ContextMap()["location"].(string), filepath.Join(dir, "web.yaml")+":") {
		t.Errorf("log lines for ignored kinds = %v", ignored)
	}
}

func TestFileSourceUnknownFieldKeepsLastGood(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "web.yaml", webYAML)
	f, _ := newFileSource(t, dir)
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}

	bad := strings.Replace(webYAML, "  clusterIP: 198.19.0.10\n", "  clusterIP: 198.19.0.10\n  clusterIPz: 198.19.0.11\n", 1)
	writeFile(t, dir, "web.yaml", bad)
	writeFile(t, dir, "extra.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: extra}\nspec: {clusterIP: 198.19.0.99}\n")
	err := f.Reload()
	if err == nil {
		t.Fatal("an unknown field was accepted")
	}
	msg := err.Error()
	for _, want := range []string{filepath.Join(dir, "web.yaml") + ":2", "Service web", `unknown field "spec.clusterIPz"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if f.LastError() == nil {
		t.Error("LastError is nil after a bad read")
	}
	// The last good set stays: the good file next to the bad one is not
	// taken either, so the set never mixes two versions.
	if got := serviceNames(t, f.Listers()); strings.Join(got, ",") != "default/web" {
		t.Errorf("services after a bad read = %v, want the last good set", got)
	}

	writeFile(t, dir, "web.yaml", webYAML)
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := serviceNames(t, f.Listers()); strings.Join(got, ",") != "default/extra,default/web" {
		t.Errorf("services after the fix = %v", got)
	}
}

func TestFileSourceErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		content string
		want    []string
	}{
		"type error": {
			"apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec:\n  ports:\n  - port: eighty\n",
			[]string{"bad.yaml:1", "spec.ports.port"},
		},
		"unknown field in second document": {
			"apiVersion: v1\nkind: Node\nmetadata: {name: n}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s}\naddressType: IPv4\nendpoints:\n- addresses: [198.18.0.1]\n  conditions: {ready: true, bogus: 1}\n",
			[]string{"bad.yaml:5", "EndpointSlice s", `unknown field "endpoints[0].conditions.bogus"`},
		},
		"duplicate field": {
			"apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  name: b\n",
			[]string{"bad.yaml:1", `"name" already set`},
		},
		"syntax": {
			"apiVersion: v1\nkind: Service\nmetadata: {name: [\n",
			[]string{"bad.yaml:1", "parse"},
		},
		"missing kind": {
			"apiVersion: v1\nmetadata: {name: a}\n",
			[]string{"bad.yaml:1", "field kind"},
		},
		"missing name": {
			"apiVersion: v1\nkind: Service\nspec: {clusterIP: 198.19.0.1}\n",
			[]string{"bad.yaml:1", "metadata.name"},
		},
		"unsupported apiVersion": {
			"apiVersion: discovery.k8s.io/v1beta1\nkind: EndpointSlice\nmetadata: {name: a}\naddressType: IPv4\n",
			[]string{"bad.yaml:1", "field apiVersion", "v1beta1"},
		},
		"bad list item": {
			"apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: a}\n  spec: {foo: 1}\n",
			[]string{"bad.yaml:1 items[0]", `unknown field "spec.foo"`},
		},
		"duplicate object": {
			"apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: default}\n",
			[]string{"bad.yaml", "Service default/a is also defined in"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "bad.yaml", tc.content)
			f, _ := newFileSource(t, dir)
			err := f.Reload()
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if f.HasSynced() {
				t.Error("synced after a bad first read")
			}
		})
	}
}

func TestFileSourceMissingDirectory(t *testing.T) {
	f, _ := newFileSource(t, filepath.Join(t.TempDir(), "nope"))
	if err := f.Reload(); err == nil || f.HasSynced() {
		t.Errorf("Reload of a missing directory = %v, synced %v", err, f.HasSynced())
	}
}

func TestFileSourcePicksUpChanges(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "web.yaml", webYAML)
	f, clk := newFileSource(t, dir)
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, rec.handle) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	rec.waitFor(t, "synced", func(c Change) bool { return c.Kind == KindSynced })
	rec.waitFor(t, "web added", func(c Change) bool { return c.Kind == KindService && c.Name == "web" })
	rec.reset()

	// The ticker is armed once Run is in its loop.
	for !clk.HasWaiters() {
		time.Sleep(time.Millisecond)
	}
	changedSlice := strings.Replace(webYAML, `["198.18.0.1"]`, `["198.18.0.1"]
  conditions: {ready: true}
  nodeName: node-a
- addresses: ["198.18.0.2"]`, 1)
	changedSlice = strings.Replace(changedSlice, "  namespace: default\n  labels:", "  namespace: default\n  annotations:\n    endpoints.kubernetes.io/last-change-trigger-time: \"2026-01-02T03:04:05Z\"\n  labels:", 1)
	writeFile(t, dir, "web.yaml", changedSlice)
	writeFile(t, dir, "dns.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: dns}\nspec: {clusterIP: 198.19.0.53}\n")
	clk.Step(time.Second)

	c := rec.waitFor(t, "slice updated", func(c Change) bool { return c.Kind == KindEndpointSlice })
	if c.Name != "web-1" || c.Service != "web" || c.TriggerTime.Unix() != time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Unix() {
		t.Errorf("slice change = %+v", c)
	}
	rec.waitFor(t, "dns added", func(c Change) bool { return c.Kind == KindService && c.Name == "dns" })
	for _, c := range rec.all() {
		if c.Kind == KindService && c.Name == "web" {
			t.Errorf("unchanged service reported: %+v", c)
		}
	}
	eps, err := f.Listers().EndpointSlices.List(labels.Everything())
	if err != nil || len(eps) != 1 || len(eps[0].Endpoints) != 2 {
		t.Errorf("slices after change = %v, %v", eps, err)
	}

	rec.reset()
	if err := os.Remove(filepath.Join(dir, "dns.yaml")); err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Second)
	c = rec.waitFor(t, "dns removed", func(c Change) bool { return c.Kind == KindService })
	if c.Name != "dns" || !c.Deleted {
		t.Errorf("change = %+v", c)
	}
}

func TestFileSourceDirectoryAppearsLater(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "manifests")
	f, clk := newFileSource(t, dir)
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, rec.handle) }()
	defer func() {
		cancel()
		<-done
	}()
	for !clk.HasWaiters() {
		time.Sleep(time.Millisecond)
	}
	if f.HasSynced() || f.LastError() == nil {
		t.Fatal("a missing directory: want unsynced with an error")
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Second)
	rec.waitFor(t, "synced", func(c Change) bool { return c.Kind == KindSynced })
	if f.LastError() != nil {
		t.Errorf("LastError = %v after the directory appeared", f.LastError())
	}
}
