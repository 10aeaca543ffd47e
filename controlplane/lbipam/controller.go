package lbipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/util/workqueue"

	"github.com/straitlb/strait/controlplane/bgpconfig"
	"github.com/straitlb/strait/controlplane/events"
)

// Defaults of Config.
const (
	DefaultLeaseNamespace = "strait-system"
	DefaultLeaseName      = "strait-lbipam"
	DefaultLeaseDuration  = 15 * time.Second
	DefaultRenewDeadline  = 10 * time.Second
	DefaultRetryPeriod    = 2 * time.Second
	// FieldManager is the field manager of the status writes.
	FieldManager = "strait-lbipam"
)

// Event reason of a successful allocation (failures use the Reason* of
// Error).
const ReasonAllocated = "IPAllocated"

// Config configures a Controller.
type Config struct {
	// Client and Dynamic are required. The identity needs what
	// deploy/rbac-lbipam.yaml grants.
	Client  kubernetes.Interface
	Dynamic dynamic.Interface
	// Identity names this candidate in the Lease (the node name); required.
	Identity string
	// Classes selects the Services allocated for.
	Classes ClassFilter
	// Lease location and timing (zero: the defaults above).
	LeaseNamespace, LeaseName                 string
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Recorder gets Events on Services (nil: none).
	Recorder events.Recorder
	// Registry gets the metrics (nil: none).
	Registry prometheus.Registerer
	// Logger (nil: none).
	Logger *zap.Logger
	// ResyncPeriod of the informers (0: none).
	ResyncPeriod time.Duration
}

// Controller assigns pool addresses to LoadBalancer Services and writes
// them to status.loadBalancer.ingress, while it holds the Lease; every
// candidate watches, only the leader allocates. Each time it becomes the
// leader it rebuilds the allocations from the Services' status (Restore),
// so addresses never move across leaders or restarts.
type Controller struct {
	cfg Config
	log *zap.Logger

	svcFactory informers.SharedInformerFactory
	dynFactory dynamicinformer.DynamicSharedInformerFactory
	services   corelisters.ServiceLister
	namespaces corelisters.NamespaceLister
	pools      cache.SharedIndexInformer

	leader atomic.Bool
	leadMu sync.Mutex // held by lead

	mu      sync.Mutex // guards queue, alloc and lastErr
	queue   workqueue.TypedRateLimitingInterface[string]
	alloc   *Allocator
	lastErr map[types.NamespacedName]string

	errorsTotal *prometheus.CounterVec
}

// Queue keys that are not Services.
const (
	keyPools  = "\x00pools"
	keyStatus = "\x00status"
)

// New creates the controller; nothing runs before Run.
func New(cfg Config) (*Controller, error) {
	if cfg.Client == nil || cfg.Dynamic == nil {
		return nil, errors.New("lbipam: nil client")
	}
	if cfg.Identity == "" {
		return nil, errors.New("lbipam: empty identity")
	}
	if cfg.LeaseNamespace == "" {
		cfg.LeaseNamespace = DefaultLeaseNamespace
	}
	if cfg.LeaseName == "" {
		cfg.LeaseName = DefaultLeaseName
	}
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration = DefaultLeaseDuration
	}
	if cfg.RenewDeadline == 0 {
		cfg.RenewDeadline = DefaultRenewDeadline
	}
	if cfg.RetryPeriod == 0 {
		cfg.RetryPeriod = DefaultRetryPeriod
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	c := &Controller{
		cfg:        cfg,
		log:        log.With(zap.String("component", "lbipam"), zap.String("identity", cfg.Identity)),
		svcFactory: informers.NewSharedInformerFactory(cfg.Client, cfg.ResyncPeriod),
		dynFactory: dynamicinformer.NewDynamicSharedInformerFactory(cfg.Dynamic, cfg.ResyncPeriod),
		lastErr:    make(map[types.NamespacedName]string),
		errorsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_lbipam_allocation_errors_total",
			Help: "Services that could not get an address, by reason.",
		}, []string{"reason"}),
	}
	svcInf := c.svcFactory.Core().V1().Services()
	nsInf := c.svcFactory.Core().V1().Namespaces()
	c.services, c.namespaces = svcInf.Lister(), nsInf.Lister()
	c.pools = c.dynFactory.ForResource(bgpconfig.LoadBalancerIPPoolResource).Informer()

	svcKey := func(obj any) {
		if k, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			c.enqueue(k)
		}
	}
	if _, err := svcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: svcKey, UpdateFunc: func(_, n any) { svcKey(n) }, DeleteFunc: svcKey,
	}); err != nil {
		return nil, fmt.Errorf("lbipam: %w", err)
	}
	nsChanged := func(obj any) {
		ns, ok := obj.(*v1.Namespace)
		if !ok {
			return
		}
		svcs, _ := c.services.Services(ns.Name).List(labels.Everything())
		for _, s := range svcs {
			c.enqueue(s.Namespace + "/" + s.Name)
		}
	}
	if _, err := nsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(o, n any) {
			if on, ok := o.(*v1.Namespace); ok {
				if nn, ok := n.(*v1.Namespace); ok && labels.Equals(on.Labels, nn.Labels) {
					return
				}
			}
			nsChanged(n)
		},
	}); err != nil {
		return nil, fmt.Errorf("lbipam: %w", err)
	}
	if _, err := c.pools.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.enqueue(keyPools) },
		UpdateFunc: func(o, n any) { c.poolUpdated(o, n) },
		DeleteFunc: func(any) { c.enqueue(keyPools) },
	}); err != nil {
		return nil, fmt.Errorf("lbipam: %w", err)
	}
	if cfg.Registry != nil {
		if err := cfg.Registry.Register(collector{c}); err != nil {
			return nil, fmt.Errorf("lbipam: register metrics: %w", err)
		}
		if err := cfg.Registry.Register(c.errorsTotal); err != nil {
			return nil, fmt.Errorf("lbipam: register metrics: %w", err)
		}
	}
	return c, nil
}

// poolUpdated ignores status-only updates (our own writes).
func (c *Controller) poolUpdated(o, n any) {
	ou, ok1 := o.(*unstructured.Unstructured)
	nu, ok2 := n.(*unstructured.Unstructured)
	if ok1 && ok2 && ou.GetGeneration() == nu.GetGeneration() && labels.Equals(ou.GetLabels(), nu.GetLabels()) {
		return
	}
	c.enqueue(keyPools)
}

func (c *Controller) enqueue(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.queue != nil {
		c.queue.Add(key)
	}
}

// IsLeader reports whether this controller holds the Lease.
func (c *Controller) IsLeader() bool { return c.leader.Load() }

// Run watches Services, Namespaces and LoadBalancerIPPools and competes for
// the Lease until ctx is done; while leading it allocates. It returns nil
// when ctx is done, or an error if the caches cannot sync.
func (c *Controller) Run(ctx context.Context) error {
	c.svcFactory.Start(ctx.Done())
	c.dynFactory.Start(ctx.Done())
	defer c.svcFactory.Shutdown()
	defer c.dynFactory.Shutdown()
	for t, ok := range c.svcFactory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("lbipam: %v cache did not sync", t)
		}
	}
	for r, ok := range c.dynFactory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("lbipam: %v cache did not sync", r)
		}
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: c.cfg.LeaseNamespace, Name: c.cfg.LeaseName},
		Client:     c.cfg.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: c.cfg.Identity},
	}
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			Name:            c.cfg.LeaseName,
			LeaseDuration:   c.cfg.LeaseDuration,
			RenewDeadline:   c.cfg.RenewDeadline,
			RetryPeriod:     c.cfg.RetryPeriod,
			ReleaseOnCancel: true,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: c.lead,
				OnStoppedLeading: func() {},
			},
		})
		if err != nil {
			return fmt.Errorf("lbipam: leader election: %w", err)
		}
		// Run returns when leadership is lost (lead's context is then
		// cancelled) or ctx is done; compete again.
		le.Run(ctx)
	}
	// Wait for the last term to end.
	c.leadMu.Lock()
	c.leadMu.Unlock() //nolint:staticcheck // empty critical section: a barrier
	return nil
}

// lead allocates until ctx is done.
func (c *Controller) lead(ctx context.Context) {
	// Terms never overlap: a term starts after the previous one ended.
	c.leadMu.Lock()
	defer c.leadMu.Unlock()
	if ctx.Err() != nil {
		return
	}
	c.log.Info("became the allocating leader")
	q := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "lbipam"})
	c.mu.Lock()
	c.leader.Store(true)
	c.queue = q
	c.alloc = NewAllocator(nil)
	c.lastErr = make(map[types.NamespacedName]string)
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.queue, c.alloc = nil, nil
		c.leader.Store(false)
		c.mu.Unlock()
		c.log.Info("stopped leading")
	}()

	c.reloadPools(false)
	c.restore()
	q.Add(keyStatus)

	go func() {
		<-ctx.Done()
		q.ShutDown()
	}()
	for c.processNext(ctx, q) {
	}
}

// restore claims every Service's current addresses, oldest Service first,
// and queues every Service.
func (c *Controller) restore() {
	svcs, _ := c.services.List(labels.Everything())
	slices.SortFunc(svcs, func(a, b *v1.Service) int {
		if d := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); d != 0 {
			return d
		}
		return cmpString(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, svc := range svcs {
		if !c.cfg.Classes.Wants(svc) {
			continue
		}
		s, err := ServiceFromKube(svc, c.nsLabels(svc.Namespace))
		if err == nil {
			c.alloc.Restore(s)
		}
		c.queue.Add(svc.Namespace + "/" + svc.Name)
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// reloadPools converts the pool objects and gives the valid ones to the
// allocator; with requeue, every Service is queued.
func (c *Controller) reloadPools(requeue bool) {
	var objs bgpconfig.Objects
	for _, o := range c.pools.GetStore().List() {
		u, ok := o.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		if err := objs.AddUnstructured(u); err != nil {
			c.log.Warn("ignoring invalid pool", zap.Error(err))
		}
	}
	cfg := bgpconfig.Convert(bgpconfig.Input{Objects: objs})
	for _, err := range cfg.Errors {
		c.log.Warn("ignoring invalid pool", zap.Error(err))
	}
	c.mu.Lock()
	c.alloc.SetPools(cfg.Pools)
	q := c.queue
	c.mu.Unlock()
	if requeue && q != nil {
		svcs, _ := c.services.List(labels.Everything())
		for _, s := range svcs {
			q.Add(s.Namespace + "/" + s.Name)
		}
		q.Add(keyStatus)
	}
}

func (c *Controller) nsLabels(ns string) map[string]string {
	n, err := c.namespaces.Get(ns)
	if err != nil {
		return nil
	}
	return n.Labels
}

func (c *Controller) processNext(ctx context.Context, q workqueue.TypedRateLimitingInterface[string]) bool {
	key, quit := q.Get()
	if quit {
		return false
	}
	defer q.Done(key)
	var err error
	switch key {
	case keyPools:
		c.reloadPools(true)
	case keyStatus:
		err = c.writePoolStatus(ctx)
	default:
		err = c.syncService(ctx, key)
		q.Add(keyStatus)
	}
	if err != nil && ctx.Err() == nil {
		c.log.Info("retrying", zap.String("key", key), zap.Error(err))
		q.AddRateLimited(key)
		return true
	}
	q.Forget(key)
	return true
}

func ingressIPs(svc *v1.Service) []string {
	var out []string
	for _, in := range svc.Status.LoadBalancer.Ingress {
		out = append(out, in.IP)
	}
	return out
}

func (c *Controller) syncService(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	nn := types.NamespacedName{Namespace: ns, Name: name}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.mu.Lock()
		delete(c.lastErr, nn)
		if ips := c.alloc.Release(nn); len(ips) > 0 {
			c.log.Info("released", zap.String("service", key), zap.Any("ips", ips))
			c.retryFailedLocked()
		}
		c.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	if !c.cfg.Classes.Wants(svc) {
		c.mu.Lock()
		delete(c.lastErr, nn)
		released := c.alloc.Release(nn)
		if len(released) > 0 {
			c.retryFailedLocked()
		}
		c.mu.Unlock()
		// A Service that left type LoadBalancer (and so our class) loses
		// the addresses we gave it; one of another class is not ours.
		if len(released) > 0 && svc.Spec.Type != v1.ServiceTypeLoadBalancer && len(svc.Status.LoadBalancer.Ingress) > 0 {
			return c.writeIngress(ctx, svc, nil)
		}
		return nil
	}

	c.mu.Lock()
	s, err := ServiceFromKube(svc, c.nsLabels(ns))
	var ips []netip.Addr
	if err != nil {
		if len(c.alloc.Release(nn)) > 0 {
			c.retryFailedLocked()
		}
	} else {
		before := c.alloc.Assigned(nn)
		ips, err = c.alloc.Assign(s)
		if slices.ContainsFunc(before, func(ip netip.Addr) bool { return !slices.Contains(ips, ip) }) {
			c.retryFailedLocked() // the Service moved: its old address is free
		}
	}
	var report bool
	if err != nil {
		report = c.lastErr[nn] != err.Error()
		c.lastErr[nn] = err.Error()
	} else {
		delete(c.lastErr, nn)
	}
	c.mu.Unlock()

	if err != nil {
		e := AsError(err)
		if report {
			c.errorsTotal.WithLabelValues(e.Reason).Inc()
			c.log.Warn("cannot allocate", zap.String("service", key), zap.String("reason", e.Reason), zap.Error(err))
			if c.cfg.Recorder != nil {
				c.cfg.Recorder.Eventf(svc, nil, events.TypeWarning, e.Reason, "Allocate", "%s", e.Msg)
			}
		}
		if len(svc.Status.LoadBalancer.Ingress) > 0 {
			return c.writeIngress(ctx, svc, nil)
		}
		return nil
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	want := make([]string, len(ips))
	for i, ip := range ips {
		want[i] = ip.String()
	}
	if slices.Equal(want, ingressIPs(svc)) {
		return nil
	}
	if err := c.writeIngress(ctx, svc, ips); err != nil {
		return err
	}
	c.log.Info("allocated", zap.String("service", key), zap.Strings("ips", want))
	if c.cfg.Recorder != nil {
		c.cfg.Recorder.Eventf(svc, nil, events.TypeNormal, ReasonAllocated, "Allocate", "Assigned %v", want)
	}
	return nil
}

// retryFailedLocked queues the Services that got no address, after
// addresses were freed.
func (c *Controller) retryFailedLocked() {
	for k := range c.lastErr {
		c.queue.Add(k.String())
	}
}

func (c *Controller) writeIngress(ctx context.Context, svc *v1.Service, ips []netip.Addr) error {
	svc = svc.DeepCopy()
	svc.Status.LoadBalancer.Ingress = nil
	vip := v1.LoadBalancerIPModeVIP
	for _, ip := range ips {
		svc.Status.LoadBalancer.Ingress = append(svc.Status.LoadBalancer.Ingress, v1.LoadBalancerIngress{IP: ip.String(), IPMode: &vip})
	}
	_, err := c.cfg.Client.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, svc, metav1.UpdateOptions{FieldManager: FieldManager})
	if err != nil {
		return fmt.Errorf("update status of %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	return nil
}

// writePoolStatus writes every valid pool's counts where they changed.
func (c *Controller) writePoolStatus(ctx context.Context) error {
	c.mu.Lock()
	var stats []PoolStats
	if c.alloc != nil {
		stats = c.alloc.Stats()
	}
	c.mu.Unlock()
	var errs []error
	for _, st := range stats {
		o, ok, err := c.pools.GetStore().GetByKey(st.Name)
		if err != nil || !ok {
			continue
		}
		u := o.(*unstructured.Unstructured)
		assigned, available := clamp(st.Assigned), clamp(st.Available)
		status, _, _ := unstructured.NestedMap(u.Object, "status")
		if status != nil && status["assigned"] == assigned && status["available"] == available && status["observedGeneration"] == u.GetGeneration() {
			continue
		}
		u = u.DeepCopy()
		if err := unstructured.SetNestedField(u.Object, map[string]any{
			"assigned": assigned, "available": available, "observedGeneration": u.GetGeneration(),
		}, "status"); err != nil {
			errs = append(errs, err)
			continue
		}
		_, err = c.cfg.Dynamic.Resource(bgpconfig.LoadBalancerIPPoolResource).UpdateStatus(ctx, u, metav1.UpdateOptions{FieldManager: FieldManager})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("update status of pool %s: %w", st.Name, err))
		}
	}
	return errors.Join(errs...)
}

func clamp(n uint64) int64 {
	if n > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(n)
}
