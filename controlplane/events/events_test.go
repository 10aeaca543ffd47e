package events

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestLogging(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	rec := NewLogging(zap.New(core))
	svc := &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}}
	rec.Eventf(svc, nil, TypeWarning, ReasonInvalidService, "Translate", "bad %s", "thing")
	rec.Eventf(&v1.ObjectReference{Kind: "Service", Namespace: "ns", Name: "x"}, nil, TypeNormal, "R", "A", "fine")
	entries := logs.All()
	if len(entries) != 2 {
		t.Fatalf("got %d log lines, want 2", len(entries))
	}
	got := entries[0].ContextMap()
	if entries[0].Level != zap.WarnLevel || got["object"] != "default/web" || got["reason"] != ReasonInvalidService || got["note"] != "bad thing" {
		t.Errorf("warning event logged as %v %v", entries[0].Level, got)
	}
	if got := entries[1].ContextMap(); entries[1].Level != zap.InfoLevel || got["kind"] != "Service" || got["object"] != "ns/x" {
		t.Errorf("normal event logged as %v %v", entries[1].Level, got)
	}
}

func TestKubernetes(t *testing.T) {
	client := fake.NewClientset()
	rec, err := NewKubernetes(client, "strait")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()

	svc := &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "uid-1"}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Events recorded before the sink is attached are dropped, so
		// record until one arrives.
		rec.Eventf(svc, nil, TypeWarning, ReasonInvalidService, "Translate", "spec.ports[0].port: %s", "invalid")
		list, err := client.EventsV1().Events("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) > 0 {
			ev := list.Items[0]
			if ev.Regarding.Kind != "Service" || ev.Regarding.Name != "web" || ev.Regarding.UID != "uid-1" ||
				ev.Reason != ReasonInvalidService || ev.Type != TypeWarning || ev.Note != "spec.ports[0].port: invalid" ||
				ev.ReportingController != "strait" || ev.Action != "Translate" {
				t.Errorf("event = %+v", ev)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no event reached the API")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
