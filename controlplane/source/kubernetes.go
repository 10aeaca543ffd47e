package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// KubernetesConfig configures the Kubernetes source.
type KubernetesConfig struct {
	// NodeName is the agent's own Node; it is required.
	NodeName string
	// ResyncPeriod is the informers' resync period (kube-proxy's
	// configSyncPeriod). Resyncs do not count as changes; 0 disables them.
	ResyncPeriod time.Duration
}

// Kubernetes is a Source backed by client-go shared informers.
type Kubernetes struct {
	log *zap.Logger
	cfg KubernetesConfig

	factories []informers.SharedInformerFactory
	services  cache.SharedIndexInformer
	slices    cache.SharedIndexInformer
	nodes     cache.SharedIndexInformer
	listers   Listers

	started atomic.Bool
	synced  atomic.Bool
}

var _ Source = (*Kubernetes)(nil)

// NewKubernetes creates the informers. Nothing is listed or watched before Run.
//
// The client needs list and watch on services and nodes, and on
// endpointslices in discovery.k8s.io.
func NewKubernetes(client kubernetes.Interface, cfg KubernetesConfig, log *zap.Logger) (*Kubernetes, error) {
	if client == nil {
		return nil, errors.New("create kubernetes source: nil client")
	}
	if cfg.NodeName == "" {
		return nil, errors.New("create kubernetes source: nodeName is empty")
	}
	if log == nil {
		log = zap.NewNop()
	}
	noHeadless, err := labels.NewRequirement(v1.IsHeadlessService, selection.DoesNotExist, nil)
	if err != nil {
		return nil, fmt.Errorf("create kubernetes source: %w", err)
	}
	trim := informers.WithTransform(trimManagedFields)

	// As in kube-proxy: headless Services are proxied by DNS, not by us;
	// their EndpointSlices are labelled and left out too. Services with a
	// service-proxy-name label are not filtered here: translate decides
	// (Config.ProxyName).
	svcFactory := informers.NewSharedInformerFactoryWithOptions(client, cfg.ResyncPeriod, trim,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermNotEqualSelector("spec.clusterIP", v1.ClusterIPNone).String()
		}))
	sliceFactory := informers.NewSharedInformerFactoryWithOptions(client, cfg.ResyncPeriod, trim,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = labels.NewSelector().Add(*noHeadless).String()
		}))
	nodeFactory := informers.NewSharedInformerFactoryWithOptions(client, cfg.ResyncPeriod, trim,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", cfg.NodeName).String()
		}))

	k := &Kubernetes{
		log:       log.With(zap.String("source", "kubernetes")),
		cfg:       cfg,
		factories: []informers.SharedInformerFactory{svcFactory, sliceFactory, nodeFactory},
	}
	svcInformer := svcFactory.Core().V1().Services()
	sliceInformer := sliceFactory.Discovery().V1().EndpointSlices()
	nodeInformer := nodeFactory.Core().V1().Nodes()
	k.services, k.slices, k.nodes = svcInformer.Informer(), sliceInformer.Informer(), nodeInformer.Informer()
	if err := k.slices.AddIndexers(sliceIndexers); err != nil {
		return nil, fmt.Errorf("create kubernetes source: index endpointslices: %w", err)
	}
	k.listers = Listers{
		Services:       svcInformer.Lister(),
		EndpointSlices: sliceInformer.Lister(),
		Nodes:          nodeInformer.Lister(),
		ServiceSlices:  serviceSlices(k.slices.GetIndexer()),
	}
	for name, inf := range k.informers() {
		if err := inf.SetWatchErrorHandlerWithContext(k.watchErrorHandler(name)); err != nil {
			return nil, fmt.Errorf("create kubernetes source: set %s watch error handler: %w", name, err)
		}
	}
	return k, nil
}

func (k *Kubernetes) informers() map[string]cache.SharedIndexInformer {
	return map[string]cache.SharedIndexInformer{"services": k.services, "endpointslices": k.slices, "nodes": k.nodes}
}

// Run starts the informers and delivers changes to h until ctx is done.
// h gets a KindSynced change once every informer has listed and every
// initial object has been delivered. Run may be called once.
func (k *Kubernetes) Run(ctx context.Context, h Handler) error {
	if !k.started.CompareAndSwap(false, true) {
		return errors.New("run kubernetes source: already running")
	}
	regs := make([]cache.InformerSynced, 0, 3)
	for name, inf := range k.informers() {
		reg, err := inf.AddEventHandler(k.handlerFor(name, h))
		if err != nil {
			return fmt.Errorf("run kubernetes source: add %s handler: %w", name, err)
		}
		regs = append(regs, reg.HasSynced)
	}
	for _, f := range k.factories {
		f.Start(ctx.Done())
	}
	defer func() {
		for _, f := range k.factories {
			f.Shutdown()
		}
	}()

	k.log.Info("waiting for informers to sync", zap.String("node", k.cfg.NodeName))
	if !cache.WaitForCacheSync(ctx.Done(), regs...) {
		return nil // ctx is done
	}
	k.synced.Store(true)
	k.log.Info("informers synced")
	h(Change{Kind: KindSynced})
	<-ctx.Done()
	return nil
}

// HasSynced reports whether every informer has listed and every initial
// object has been delivered to the handler.
func (k *Kubernetes) HasSynced() bool { return k.synced.Load() }

// Listers returns the informers' listers.
func (k *Kubernetes) Listers() Listers { return k.listers }

func (k *Kubernetes) handlerFor(name string, h Handler) cache.ResourceEventHandler {
	var kind Kind
	switch name {
	case "services":
		kind = KindService
	case "endpointslices":
		kind = KindEndpointSlice
	default:
		kind = KindNode
	}
	report := func(obj any, deleted bool) {
		if eps, ok := obj.(*discoveryv1.EndpointSlice); ok {
			c, err := sliceChange(eps, deleted)
			if err != nil {
				k.log.Warn("ignoring trigger time of endpointslice",
					zap.String("endpointslice", eps.Namespace+"/"+eps.Name), zap.Error(err))
			}
			h(c)
			return
		}
		m, err := meta.Accessor(obj)
		if err != nil {
			k.log.Error("ignoring event for object without metadata", zap.String("kind", string(kind)), zap.Error(err))
			return
		}
		h(Change{Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName(), Deleted: deleted})
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { report(obj, false) },
		UpdateFunc: func(oldObj, newObj any) {
			if !changed(oldObj, newObj) {
				return
			}
			report(newObj, false)
		},
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			report(obj, true)
		},
	}
}

// changed reports whether an update matters: resyncs (same
// resourceVersion) never do, and for the Node only what the proxier and
// the health server read (labels, addresses, taints, deletion).
func changed(oldObj, newObj any) bool {
	o, err1 := meta.Accessor(oldObj)
	n, err2 := meta.Accessor(newObj)
	if err1 != nil || err2 != nil {
		return true
	}
	if o.GetResourceVersion() == n.GetResourceVersion() {
		return false
	}
	oldNode, ok1 := oldObj.(*v1.Node)
	newNode, ok2 := newObj.(*v1.Node)
	if ok1 && ok2 {
		return !labels.Equals(oldNode.Labels, newNode.Labels) ||
			!slices.Equal(oldNode.Status.Addresses, newNode.Status.Addresses) ||
			!slices.EqualFunc(oldNode.Spec.Taints, newNode.Spec.Taints, func(a, b v1.Taint) bool { return a.MatchTaint(&b) && a.Value == b.Value }) ||
			oldNode.DeletionTimestamp.IsZero() != newNode.DeletionTimestamp.IsZero()
	}
	return true
}

func (k *Kubernetes) watchErrorHandler(name string) cache.WatchErrorHandlerWithContext {
	return func(_ context.Context, _ *cache.Reflector, err error) {
		switch {
		case apierrors.IsResourceExpired(err) || apierrors.IsGone(err) || errors.Is(err, io.EOF):
			k.log.Debug("watch closed; relisting", zap.String("resource", name), zap.Error(err))
		default:
			k.log.Warn("watch failed; retrying", zap.String("resource", name), zap.Error(err))
		}
	}
}

// trimManagedFields drops what the proxier never reads, to save memory:
// managed fields (as kube-proxy), kubectl's last-applied-configuration (a
// JSON copy of the whole object) and, in EndpointSlices, the endpoints'
// target references and deprecated topology.
func trimManagedFields(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
		if a := m.GetAnnotations(); a != nil {
			if _, ok := a[v1.LastAppliedConfigAnnotation]; ok {
				a = maps.Clone(a)
				delete(a, v1.LastAppliedConfigAnnotation)
				m.SetAnnotations(a)
			}
		}
	}
	if s, ok := obj.(*discoveryv1.EndpointSlice); ok {
		for i := range s.Endpoints {
			s.Endpoints[i].TargetRef = nil
			s.Endpoints[i].DeprecatedTopology = nil
		}
	}
	return obj, nil
}
