package source

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// objectKey identifies an object of one of the kinds a source holds.
type objectKey struct {
	kind            Kind
	namespace, name string
}

func (k objectKey) String() string {
	return string(k.kind) + " " + cache.NewObjectName(k.namespace, k.name).String()
}

// snapshot is one immutable set of objects and listers over it.
type snapshot struct {
	listers Listers
	objects map[objectKey]runtime.Object
}

func newIndexer() cache.Indexer {
	return cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
}

func emptySnapshot() *snapshot {
	s, _ := buildSnapshot(nil)
	return s
}

func buildSnapshot(objs []runtime.Object) (*snapshot, error) {
	svcs, slices, nodes := newIndexer(), newIndexer(), newIndexer()
	if err := slices.AddIndexers(sliceIndexers); err != nil {
		return nil, fmt.Errorf("index endpointslices: %w", err)
	}
	s := &snapshot{
		listers: Listers{
			Services:       corelisters.NewServiceLister(svcs),
			EndpointSlices: discoverylisters.NewEndpointSliceLister(slices),
			Nodes:          corelisters.NewNodeLister(nodes),
			ServiceSlices:  serviceSlices(slices),
		},
		objects: make(map[objectKey]runtime.Object, len(objs)),
	}
	for _, obj := range objs {
		var (
			key     objectKey
			indexer cache.Indexer
		)
		switch o := obj.(type) {
		case *v1.Service:
			key, indexer = objectKey{KindService, o.Namespace, o.Name}, svcs
		case *discoveryv1.EndpointSlice:
			key, indexer = objectKey{KindEndpointSlice, o.Namespace, o.Name}, slices
		case *v1.Node:
			key, indexer = objectKey{KindNode, "", o.Name}, nodes
		default:
			return nil, fmt.Errorf("add object: unsupported type %T", obj)
		}
		if key.name == "" {
			return nil, fmt.Errorf("add %s: metadata.name is empty", key.kind)
		}
		if _, dup := s.objects[key]; dup {
			return nil, fmt.Errorf("add %s: defined twice", key)
		}
		if err := indexer.Add(obj); err != nil {
			return nil, fmt.Errorf("add %s: %w", key, err)
		}
		s.objects[key] = obj
	}
	return s, nil
}

// Memory is a Source whose objects are set by its owner: the store behind
// the file source, and a fake source for tests. The zero value is not
// usable; use NewMemory.
type Memory struct {
	log    *zap.Logger
	cur    atomic.Pointer[snapshot]
	synced atomic.Bool

	mu      sync.Mutex // serializes Set and handler registration
	handler Handler
}

var _ Source = (*Memory)(nil)

// NewMemory returns an empty, unsynced Memory.
func NewMemory(log *zap.Logger) *Memory {
	if log == nil {
		log = zap.NewNop()
	}
	m := &Memory{log: log}
	m.cur.Store(emptySnapshot())
	return m
}

// Set replaces every object with objs (*v1.Service, *discoveryv1.EndpointSlice
// and *v1.Node), marks the source synced and reports a Change for each
// object that was added, updated or removed. On an error (an unsupported
// type, a missing name, the same object twice) nothing changes. The objects
// must not be modified afterwards.
func (m *Memory) Set(objs []runtime.Object) error {
	next, err := buildSnapshot(objs)
	if err != nil {
		return fmt.Errorf("set objects: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	prev := m.cur.Swap(next)
	wasSynced := m.synced.Swap(true)
	if m.handler == nil {
		return nil
	}
	for _, c := range diff(m.log, prev.objects, next.objects) {
		m.handler(c)
	}
	if !wasSynced {
		m.handler(Change{Kind: KindSynced})
	}
	return nil
}

// Run delivers changes to h until ctx is done. If the source already has
// data, h first gets an add for every object and a KindSynced change, as
// from an informer's initial list.
func (m *Memory) Run(ctx context.Context, h Handler) error {
	m.setHandler(h)
	<-ctx.Done()
	return nil
}

func (m *Memory) setHandler(h Handler) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.handler = h
	if m.synced.Load() {
		// As an informer's initial list: every object is an add.
		for _, c := range diff(m.log, nil, m.cur.Load().objects) {
			h(c)
		}
		h(Change{Kind: KindSynced})
	}
}

// HasSynced reports whether Set has succeeded once.
func (m *Memory) HasSynced() bool { return m.synced.Load() }

// Listers returns listers over the objects of the last successful Set.
func (m *Memory) Listers() Listers { return m.cur.Load().listers }

// diff returns the changes from prev to next.
func diff(log *zap.Logger, prev, next map[objectKey]runtime.Object) []Change {
	var out []Change
	for key, obj := range next {
		if old, ok := prev[key]; ok && equality.Semantic.DeepEqual(old, obj) {
			continue
		}
		out = append(out, changeFor(log, key, obj, false))
	}
	for key, obj := range prev {
		if _, ok := next[key]; !ok {
			out = append(out, changeFor(log, key, obj, true))
		}
	}
	return out
}

func changeFor(log *zap.Logger, key objectKey, obj runtime.Object, deleted bool) Change {
	if eps, ok := obj.(*discoveryv1.EndpointSlice); ok {
		c, err := sliceChange(eps, deleted)
		if err != nil {
			log.Warn("ignoring trigger time of endpointslice", zap.Stringer("endpointslice", key), zap.Error(err))
		}
		return c
	}
	return Change{Kind: key.kind, Namespace: key.namespace, Name: key.name, Deleted: deleted}
}
