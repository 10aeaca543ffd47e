package source

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
)

func TestMemory(t *testing.T) {
	m := NewMemory(nil)
	if m.HasSynced() || len(serviceNames(t, m.Listers())) != 0 {
		t.Fatal("new Memory is synced or not empty")
	}
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = m.Run(ctx, rec.handle) }()

	web := service("default", "web", "198.19.0.10")
	if err := m.Set([]runtime.Object{web, slice("default", "web-1", "web", "198.18.0.1")}); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "synced", func(c Change) bool { return c.Kind == KindSynced })
	if !m.HasSynced() {
		t.Fatal("not synced after Set")
	}
	rec.reset()

	// Only what differs is reported.
	web2 := web.DeepCopy()
	if err := m.Set([]runtime.Object{web2, node("node-a", nil)}); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, c := range rec.all() {
		got[c.String()] = true
	}
	want := map[string]bool{"Node node-a": true, "EndpointSlice default/web-1 (deleted)": true}
	if len(got) != len(want) || !got["Node node-a"] || !got["EndpointSlice default/web-1 (deleted)"] {
		t.Errorf("changes = %v, want %v", got, want)
	}

	for name, objs := range map[string][]runtime.Object{
		"duplicate":   {web, web2},
		"unsupported": {&runtimeUnknown{}},
		"no name":     {service("default", "", "")},
	} {
		if err := m.Set(objs); err == nil {
			t.Errorf("Set(%s) succeeded", name)
		}
	}
	if got := serviceNames(t, m.Listers()); len(got) != 1 {
		t.Errorf("a failed Set changed the objects: %v", got)
	}
}

type runtimeUnknown struct{ runtime.Unknown }
