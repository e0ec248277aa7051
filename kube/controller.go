package kube

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	gwinformers "sigs.k8s.io/gateway-api/pkg/client/informers/externalversions"
	gwlisters "sigs.k8s.io/gateway-api/pkg/client/listers/apis/v1"

	"github.com/rauta/rauta/gatewayapi"
	"github.com/rauta/rauta/proxy"
	"github.com/rauta/rauta/upstream"
)

// gatewayGroupVersion is the Gateway API group version rauta reads.
const gatewayGroupVersion = "gateway.networking.k8s.io/v1"

// serviceNameLabel links an EndpointSlice to its Service.
const serviceNameLabel = discoveryv1.LabelServiceName

// Controller is rauta's Kubernetes source: it watches the Gateway API and
// the core objects they refer to, translates them into the configuration
// its proxy serves, keeps backend endpoints current without rebuilding,
// and, while it holds the Lease, writes the status back. See the package
// documentation.
type Controller struct {
	opts       Options
	log        *slog.Logger
	controller gatewayv1.GatewayController

	kube kubernetes.Interface
	gw   gwclient.Interface
	meta metadata.Interface
	dyn  dynamic.Interface

	co *coalescer

	// Informers and listers, set up by Run.
	coreF  informers.SharedInformerFactory
	gwF    gwinformers.SharedInformerFactory
	metaF  metadatainformer.SharedInformerFactory
	dynF   dynamicinformer.DynamicSharedInformerFactory
	served servedKinds

	// dynKinds are the policy kinds read through the dynamic client.
	dynKinds []*policyKind

	classes  gwlisters.GatewayClassLister
	gateways gwlisters.GatewayLister
	routes   gwlisters.HTTPRouteLister
	// grpcRoutes is nil when the cluster does not serve GRPCRoutes.
	grpcRoutes gwlisters.GRPCRouteLister
	grants     gwlisters.ReferenceGrantLister   // nil unless served
	policies   gwlisters.BackendTLSPolicyLister // nil unless served
	lsets      gwlisters.ListenerSetLister      // nil unless served
	tlsRoutes  gwlisters.TLSRouteLister         // nil unless served
	tcpRoutes  gwlisters.TCPRouteLister         // nil unless served
	udpRoutes  gwlisters.UDPRouteLister         // nil unless served
	services   corelisters.ServiceLister
	slices     cache.Indexer
	nsLister   corelisters.NamespaceLister
	refs       *refStore
	fpSeed     maphash.Seed
	writer     *statusWriter
	infra      *infraWriter
	replicas   *replicaCounter // nil when Options.DisableReplicaCount
	started    atomic.Bool
	ready      atomic.Bool
	statusMu   sync.Mutex
	lastState  gatewayapi.Status
	lastRes    *gatewayapi.Resources // translated into lastState

	// Owned by the rebuild goroutine.
	current   proxy.Config
	applied   bool
	lastFP    fingerprint
	bySvc     map[serviceKey][]svcBackend
	firstDone bool

	stats stats
}

// svcBackend is a backend of the current Config made from a Service port.
type svcBackend struct {
	name  string
	port  int32
	index int // into current.Backends
}

// servedKinds records which optional Gateway API kinds the cluster serves.
type servedKinds struct {
	referenceGrants, backendTLSPolicies, listenerSets bool
	grpcRoutes, tlsRoutes, tcpRoutes, udpRoutes       bool
}

// stats are the controller's counters.
type stats struct {
	rebuilds, unchanged, applies, applySkipped, endpointUpdates atomic.Uint64
	statusWrites, statusConflicts, statusErrors, events         atomic.Uint64
}

// Stats are counters of what a [Controller] did, for tests and metrics.
type Stats struct {
	// Rebuilds counts full rebuilds started (coalesced notifications).
	Rebuilds uint64
	// Unchanged counts rebuilds skipped because no object the translator
	// reads had changed.
	Unchanged uint64
	// Applies counts configurations handed to Proxy.Apply.
	Applies uint64
	// ApplySkipped counts translations whose Config equalled the one in
	// effect, so nothing was applied.
	ApplySkipped uint64
	// EndpointUpdates counts backends updated by the EndpointSlice fast
	// path (Proxy.UpdateEndpoints).
	EndpointUpdates uint64
	// StatusWrites counts successful status updates.
	StatusWrites uint64
	// StatusConflicts counts status updates refused with a conflict (and
	// retried).
	StatusConflicts uint64
	// StatusErrors counts status updates that failed otherwise.
	StatusErrors uint64
	// Events counts Events recorded.
	Events uint64
}

// New returns a Controller for the cluster cfg reaches. It does not
// contact the cluster; [Controller.Run] does.
//
// A cfg whose QPS is zero gets QPS 50 and Burst 100: client-go's defaults
// (5 and 10) would throttle the status writes of a large cluster.
func New(cfg *rest.Config, opts Options) (*Controller, error) {
	if cfg == nil {
		return nil, errors.New("kube: rest.Config is nil")
	}
	if opts.Proxy == nil {
		return nil, errors.New("kube: Options.Proxy is nil")
	}
	opts = opts.withDefaults()
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "rauta/" + opts.Identity
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kube: %w", err)
	}
	gc, err := gwclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kube: %w", err)
	}
	mc, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kube: %w", err)
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kube: %w", err)
	}
	c := &Controller{
		opts:       opts,
		log:        opts.Logger.With("component", "kube"),
		controller: gatewayv1.GatewayController(opts.Translate.ControllerName),
		kube:       kc,
		gw:         gc,
		meta:       mc,
		dyn:        dc,
		dynKinds:   newPolicyKinds(),
		co:         newCoalescer(opts.HoldOff, opts.MaxDelay, opts.EndpointsHoldOff),
		fpSeed:     maphash.MakeSeed(),
	}
	c.writer = newStatusWriter(c)
	c.infra = &infraWriter{c: c, maxFail: 15}
	if c.replicas, err = newControllerReplicas(kc, opts); err != nil {
		return nil, err
	}
	return c, nil
}

// Run runs the controller until ctx is done: it checks that the Gateway
// API is served, starts the informers, waits for their caches, then
// rebuilds the configuration as objects change and, unless DisableStatus,
// campaigns for the Lease and writes status while it holds it. Unless
// DisableReplicaCount, it also keeps this replica's own Lease and counts
// the replicas serving (see [Controller.Replicas]); a clean stop deletes
// that Lease. Run returns ctx.Err() after a clean stop, or an error when
// the Gateway API CRDs are not installed or the caches cannot sync. It may
// be called once.
func (c *Controller) Run(ctx context.Context) error {
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("kube: Controller.Run called twice")
	}
	if err := c.discover(); err != nil {
		return err
	}
	if err := c.setupInformers(); err != nil {
		return err
	}
	pending, err := c.setupPolicyInformers(c.discoverPolicies(ctx))
	if err != nil {
		return err
	}
	c.coreF.Start(ctx.Done())
	c.gwF.Start(ctx.Done())
	c.metaF.Start(ctx.Done())
	c.dynF.Start(ctx.Done())
	defer func() {
		c.coreF.Shutdown()
		c.gwF.Shutdown()
		c.metaF.Shutdown()
		c.dynF.Shutdown()
	}()
	// The replica count starts at once: it is known before the caches
	// have synced, and its Lease is deleted when Run returns.
	rctx, stopReplicas := context.WithCancel(ctx)
	var replicas sync.WaitGroup
	defer func() { stopReplicas(); replicas.Wait() }()
	if c.replicas != nil {
		replicas.Go(func() { c.replicas.run(rctx) })
	}
	began := time.Now()
	for _, synced := range []func() bool{
		func() bool { return allTrue(c.coreF.WaitForCacheSync(ctx.Done())) },
		func() bool { return allTrue(c.gwF.WaitForCacheSync(ctx.Done())) },
		func() bool { return allTrue(c.metaF.WaitForCacheSync(ctx.Done())) },
		func() bool { return allTrue(c.dynF.WaitForCacheSync(ctx.Done())) },
	} {
		if !synced() {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return errors.New("kube: informer caches did not sync")
		}
	}
	var policies []string
	for _, pk := range c.dynKinds {
		if pk.inf != nil {
			c.publish(pk)
			policies = append(policies, pk.kind.String())
		}
	}
	c.log.Info("caches synced", "after", time.Since(began).Round(time.Millisecond).String(),
		"listenerSets", c.served.listenerSets, "backendTLSPolicies", c.served.backendTLSPolicies,
		"referenceGrants", c.served.referenceGrants, "grpcRoutes", c.served.grpcRoutes, "policies", policies)

	// The first rebuild is due at once.
	c.co.markFull(time.Now().Add(-c.opts.MaxDelay))
	var wg sync.WaitGroup
	wg.Go(func() { c.loop(ctx) })
	wg.Go(func() { c.watchNewPolicies(ctx, pending) })
	if !c.opts.DisableStatus {
		wg.Go(func() { c.elect(ctx) })
	}
	<-ctx.Done()
	wg.Wait()
	return ctx.Err()
}

func allTrue[K comparable](m map[K]bool) bool {
	for _, ok := range m {
		if !ok {
			return false
		}
	}
	return true
}

// Ready reports whether the caches have synced and the first configuration
// has been applied: the proxy serves what the cluster says.
func (c *Controller) Ready() bool { return c.ready.Load() }

// Leading reports whether this replica holds the Lease and writes status.
func (c *Controller) Leading() bool { return c.writer.leading() }

// Status returns the status computed by the last translation (what the
// leader writes back), for display such as the admin /debug/status.
func (c *Controller) Status() gatewayapi.Status {
	c.statusMu.Lock()
	defer c.statusMu.Unlock()
	return c.lastState
}

// Stats returns the controller's counters.
func (c *Controller) Stats() Stats {
	s := &c.stats
	return Stats{
		Rebuilds: s.rebuilds.Load(), Unchanged: s.unchanged.Load(), Applies: s.applies.Load(),
		ApplySkipped: s.applySkipped.Load(), EndpointUpdates: s.endpointUpdates.Load(),
		StatusWrites: s.statusWrites.Load(), StatusConflicts: s.statusConflicts.Load(),
		StatusErrors: s.statusErrors.Load(), Events: s.events.Load(),
	}
}

// discover checks which Gateway API kinds the cluster serves.
func (c *Controller) discover() error {
	rl, err := c.kube.Discovery().ServerResourcesForGroupVersion(gatewayGroupVersion)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("kube: %s is not served: install the Gateway API CRDs (see deploy/README.md)", gatewayGroupVersion)
		}
		return fmt.Errorf("kube: discovering %s: %w", gatewayGroupVersion, err)
	}
	have := map[string]bool{}
	for _, r := range rl.APIResources {
		have[r.Name] = true
	}
	for _, r := range []string{"gatewayclasses", "gateways", "httproutes"} {
		if !have[r] {
			return fmt.Errorf("kube: %s %s is not served: install the Gateway API CRDs (see deploy/README.md)", gatewayGroupVersion, r)
		}
	}
	c.served = servedKinds{
		referenceGrants:    have["referencegrants"],
		backendTLSPolicies: have["backendtlspolicies"],
		listenerSets:       have["listenersets"],
		tlsRoutes:          have["tlsroutes"],
		tcpRoutes:          have["tcproutes"],
		udpRoutes:          have["udproutes"],
		grpcRoutes:         have["grpcroutes"],
	}
	return nil
}

// lastAppliedAnnotation is kubectl's copy of the applied object: large and
// never read.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// stripObject is the informers' transform: it drops managedFields and
// kubectl's last-applied annotation before objects are cached.
func stripObject(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
		if a := m.GetAnnotations(); a != nil {
			if _, ok := a[lastAppliedAnnotation]; ok {
				a = maps.Clone(a)
				delete(a, lastAppliedAnnotation)
				m.SetAnnotations(a)
			}
		}
	}
	return obj, nil
}

// stripMetadata is the metadata informers' transform: only the identity
// and resourceVersion of Secrets and ConfigMaps are kept.
func stripMetadata(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
		m.SetAnnotations(nil)
		m.SetLabels(nil)
		m.SetOwnerReferences(nil)
		m.SetFinalizers(nil)
	}
	return obj, nil
}

// sliceIndex indexes EndpointSlices by "namespace/service".
const sliceIndex = "service"

func sliceService(obj any) ([]string, error) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	name := s.Labels[serviceNameLabel]
	if name == "" {
		return nil, nil
	}
	return []string{s.Namespace + "/" + name}, nil
}

func (c *Controller) setupInformers() error {
	c.coreF = informers.NewSharedInformerFactoryWithOptions(c.kube, 0, informers.WithTransform(stripObject))
	c.gwF = gwinformers.NewSharedInformerFactoryWithOptions(c.gw, 0, gwinformers.WithTransform(stripObject))
	c.metaF = metadatainformer.NewSharedInformerFactoryWithOptions(c.meta, 0, metadatainformer.WithTransform(stripMetadata))

	full := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.co.markFull(time.Now()) },
		UpdateFunc: func(o, n any) { c.onCoreUpdate(o, n) },
		DeleteFunc: func(any) { c.co.markFull(time.Now()) },
	}
	var errs []error
	add := func(inf cache.SharedIndexInformer, h cache.ResourceEventHandler) {
		if _, err := inf.AddEventHandler(h); err != nil {
			errs = append(errs, err)
		}
	}
	// watchStatus watches a kind whose status rauta writes; the status
	// writer reads its cache.
	watchStatus := func(kind objKind, inf cache.SharedIndexInformer) {
		add(inf, c.gwHandler(kind))
		c.writer.serve(kind, inf.GetIndexer())
	}

	g := c.gwF.Gateway().V1()
	watchStatus(kindGatewayClass, g.GatewayClasses().Informer())
	add(g.GatewayClasses().Informer(), c.infra.classHandler())
	c.classes = g.GatewayClasses().Lister()
	watchStatus(kindGateway, g.Gateways().Informer())
	add(g.Gateways().Informer(), c.infra.gatewayHandler())
	c.gateways = g.Gateways().Lister()
	watchStatus(kindHTTPRoute, g.HTTPRoutes().Informer())
	c.routes = g.HTTPRoutes().Lister()
	if c.served.referenceGrants {
		add(g.ReferenceGrants().Informer(), full)
		c.grants = g.ReferenceGrants().Lister()
	}
	if c.served.backendTLSPolicies {
		watchStatus(kindBackendTLSPolicy, g.BackendTLSPolicies().Informer())
		c.policies = g.BackendTLSPolicies().Lister()
	}
	if c.served.listenerSets {
		watchStatus(kindListenerSet, g.ListenerSets().Informer())
		c.lsets = g.ListenerSets().Lister()
	}
	if c.served.tlsRoutes {
		watchStatus(kindTLSRoute, g.TLSRoutes().Informer())
		c.tlsRoutes = g.TLSRoutes().Lister()
	}
	if c.served.tcpRoutes {
		watchStatus(kindTCPRoute, g.TCPRoutes().Informer())
		c.tcpRoutes = g.TCPRoutes().Lister()
	}
	if c.served.udpRoutes {
		watchStatus(kindUDPRoute, g.UDPRoutes().Informer())
		c.udpRoutes = g.UDPRoutes().Lister()
	}
	if c.served.grpcRoutes {
		watchStatus(kindGRPCRoute, g.GRPCRoutes().Informer())
		c.grpcRoutes = g.GRPCRoutes().Lister()
	}

	add(c.coreF.Core().V1().Services().Informer(), full)
	add(c.coreF.Core().V1().Services().Informer(), c.infra.serviceHandler())
	c.services = c.coreF.Core().V1().Services().Lister()
	add(c.coreF.Core().V1().Namespaces().Informer(), full)
	c.nsLister = c.coreF.Core().V1().Namespaces().Lister()
	sliceInf := c.coreF.Discovery().V1().EndpointSlices().Informer()
	if err := sliceInf.AddIndexers(cache.Indexers{sliceIndex: sliceService}); err != nil {
		errs = append(errs, err)
	}
	add(sliceInf, cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { c.onSlice(obj) },
		UpdateFunc: func(o, n any) {
			os, ok1 := o.(*discoveryv1.EndpointSlice)
			ns, ok2 := n.(*discoveryv1.EndpointSlice)
			if ok1 && ok2 && os.ResourceVersion == ns.ResourceVersion {
				return
			}
			c.onSlice(n)
			if ok1 && ok2 && os.Labels[serviceNameLabel] != ns.Labels[serviceNameLabel] {
				c.onSlice(o)
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			c.onSlice(obj)
		},
	})
	c.slices = sliceInf.GetIndexer()

	secretInf := c.metaF.ForResource(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}).Informer()
	cmInf := c.metaF.ForResource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Informer()
	c.refs = newRefStore(c.kube, secretInf.GetIndexer(), cmInf.GetIndexer())
	add(secretInf, c.refHandler(refSecret))
	add(cmInf, c.refHandler(refConfigMap))
	return errors.Join(errs...)
}

// gwHandler returns the event handler of a kind whose status rauta
// writes: a change marks the state dirty unless only the status changed,
// and queues the object's status for a check.
func (c *Controller) gwHandler(kind objKind) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			c.co.markFull(time.Now())
			c.writer.observe(kind, obj)
		},
		UpdateFunc: func(o, n any) {
			if specChanged(o, n) {
				c.co.markFull(time.Now())
			}
			c.writer.observe(kind, n)
		},
		DeleteFunc: func(any) { c.co.markFull(time.Now()) },
	}
}

// onCoreUpdate marks the state dirty unless the update is a resync.
func (c *Controller) onCoreUpdate(o, n any) {
	om, ok1 := o.(metav1.Object)
	nm, ok2 := n.(metav1.Object)
	if ok1 && ok2 && om.GetResourceVersion() == nm.GetResourceVersion() {
		return
	}
	c.co.markFull(time.Now())
}

// specChanged reports whether an update of a Gateway API object changed
// what the translator reads: its generation (the spec), labels,
// annotations or deletion. Status-only updates (ours included) do not.
func specChanged(o, n any) bool {
	om, ok1 := o.(metav1.Object)
	nm, ok2 := n.(metav1.Object)
	if !ok1 || !ok2 {
		return true
	}
	if om.GetResourceVersion() == nm.GetResourceVersion() {
		return false
	}
	return om.GetGeneration() != nm.GetGeneration() ||
		!maps.Equal(om.GetLabels(), nm.GetLabels()) ||
		!maps.Equal(om.GetAnnotations(), nm.GetAnnotations()) ||
		!om.GetDeletionTimestamp().Equal(nm.GetDeletionTimestamp())
}

func (c *Controller) onSlice(obj any) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	if name := s.Labels[serviceNameLabel]; name != "" {
		c.co.markEndpoints(serviceKey{s.Namespace, name}, time.Now())
	}
}

// refHandler marks the state dirty when a referenced Secret or ConfigMap
// changes.
func (c *Controller) refHandler(kind refKind) cache.ResourceEventHandler {
	check := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		m, ok := obj.(metav1.Object)
		if ok && c.refs.referenced(refKey{kind, m.GetNamespace(), m.GetName()}) {
			c.co.markFull(time.Now())
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: check,
		UpdateFunc: func(o, n any) {
			om, ok1 := o.(metav1.Object)
			nm, ok2 := n.(metav1.Object)
			if ok1 && ok2 && om.GetResourceVersion() == nm.GetResourceVersion() {
				return
			}
			check(n)
		},
		DeleteFunc: check,
	}
}

// loop runs the rebuilds and endpoint updates until ctx is done.
func (c *Controller) loop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		full, eps, wait := c.co.take(time.Now())
		switch {
		case full:
			c.rebuild(ctx)
			continue
		case eps != nil:
			c.updateEndpoints(eps)
			continue
		}
		var fire <-chan time.Time
		if wait >= 0 {
			timer.Reset(wait)
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-c.co.wake:
		case <-fire:
		}
		timer.Stop()
	}
}

// fingerprint identifies a set of object versions: the sum of a hash of
// each object's UID and resourceVersion, and their count. The sum makes it
// independent of order.
type fingerprint struct {
	sum uint64
	n   int
}

func (f *fingerprint) add(seed maphash.Seed, kind byte, o metav1.Object) {
	var h maphash.Hash
	h.SetSeed(seed)
	h.WriteByte(kind)
	h.WriteString(string(o.GetUID()))
	h.WriteByte(0)
	h.WriteString(o.GetResourceVersion())
	f.sum += h.Sum64()
	f.n++
}

// collect copies listed objects into values, adding them to fp.
func collect[T any, PT interface {
	*T
	metav1.Object
}](items []PT, kind byte, seed maphash.Seed, fp *fingerprint) []T {
	out := make([]T, len(items))
	for i, p := range items {
		out[i] = *p
		fp.add(seed, kind, p)
	}
	return out
}

// snapshot reads the Resources from the caches.
func (c *Controller) snapshot(ctx context.Context) (*gatewayapi.Resources, fingerprint, error) {
	var fp fingerprint
	s, all := c.fpSeed, labels.Everything()
	res := &gatewayapi.Resources{}
	classes, _ := c.classes.List(all)
	res.GatewayClasses = collect(classes, 1, s, &fp)
	gws, _ := c.gateways.List(all)
	res.Gateways = collect(gws, 2, s, &fp)
	routes, _ := c.routes.List(all)
	res.HTTPRoutes = collect(routes, 3, s, &fp)
	if c.grants != nil {
		l, _ := c.grants.List(all)
		res.ReferenceGrants = collect(l, 4, s, &fp)
	}
	if c.policies != nil {
		l, _ := c.policies.List(all)
		res.BackendTLSPolicies = collect(l, 5, s, &fp)
	}
	if c.lsets != nil {
		l, _ := c.lsets.List(all)
		res.ListenerSets = collect(l, 6, s, &fp)
	}
	if c.tlsRoutes != nil {
		l, _ := c.tlsRoutes.List(all)
		res.TLSRoutes = collect(l, 16, s, &fp)
	}
	if c.tcpRoutes != nil {
		l, _ := c.tcpRoutes.List(all)
		res.TCPRoutes = collect(l, 17, s, &fp)
	}
	if c.udpRoutes != nil {
		l, _ := c.udpRoutes.List(all)
		res.UDPRoutes = collect(l, 18, s, &fp)
	}
	if c.grpcRoutes != nil {
		l, _ := c.grpcRoutes.List(all)
		res.GRPCRoutes = collect(l, 15, s, &fp)
	}
	c.snapshotPolicies(res, &fp)
	svcs, _ := c.services.List(all)
	res.Services = collect(svcs, 7, s, &fp)
	nss, _ := c.nsLister.List(all)
	res.Namespaces = collect(nss, 8, s, &fp)
	for _, o := range c.slices.List() {
		if es, ok := o.(*discoveryv1.EndpointSlice); ok {
			res.EndpointSlices = append(res.EndpointSlices, *es)
			fp.add(s, 9, es)
		}
	}
	secrets, cms, err := c.refs.load(ctx, references(c.controller, res))
	res.Secrets, res.ConfigMaps = secrets, cms
	for i := range secrets {
		fp.add(s, 10, &secrets[i])
	}
	for i := range cms {
		fp.add(s, 11, &cms[i])
	}
	return res, fp, err
}

// rebuild translates the caches' state and applies the result when it
// differs from what the proxy serves.
func (c *Controller) rebuild(ctx context.Context) {
	c.stats.rebuilds.Add(1)
	began := time.Now()
	res, fp, err := c.snapshot(ctx)
	if err != nil {
		// Serve what could be read; try again shortly.
		c.log.Warn("reading referenced objects", "error", err)
		time.AfterFunc(c.opts.MaxDelay, func() { c.co.markFull(time.Now()) })
	}
	if c.firstDone && fp == c.lastFP && err == nil {
		c.stats.unchanged.Add(1)
		return
	}
	c.lastFP = fp
	result := gatewayapi.Translate(res, c.opts.Translate)
	c.statusMu.Lock()
	c.lastState, c.lastRes = result.Status, res
	c.statusMu.Unlock()
	c.writer.setDesired(result.Status)

	if c.applied && reflect.DeepEqual(result.Config, c.current) {
		c.stats.applySkipped.Add(1)
	} else {
		err := c.opts.Proxy.Apply(result.Config)
		var aerr *proxy.ApplyError
		switch {
		case err == nil:
		case errors.As(err, &aerr):
			c.log.Warn("configuration partly applied", "error", err)
		default:
			c.log.Error("configuration rejected; the previous one stays", "error", err)
		}
		if err == nil || aerr != nil {
			c.stats.applies.Add(1)
			c.current, c.applied = result.Config, true
			c.indexBackends()
			c.log.Debug("configuration applied", "generation", c.opts.Proxy.Generation(),
				"listeners", len(result.Config.Listeners), "routes", len(result.Config.Routes),
				"backends", len(result.Config.Backends), "took", time.Since(began).String())
		}
	}
	c.firstDone = true
	c.ready.Store(true)
}

// indexBackends maps Services to the backends of the current Config, whose
// names gatewayapi.BackendName ("namespace/service:port") or
// gatewayapi.ClientCertificateBackendName made.
func (c *Controller) indexBackends() {
	c.bySvc = make(map[serviceKey][]svcBackend)
	for i, b := range c.current.Backends {
		ns, svc, port, ok := gatewayapi.ParseBackendName(b.Name)
		if !ok {
			continue
		}
		k := serviceKey{ns, svc}
		c.bySvc[k] = append(c.bySvc[k], svcBackend{name: b.Name, port: port, index: i})
	}
}

// updateEndpoints is the fast path: it recomputes the endpoints of the
// backends of the given Services from their EndpointSlices and hands those
// that changed to Proxy.UpdateEndpoints, without translating.
func (c *Controller) updateEndpoints(keys []serviceKey) {
	cloned := false
	for _, k := range keys {
		bes := c.bySvc[k]
		if len(bes) == 0 {
			continue
		}
		svc, err := c.services.Services(k.namespace).Get(k.name)
		if err != nil {
			// A deleted Service is a full rebuild's business.
			continue
		}
		objs, _ := c.slices.ByIndex(sliceIndex, k.namespace+"/"+k.name)
		eps := make([]discoveryv1.EndpointSlice, 0, len(objs))
		for _, o := range objs {
			if s, ok := o.(*discoveryv1.EndpointSlice); ok {
				eps = append(eps, *s)
			}
		}
		for _, b := range bes {
			got := gatewayapi.Endpoints(svc, b.port, eps)
			if got == nil {
				got = []upstream.Endpoint{}
			}
			if slices.Equal(got, c.current.Backends[b.index].Endpoints) {
				continue
			}
			if err := c.opts.Proxy.UpdateEndpoints(b.name, got); err != nil {
				c.log.Warn("updating endpoints; rebuilding", "backend", b.name, "error", err)
				c.co.markFull(time.Now())
				continue
			}
			// The Config handed to the proxy must not change: copy the
			// backends before recording the new endpoints.
			if !cloned {
				c.current.Backends = slices.Clone(c.current.Backends)
				cloned = true
			}
			c.current.Backends[b.index].Endpoints = got
			c.stats.endpointUpdates.Add(1)
			c.log.Debug("endpoints updated", "backend", b.name, "endpoints", len(got))
		}
	}
}
