package kube

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/util/workqueue"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayxv1alpha1 "sigs.k8s.io/gateway-api/apisx/v1alpha1"

	"github.com/rauta/rauta/gatewayapi"
)

// fieldManager names rauta in managedFields.
const fieldManager = "rauta"

// objKind is a kind of object whose status rauta writes.
type objKind uint8

const (
	kindGatewayClass objKind = iota
	kindGateway
	kindListenerSet
	kindHTTPRoute
	kindBackendTLSPolicy
	kindBackendPolicy
	kindTrafficPolicy
	kindXBackendTrafficPolicy
)

// String returns the Kubernetes kind.
func (k objKind) String() string {
	switch k {
	case kindGatewayClass:
		return "GatewayClass"
	case kindGateway:
		return "Gateway"
	case kindListenerSet:
		return "ListenerSet"
	case kindHTTPRoute:
		return "HTTPRoute"
	case kindBackendTLSPolicy:
		return "BackendTLSPolicy"
	case kindBackendPolicy:
		return "BackendPolicy"
	case kindTrafficPolicy:
		return "TrafficPolicy"
	case kindXBackendTrafficPolicy:
		return "XBackendTrafficPolicy"
	}
	return fmt.Sprintf("objKind(%d)", uint8(k))
}

// apiVersion returns the kind's API group version.
func (k objKind) apiVersion() string {
	switch k {
	case kindBackendPolicy, kindTrafficPolicy:
		return rautaGroupVersion.String()
	case kindXBackendTrafficPolicy:
		return gatewayxv1alpha1.SchemeGroupVersion.String()
	}
	return gatewayGroupVersion
}

// objKey names an object whose status rauta writes.
type objKey struct {
	kind            objKind
	namespace, name string
}

// desired is the status the translator computed for one object.
type desired struct {
	generation int64
	status     any // gatewayv1.GatewayClassStatus, GatewayStatus, ListenerSetStatus, HTTPRouteStatus or PolicyStatus
}

// statusWriter writes the translator's status back while its replica holds
// the Lease. Keys go through a rate-limited workqueue: a key is written
// when the object's stored status differs from the desired one (merged
// with the stored transition times and other controllers' entries), and a
// conflict puts the key back with a per-key exponential backoff, the retry
// reading the object from the API server rather than the cache.
type statusWriter struct {
	c   *Controller
	now func() time.Time

	mu      sync.Mutex
	want    map[objKey]desired
	have    bool // want holds a translation
	queue   workqueue.TypedRateLimitingInterface[objKey]
	termMu  sync.Mutex // one leadership term at a time
	maxFail int
}

func newStatusWriter(c *Controller) *statusWriter {
	return &statusWriter{c: c, now: time.Now, want: map[objKey]desired{}, maxFail: 15}
}

// leading reports whether the writer is in a leadership term.
func (w *statusWriter) leading() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.queue != nil
}

// setDesired records a translation's status and queues the objects whose
// desired status changed or disappeared.
func (w *statusWriter) setDesired(st gatewayapi.Status) {
	next := make(map[objKey]desired, len(st.GatewayClasses)+len(st.Gateways)+len(st.ListenerSets)+len(st.HTTPRoutes)+
		len(st.BackendTLSPolicies)+len(st.BackendPolicies)+len(st.TrafficPolicies)+len(st.XBackendTrafficPolicies))
	for _, s := range st.GatewayClasses {
		next[objKey{kindGatewayClass, "", s.Name}] = desired{s.Generation, s.Status}
	}
	for _, s := range st.Gateways {
		next[objKey{kindGateway, s.Namespace, s.Name}] = desired{s.Generation, s.Status}
	}
	for _, s := range st.ListenerSets {
		next[objKey{kindListenerSet, s.Namespace, s.Name}] = desired{s.Generation, s.Status}
	}
	for _, s := range st.HTTPRoutes {
		next[objKey{kindHTTPRoute, s.Namespace, s.Name}] = desired{s.Generation, s.Status}
	}
	for kind, list := range map[objKind][]gatewayapi.PolicyStatus{
		kindBackendTLSPolicy:      st.BackendTLSPolicies,
		kindBackendPolicy:         st.BackendPolicies,
		kindTrafficPolicy:         st.TrafficPolicies,
		kindXBackendTrafficPolicy: st.XBackendTrafficPolicies,
	} {
		for _, s := range list {
			next[objKey{kind, s.Namespace, s.Name}] = desired{s.Generation, s.Status}
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	prev, first := w.want, !w.have
	w.want, w.have = next, true
	if w.queue == nil {
		return
	}
	if first {
		w.enqueueAll(w.queue)
		return
	}
	for k, d := range next {
		if p, ok := prev[k]; !ok || p.generation != d.generation || !apiequality.Semantic.DeepEqual(p.status, d.status) {
			w.queue.Add(k)
		}
	}
	for k := range prev {
		if _, ok := next[k]; !ok {
			w.queue.Add(k)
		}
	}
}

// enqueueAll queues every object with a desired status and every route and
// policy that holds an entry of this controller. Called with mu held.
func (w *statusWriter) enqueueAll(q workqueue.TypedRateLimitingInterface[objKey]) {
	for k := range w.want {
		q.Add(k)
	}
	routes, _ := w.c.routes.List(labels.Everything())
	for _, r := range routes {
		if hasRouteParent(r.Status.Parents, w.c.controller) {
			q.Add(objKey{kindHTTPRoute, r.Namespace, r.Name})
		}
	}
	if w.c.policies != nil {
		pols, _ := w.c.policies.List(labels.Everything())
		for _, p := range pols {
			if hasPolicyAncestor(p.Status.Ancestors, w.c.controller) {
				q.Add(objKey{kindBackendTLSPolicy, p.Namespace, p.Name})
			}
		}
	}
	for _, pk := range w.c.dynKinds {
		w.enqueueOwnedPolicies(q, pk)
	}
}

// observe queues an object whose informer reported a change, so that a
// status overwritten by someone else is written again.
func (w *statusWriter) observe(kind objKind, obj any) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.queue != nil && w.have {
		w.queue.Add(objKey{kind, m.GetNamespace(), m.GetName()})
	}
}

// lead runs one leadership term: status workers until ctx is done.
func (w *statusWriter) lead(ctx context.Context) {
	w.termMu.Lock()
	defer w.termMu.Unlock()
	q := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[objKey](10*time.Millisecond, 30*time.Second),
		workqueue.TypedRateLimitingQueueConfig[objKey]{},
	)
	w.mu.Lock()
	w.queue = q
	if w.have {
		w.enqueueAll(q)
	}
	w.mu.Unlock()
	w.c.log.Info("leading: writing status", "lease", w.c.opts.LeaseNamespace+"/"+w.c.opts.LeaseName, "identity", w.c.opts.Identity)

	var wg sync.WaitGroup
	for range w.c.opts.StatusWorkers {
		wg.Go(func() {
			for w.next(ctx, q) {
			}
		})
	}
	<-ctx.Done()
	w.mu.Lock()
	w.queue = nil
	w.mu.Unlock()
	q.ShutDown()
	wg.Wait()
	w.c.log.Info("stopped leading")
}

// next processes one key; it returns false once the queue is shut down.
func (w *statusWriter) next(ctx context.Context, q workqueue.TypedRateLimitingInterface[objKey]) bool {
	key, shutdown := q.Get()
	if shutdown {
		return false
	}
	defer q.Done(key)
	err := w.process(ctx, key, q.NumRequeues(key) > 0)
	st := &w.c.stats
	switch {
	case err == nil, ctx.Err() != nil, apierrors.IsNotFound(err):
		q.Forget(key)
	case apierrors.IsConflict(err):
		st.statusConflicts.Add(1)
		w.c.log.Debug("status conflict; retrying", "kind", key.kind.String(), "namespace", key.namespace, "name", key.name)
		q.AddRateLimited(key)
	default:
		st.statusErrors.Add(1)
		if q.NumRequeues(key) < w.maxFail {
			w.c.log.Warn("writing status; retrying", "kind", key.kind.String(), "namespace", key.namespace, "name", key.name, "error", err)
			q.AddRateLimited(key)
		} else {
			w.c.log.Error("writing status; giving up until the object changes", "kind", key.kind.String(), "namespace", key.namespace, "name", key.name, "error", err)
			q.Forget(key)
		}
	}
	return true
}

// process writes one object's status if it differs from the desired one.
// live makes it read the object from the API server (after a conflict).
func (w *statusWriter) process(ctx context.Context, key objKey, live bool) error {
	w.mu.Lock()
	d, ok := w.want[key]
	have := w.have
	w.mu.Unlock()
	if !have {
		return nil
	}
	now := metav1.NewTime(w.now().Truncate(time.Second))
	switch key.kind {
	case kindGatewayClass:
		return w.gatewayClass(ctx, key, d, ok, live, now)
	case kindGateway:
		return w.gateway(ctx, key, d, ok, live, now)
	case kindListenerSet:
		return w.listenerSet(ctx, key, d, ok, live, now)
	case kindHTTPRoute:
		return w.route(ctx, key, d, ok, live, now)
	case kindBackendTLSPolicy:
		return w.policy(ctx, key, d, ok, live, now)
	case kindBackendPolicy, kindTrafficPolicy, kindXBackendTrafficPolicy:
		return w.dynamicPolicy(ctx, key, d, ok, live, now)
	}
	return nil
}

func (w *statusWriter) ours(className string) bool {
	gc, err := w.c.classes.Get(className)
	return err == nil && gc.Spec.ControllerName == w.c.controller
}

func (w *statusWriter) gatewayClass(ctx context.Context, key objKey, d desired, ok, live bool, now metav1.Time) error {
	if !ok {
		return nil
	}
	api := w.c.gw.GatewayV1().GatewayClasses()
	var obj *gatewayv1.GatewayClass
	var err error
	if live {
		obj, err = api.Get(ctx, key.name, metav1.GetOptions{})
	} else {
		obj, err = w.c.classes.Get(key.name)
	}
	if err != nil {
		return err
	}
	if obj.Generation != d.generation || obj.Spec.ControllerName != w.c.controller {
		return nil
	}
	merged := mergeGatewayClassStatus(obj.Status, d.status.(gatewayv1.GatewayClassStatus), now)
	if apiequality.Semantic.DeepEqual(obj.Status, merged) {
		return nil
	}
	probs := newProblems("", obj.Status.Conditions, merged.Conditions)
	cp := obj.DeepCopy()
	cp.Status = merged
	if _, err := api.UpdateStatus(ctx, cp, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
		return err
	}
	w.written(ctx, key, obj.UID, probs)
	return nil
}

func (w *statusWriter) gateway(ctx context.Context, key objKey, d desired, ok, live bool, now metav1.Time) error {
	if !ok {
		return nil
	}
	api := w.c.gw.GatewayV1().Gateways(key.namespace)
	var obj *gatewayv1.Gateway
	var err error
	if live {
		obj, err = api.Get(ctx, key.name, metav1.GetOptions{})
	} else {
		obj, err = w.c.gateways.Gateways(key.namespace).Get(key.name)
	}
	if err != nil {
		return err
	}
	if obj.Generation != d.generation || !w.ours(string(obj.Spec.GatewayClassName)) {
		return nil
	}
	merged := mergeGatewayStatus(obj.Status, d.status.(gatewayv1.GatewayStatus), now)
	if apiequality.Semantic.DeepEqual(obj.Status, merged) {
		return nil
	}
	probs := newProblems("", obj.Status.Conditions, merged.Conditions)
	for _, l := range merged.Listeners {
		var prev []metav1.Condition
		for _, s := range obj.Status.Listeners {
			if s.Name == l.Name {
				prev = s.Conditions
			}
		}
		probs = append(probs, newProblems(fmt.Sprintf("listener %q", l.Name), prev, l.Conditions)...)
	}
	cp := obj.DeepCopy()
	cp.Status = merged
	if _, err := api.UpdateStatus(ctx, cp, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
		return err
	}
	w.written(ctx, key, obj.UID, probs)
	return nil
}

func (w *statusWriter) listenerSet(ctx context.Context, key objKey, d desired, ok, live bool, now metav1.Time) error {
	if !ok || w.c.lsets == nil {
		return nil
	}
	api := w.c.gw.GatewayV1().ListenerSets(key.namespace)
	var obj *gatewayv1.ListenerSet
	var err error
	if live {
		obj, err = api.Get(ctx, key.name, metav1.GetOptions{})
	} else {
		obj, err = w.c.lsets.ListenerSets(key.namespace).Get(key.name)
	}
	if err != nil {
		return err
	}
	if obj.Generation != d.generation {
		return nil
	}
	merged := mergeListenerSetStatus(obj.Status, d.status.(gatewayv1.ListenerSetStatus), now)
	if apiequality.Semantic.DeepEqual(obj.Status, merged) {
		return nil
	}
	probs := newProblems("", obj.Status.Conditions, merged.Conditions)
	for _, l := range merged.Listeners {
		var prev []metav1.Condition
		for _, s := range obj.Status.Listeners {
			if s.Name == l.Name {
				prev = s.Conditions
			}
		}
		probs = append(probs, newProblems(fmt.Sprintf("listener %q", l.Name), prev, l.Conditions)...)
	}
	cp := obj.DeepCopy()
	cp.Status = merged
	if _, err := api.UpdateStatus(ctx, cp, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
		return err
	}
	w.written(ctx, key, obj.UID, probs)
	return nil
}

func (w *statusWriter) route(ctx context.Context, key objKey, d desired, ok, live bool, now metav1.Time) error {
	api := w.c.gw.GatewayV1().HTTPRoutes(key.namespace)
	var obj *gatewayv1.HTTPRoute
	var err error
	if live {
		obj, err = api.Get(ctx, key.name, metav1.GetOptions{})
	} else {
		obj, err = w.c.routes.HTTPRoutes(key.namespace).Get(key.name)
	}
	if err != nil {
		return err
	}
	var want []gatewayv1.RouteParentStatus
	if ok {
		if obj.Generation != d.generation {
			return nil
		}
		want = d.status.(gatewayv1.HTTPRouteStatus).Parents
	} else if !hasRouteParent(obj.Status.Parents, w.c.controller) {
		return nil
	}
	merged := mergeRouteParents(obj.Status.Parents, want, w.c.controller, now)
	if apiequality.Semantic.DeepEqual(obj.Status.Parents, merged) {
		return nil
	}
	var probs []problem
	for _, p := range merged {
		if p.ControllerName != w.c.controller {
			continue
		}
		var prev []metav1.Condition
		if s := routeParents.find(obj.Status.Parents, &p); s != nil {
			prev = s.Conditions
		}
		probs = append(probs, newProblems("parentRef "+parentName(p.ParentRef, obj.Namespace), prev, p.Conditions)...)
	}
	cp := obj.DeepCopy()
	cp.Status.Parents = merged
	if _, err := api.UpdateStatus(ctx, cp, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
		return err
	}
	w.written(ctx, key, obj.UID, probs)
	return nil
}

func (w *statusWriter) policy(ctx context.Context, key objKey, d desired, ok, live bool, now metav1.Time) error {
	if w.c.policies == nil {
		return nil
	}
	api := w.c.gw.GatewayV1().BackendTLSPolicies(key.namespace)
	var obj *gatewayv1.BackendTLSPolicy
	var err error
	if live {
		obj, err = api.Get(ctx, key.name, metav1.GetOptions{})
	} else {
		obj, err = w.c.policies.BackendTLSPolicies(key.namespace).Get(key.name)
	}
	if err != nil {
		return err
	}
	merged, probs, write := w.mergeAncestors(key.kind, obj.Status.Ancestors, obj.Generation, obj.Namespace, d, ok, now)
	if !write {
		return nil
	}
	cp := obj.DeepCopy()
	cp.Status.Ancestors = merged
	if _, err := api.UpdateStatus(ctx, cp, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
		return err
	}
	w.written(ctx, key, obj.UID, probs)
	return nil
}

// parentName renders a parentRef as namespace/name[/section].
func parentName(p gatewayv1.ParentReference, defaultNS string) string {
	ns := defaultNS
	if p.Namespace != nil && *p.Namespace != "" {
		ns = string(*p.Namespace)
	}
	s := ns + "/" + string(p.Name)
	if p.SectionName != nil && *p.SectionName != "" {
		s += "/" + string(*p.SectionName)
	}
	return s
}

// written counts a status write and records an Event for each new problem.
func (w *statusWriter) written(ctx context.Context, key objKey, uid types.UID, probs []problem) {
	w.c.stats.statusWrites.Add(1)
	if w.c.log.Enabled(ctx, slog.LevelDebug) {
		var ps []string
		for _, p := range probs {
			ps = append(ps, p.where+" "+p.cond.Type+"="+string(p.cond.Status)+" "+p.cond.Reason)
		}
		w.c.log.Debug("status written", "kind", key.kind.String(), "namespace", key.namespace, "name", key.name, "problems", ps)
	}
	for _, p := range probs {
		w.event(ctx, key, uid, p)
	}
}

// event records a Warning Event about a configuration problem on the
// object. Events of cluster-scoped objects go to the default namespace, as
// client-go's recorder does.
func (w *statusWriter) event(ctx context.Context, key objKey, uid types.UID, p problem) {
	ns := key.namespace
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	msg := fmt.Sprintf("%s=%s: %s", p.cond.Type, p.cond.Status, p.cond.Message)
	if p.where != "" {
		msg = p.where + ": " + msg
	}
	const maxMessage = 1024
	if len(msg) > maxMessage {
		msg = strings.ToValidUTF8(msg[:maxMessage], "")
	}
	t := metav1.NewTime(w.now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("%s.%x", key.name, t.UnixNano()),
			Namespace: ns,
		},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: key.kind.apiVersion(),
			Kind:       key.kind.String(),
			Namespace:  key.namespace,
			Name:       key.name,
			UID:        uid,
		},
		Reason:         p.cond.Reason,
		Message:        msg,
		Type:           corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: string(w.c.controller)},
		FirstTimestamp: t,
		LastTimestamp:  t,
		Count:          1,
	}
	if _, err := w.c.kube.CoreV1().Events(ns).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		w.c.log.Warn("recording an event", "kind", key.kind.String(), "namespace", key.namespace, "name", key.name, "reason", p.cond.Reason, "error", err)
		return
	}
	w.c.stats.events.Add(1)
}

// elect campaigns for the Lease until ctx is done, running a leadership
// term of the status writer whenever it holds it.
func (c *Controller) elect(ctx context.Context) {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: c.opts.LeaseNamespace, Name: c.opts.LeaseName},
		Client:     c.kube.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: c.opts.Identity},
	}
	for ctx.Err() == nil {
		// A term runs in the goroutine the elector starts; make sure it
		// has ended (or will never begin) before campaigning again or
		// returning.
		var claimed atomic.Bool
		var term sync.WaitGroup
		term.Add(1)
		var once sync.Once
		endTerm := func() { once.Do(term.Done) }
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   c.opts.LeaseDuration,
			RenewDeadline:   c.opts.RenewDeadline,
			RetryPeriod:     c.opts.RetryPeriod,
			ReleaseOnCancel: true,
			Name:            c.opts.LeaseName,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(lctx context.Context) {
					defer endTerm()
					if claimed.CompareAndSwap(false, true) {
						var wg sync.WaitGroup
						wg.Go(func() { c.infra.lead(lctx) })
						c.writer.lead(lctx)
						wg.Wait()
					}
				},
				OnStoppedLeading: func() {},
				OnNewLeader: func(id string) {
					if id != c.opts.Identity {
						c.log.Info("status is written by another replica", "leader", id)
					}
				},
			},
		})
		if err != nil {
			endTerm()
			c.log.Error("leader election misconfigured; status is not written", "error", err)
			return
		}
		le.Run(ctx)
		if claimed.CompareAndSwap(false, true) {
			endTerm()
		}
		term.Wait()
		if ctx.Err() == nil {
			c.log.Warn("lost the Lease; campaigning again")
			select {
			case <-ctx.Done():
			case <-time.After(c.opts.RetryPeriod):
			}
		}
	}
}
