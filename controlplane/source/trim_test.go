package source

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestTrimKeepsWhatTheProxierReads(t *testing.T) {
	in := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:          "web-1",
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
			Annotations: map[string]string{
				v1.LastAppliedConfigAnnotation:    `{"big":"json"}`,
				v1.EndpointsLastChangeTriggerTime: "2026-01-01T00:00:00Z",
			},
		},
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:          []string{"10.0.0.1"},
			TargetRef:          &v1.ObjectReference{Kind: "Pod", Name: "web-0"},
			DeprecatedTopology: map[string]string{"k": "v"},
			Zone:               ptrTo("zone-a"),
		}},
	}
	shared := in.Annotations
	out, err := trimManagedFields(in)
	if err != nil {
		t.Fatal(err)
	}
	s := out.(*discoveryv1.EndpointSlice)
	if s.ManagedFields != nil || s.Endpoints[0].TargetRef != nil || s.Endpoints[0].DeprecatedTopology != nil {
		t.Errorf("not trimmed: %+v", s)
	}
	if _, ok := s.Annotations[v1.LastAppliedConfigAnnotation]; ok {
		t.Error("last-applied-configuration kept")
	}
	if s.Annotations[v1.EndpointsLastChangeTriggerTime] == "" || *s.Endpoints[0].Zone != "zone-a" || s.Endpoints[0].Addresses[0] != "10.0.0.1" {
		t.Errorf("trimmed too much: %+v", s)
	}
	if _, ok := shared[v1.LastAppliedConfigAnnotation]; !ok {
		t.Error("the original annotation map was modified")
	}
}

func ptrTo[T any](v T) *T { return &v }
