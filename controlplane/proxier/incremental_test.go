package proxier

import (
	"errors"
	"reflect"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/straitlb/strait/controlplane/translate"
	"github.com/straitlb/strait/model"
)

// drain consumes Applies already made (a run triggered by changes that
// arrived before the source synced may follow the first sync).
func (e *env) drain() {
	for {
		select {
		case <-e.dp.applied:
			e.applies++
		default:
			return
		}
	}
}

// nextChange waits for the next Apply that is full or names a change,
// skipping no-op runs (one may follow the first sync: a run triggered by
// changes that arrived before the source synced).
func (e *env) nextChange() model.State {
	e.t.Helper()
	for {
		s := e.nextApply()
		if c := e.dp.changesOf(e.applies - 1); c == nil || len(c) > 0 {
			return s
		}
	}
}

// TestIncrementalSyncs checks that between full syncs the proxier hands
// the dataplane only the services that changed, with a state equal to a
// full translation; and that a Node change, a failure and the full sync
// period bring back full syncs.
func TestIncrementalSyncs(t *testing.T) {
	e := newEnv(t, Config{FullSyncPeriod: time.Hour, SyncPeriod: 30 * time.Second}, nil)
	web, api, dns := svc("web", "198.19.0.10"), svc("api", "198.19.0.11"), svc("dns", "198.19.0.12")
	objs := []*v1.Service{web, api, dns}
	set := func(webIPs ...string) {
		e.set(web, api, dns, slice("web-1", "web", "node-a", webIPs...),
			slice("api-1", "api", "node-b", "198.18.1.1"), slice("dns-1", "dns", "node-a", "198.18.2.1"))
	}
	set("198.18.0.1")
	e.start()
	e.nextApply()
	if e.dp.changesOf(e.applies-1) != nil {
		t.Fatalf("first sync was not full")
	}
	e.waitIdle()
	e.drain()

	set("198.18.0.1", "198.18.0.2")
	s := e.nextChange()
	webName := model.ServiceName{Namespace: "default", Name: "web", Port: "http"}
	if got := e.dp.changesOf(e.applies - 1); !reflect.DeepEqual(got, []model.ServiceName{webName}) {
		t.Errorf("changed = %v, want only %v", got, webName)
	}
	want, _ := translate.Translate(translate.Config{NodeName: "node-a", Family: v1.IPv4Protocol}, objs, nil)
	if len(s.Services) != len(want.Services) || len(s.Services[2].Backends) != 2 {
		t.Errorf("incremental state %v", s)
	}
	e.waitIdle()
	e.drain()

	// A periodic run with nothing changed hands no change over.
	e.clk.Step(30 * time.Second)
	e.nextApply()
	if got := e.dp.changesOf(e.applies - 1); got == nil || len(got) != 0 {
		t.Errorf("periodic run: changed = %v, want none (and not a full sync)", got)
	}
	e.waitIdle()
	e.drain()

	// A failed apply makes the retry full.
	e.dp.failNext(errors.New("map full"))
	set("198.18.0.3")
	e.nextApply()
	e.clk.Step(time.Second)
	e.nextChange()
	if e.dp.changesOf(e.applies-1) != nil {
		t.Errorf("retry after a failure was not full")
	}
	e.waitIdle()
	e.drain()

	// So does a Node change.
	e.set(web, api, dns, slice("web-1", "web", "node-a", "198.18.0.3"),
		slice("api-1", "api", "node-b", "198.18.1.1"), slice("dns-1", "dns", "node-a", "198.18.2.1"),
		node("node-a", v1.NodeAddress{Type: v1.NodeInternalIP, Address: "192.0.2.11"}))
	e.nextChange()
	if e.dp.changesOf(e.applies-1) != nil {
		t.Errorf("sync after a Node change was not full")
	}
	e.waitIdle()
	e.drain()

	// And the full sync period.
	e.clk.Step(time.Hour)
	e.nextChange()
	if e.dp.changesOf(e.applies-1) != nil {
		t.Errorf("sync after FullSyncPeriod was not full")
	}
}
