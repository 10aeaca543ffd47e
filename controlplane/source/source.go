package source

import (
	"context"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// Kind says what a Change is about.
type Kind string

// Kinds of Change.
const (
	KindService       Kind = "Service"
	KindEndpointSlice Kind = "EndpointSlice"
	KindNode          Kind = "Node"
	// KindSynced is sent once, when the source has its initial data (and
	// on every later Run if it already has it): HasSynced is true from then on.
	KindSynced Kind = "Synced"
)

// Change reports that one object was added, updated or deleted.
type Change struct {
	Kind      Kind
	Namespace string
	Name      string
	// Service is the Service an EndpointSlice belongs to (its
	// kubernetes.io/service-name label); empty for other kinds.
	Service string
	Deleted bool
	// TriggerTime is the endpoints.kubernetes.io/last-change-trigger-time
	// annotation of an added or updated EndpointSlice: when the change that
	// the slice reflects happened. It is zero when the annotation is absent
	// or unparseable and for deletions (as in kube-proxy, a deletion's
	// annotation dates the last update, not the deletion).
	TriggerTime time.Time
}

func (c Change) String() string {
	s := string(c.Kind)
	if c.Name != "" {
		s += " " + cache.NewObjectName(c.Namespace, c.Name).String()
	}
	if c.Deleted {
		s += " (deleted)"
	}
	return s
}

// Handler is called for every change. It is called from the source's
// goroutines, must not block, and must not call back into the source
// except through Listers and HasSynced.
type Handler func(Change)

// Listers read the objects a source holds. Objects returned are shared:
// callers must not modify them.
type Listers struct {
	Services       corelisters.ServiceLister
	EndpointSlices discoverylisters.EndpointSliceLister
	// Nodes holds at most the agent's own Node in the Kubernetes source;
	// the file source holds every Node in its directory.
	Nodes corelisters.NodeLister
	// ServiceSlices returns the EndpointSlices labelled with a Service's
	// name (kubernetes.io/service-name), from an index.
	ServiceSlices func(namespace, service string) ([]*discoveryv1.EndpointSlice, error)
}

// IndexByService indexes EndpointSlices by namespace/service-name label.
const IndexByService = "strait.io/service"

// sliceIndexers are the indexers of every EndpointSlice store.
var sliceIndexers = cache.Indexers{IndexByService: func(obj any) ([]string, error) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	svc := s.Labels[discoveryv1.LabelServiceName]
	if svc == "" {
		return nil, nil
	}
	return []string{s.Namespace + "/" + svc}, nil
}}

// serviceSlices reads the IndexByService index of idx.
func serviceSlices(idx cache.Indexer) func(namespace, service string) ([]*discoveryv1.EndpointSlice, error) {
	return func(namespace, service string) ([]*discoveryv1.EndpointSlice, error) {
		objs, err := idx.ByIndex(IndexByService, namespace+"/"+service)
		if err != nil {
			return nil, fmt.Errorf("list endpointslices of %s/%s: %w", namespace, service, err)
		}
		out := make([]*discoveryv1.EndpointSlice, 0, len(objs))
		for _, o := range objs {
			if s, ok := o.(*discoveryv1.EndpointSlice); ok {
				out = append(out, s)
			}
		}
		return out, nil
	}
}

// Source is where the proxier's objects come from.
type Source interface {
	// Run delivers changes to h until ctx is done. It returns nil when ctx
	// ends and an error only when the source cannot run at all.
	Run(ctx context.Context, h Handler) error
	// HasSynced reports whether the listers hold the complete initial
	// state. Nothing should be programmed before it is true.
	HasSynced() bool
	// Listers returns the listers of the current objects. The file source
	// swaps in new listers on every reload, so call it once per sync to
	// read one consistent set of objects.
	Listers() Listers
}

// lastChangeTriggerTime parses the endpoints.kubernetes.io/last-change-trigger-time
// annotation. It returns the zero time when the annotation is absent.
func lastChangeTriggerTime(annotations map[string]string) (time.Time, error) {
	val, ok := annotations[v1.EndpointsLastChangeTriggerTime]
	if !ok {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, val)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse annotation %s: %w", v1.EndpointsLastChangeTriggerTime, err)
	}
	return t, nil
}

// sliceChange builds the Change for an EndpointSlice.
func sliceChange(eps *discoveryv1.EndpointSlice, deleted bool) (Change, error) {
	c := Change{
		Kind:      KindEndpointSlice,
		Namespace: eps.Namespace,
		Name:      eps.Name,
		Service:   eps.Labels[discoveryv1.LabelServiceName],
		Deleted:   deleted,
	}
	if deleted {
		return c, nil
	}
	t, err := lastChangeTriggerTime(eps.Annotations)
	c.TriggerTime = t
	return c, err
}
