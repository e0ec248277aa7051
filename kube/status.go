package kube

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/util/workqueue"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayxv1alpha1 "sigs.k8s.io/gateway-api/apisx/v1alpha1"
	gatewayv1client "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/typed/apis/v1"

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
	kindTLSRoute
	kindTCPRoute
	kindGRPCRoute
	kindUDPRoute
	numKinds // the number of kinds; not a kind
)

// kindNames are the Kubernetes kind and API group version of each objKind.
var kindNames = [numKinds]struct{ kind, apiVersion string }{
	kindGatewayClass:          {"GatewayClass", gatewayGroupVersion},
	kindGateway:               {"Gateway", gatewayGroupVersion},
	kindListenerSet:           {"ListenerSet", gatewayGroupVersion},
	kindHTTPRoute:             {"HTTPRoute", gatewayGroupVersion},
	kindBackendTLSPolicy:      {"BackendTLSPolicy", gatewayGroupVersion},
	kindBackendPolicy:         {"BackendPolicy", rautaGroupVersion.String()},
	kindTrafficPolicy:         {"TrafficPolicy", rautaGroupVersion.String()},
	kindXBackendTrafficPolicy: {"XBackendTrafficPolicy", gatewayxv1alpha1.SchemeGroupVersion.String()},
	kindTLSRoute:              {"TLSRoute", gatewayGroupVersion},
	kindTCPRoute:              {"TCPRoute", gatewayGroupVersion},
	kindGRPCRoute:             {"GRPCRoute", gatewayGroupVersion},
	kindUDPRoute:              {"UDPRoute", gatewayGroupVersion},
}

// String returns the Kubernetes kind.
func (k objKind) String() string {
	if k < numKinds {
		return kindNames[k].kind
	}
	return fmt.Sprintf("objKind(%d)", uint8(k))
}

// apiVersion returns the kind's API group version.
func (k objKind) apiVersion() string { return kindNames[k].apiVersion }

// objKey names an object whose status rauta writes.
type objKey struct {
	kind            objKind
	namespace, name string
}

// cacheKey is the key of the object in its informer's cache.
func (k objKey) cacheKey() string {
	if k.namespace == "" {
		return k.name
	}
	return k.namespace + "/" + k.name
}

// desired is the status the translator computed for one object.
type desired struct {
	generation int64
	// status is the whole status of the kinds whose status is rauta's
	// (gatewayv1.GatewayClassStatus, GatewayStatus, ListenerSetStatus),
	// and the list of rauta's own entries of the others: route parents
	// ([]gatewayv1.RouteParentStatus) or policy ancestors
	// ([]gatewayv1.PolicyAncestorStatus).
	status any
}

// statusWriter writes the translator's status back while its replica holds
// the Lease. Keys go through a rate-limited workqueue: a key is written
// when the object's stored status differs from the desired one (merged
// with the stored transition times and other controllers' entries), and a
// conflict puts the key back with a per-key exponential backoff, the retry
// reading the object from the API server rather than the cache.
//
// What differs between kinds is in [statusKind]: one generic writer,
// [wholeStatus] or [entryStatus], per kind, in [statusWriter.kinds].
type statusWriter struct {
	c   *Controller
	now func() time.Time

	// kinds are the writers of the kinds, by objKind; set by
	// newStatusWriter and never changed.
	kinds [numKinds]statusKind
	// caches are the informer caches of the kinds the cluster serves, by
	// objKind; nil for a kind not (yet) served.
	caches [numKinds]atomic.Pointer[cache.Indexer]

	mu      sync.Mutex
	want    map[objKey]desired
	have    bool // want holds a translation
	queue   workqueue.TypedRateLimitingInterface[objKey]
	termMu  sync.Mutex // one leadership term at a time
	maxFail int
}

func newStatusWriter(c *Controller) *statusWriter {
	w := &statusWriter{c: c, now: time.Now, want: map[objKey]desired{}, maxFail: 15}
	v1 := func() gatewayv1client.GatewayV1Interface { return c.gw.GatewayV1() }
	w.kinds = [numKinds]statusKind{
		kindGatewayClass: wholeStatus(w, kindGatewayClass,
			func(string) statusClient[*gatewayv1.GatewayClass] { return v1().GatewayClasses() },
			func(o *gatewayv1.GatewayClass) *gatewayv1.GatewayClassStatus { return &o.Status },
			func(o *gatewayv1.GatewayClass) bool { return o.Spec.ControllerName == c.controller },
			mergeGatewayClassStatus,
			func(stored, merged *gatewayv1.GatewayClassStatus) []problem {
				return newProblems("", stored.Conditions, merged.Conditions)
			}),
		kindGateway: wholeStatus(w, kindGateway,
			func(ns string) statusClient[*gatewayv1.Gateway] { return v1().Gateways(ns) },
			func(o *gatewayv1.Gateway) *gatewayv1.GatewayStatus { return &o.Status },
			func(o *gatewayv1.Gateway) bool { return w.ours(string(o.Spec.GatewayClassName)) },
			mergeGatewayStatus,
			func(stored, merged *gatewayv1.GatewayStatus) []problem {
				return append(newProblems("", stored.Conditions, merged.Conditions),
					listeners.problems(stored.Listeners, merged.Listeners, nil, func(l *gatewayv1.ListenerStatus) string { return fmt.Sprintf("listener %q", l.Name) })...)
			}),
		kindListenerSet: wholeStatus(w, kindListenerSet,
			func(ns string) statusClient[*gatewayv1.ListenerSet] { return v1().ListenerSets(ns) },
			func(o *gatewayv1.ListenerSet) *gatewayv1.ListenerSetStatus { return &o.Status },
			func(*gatewayv1.ListenerSet) bool { return true },
			mergeListenerSetStatus,
			func(stored, merged *gatewayv1.ListenerSetStatus) []problem {
				return append(newProblems("", stored.Conditions, merged.Conditions),
					listenerEntries.problems(stored.Listeners, merged.Listeners, nil, func(l *gatewayv1.ListenerEntryStatus) string { return fmt.Sprintf("listener %q", l.Name) })...)
			}),
		kindHTTPRoute: routeStatus(w, kindHTTPRoute,
			func(ns string) statusClient[*gatewayv1.HTTPRoute] { return v1().HTTPRoutes(ns) },
			func(o *gatewayv1.HTTPRoute) *[]gatewayv1.RouteParentStatus { return &o.Status.Parents }),
		kindTLSRoute: routeStatus(w, kindTLSRoute,
			func(ns string) statusClient[*gatewayv1.TLSRoute] { return v1().TLSRoutes(ns) },
			func(o *gatewayv1.TLSRoute) *[]gatewayv1.RouteParentStatus { return &o.Status.Parents }),
		kindTCPRoute: routeStatus(w, kindTCPRoute,
			func(ns string) statusClient[*gatewayv1.TCPRoute] { return v1().TCPRoutes(ns) },
			func(o *gatewayv1.TCPRoute) *[]gatewayv1.RouteParentStatus { return &o.Status.Parents }),
		kindUDPRoute: routeStatus(w, kindUDPRoute,
			func(ns string) statusClient[*gatewayv1.UDPRoute] { return v1().UDPRoutes(ns) },
			func(o *gatewayv1.UDPRoute) *[]gatewayv1.RouteParentStatus { return &o.Status.Parents }),
		kindGRPCRoute: routeStatus(w, kindGRPCRoute,
			func(ns string) statusClient[*gatewayv1.GRPCRoute] { return v1().GRPCRoutes(ns) },
			func(o *gatewayv1.GRPCRoute) *[]gatewayv1.RouteParentStatus { return &o.Status.Parents }),
		kindBackendTLSPolicy: entryStatus(w, kindBackendTLSPolicy,
			func(ns string) statusClient[*gatewayv1.BackendTLSPolicy] { return v1().BackendTLSPolicies(ns) },
			ancestorEntries(kindBackendTLSPolicy), fieldEntries(func(o *gatewayv1.BackendTLSPolicy) *[]gatewayv1.PolicyAncestorStatus { return &o.Status.Ancestors })),
	}
	for _, pk := range c.dynKinds {
		w.kinds[pk.kind] = entryStatus(w, pk.kind,
			func(ns string) statusClient[*unstructured.Unstructured] {
				return dynamicClient{c.dyn.Resource(pk.gvr).Namespace(ns)}
			},
			ancestorEntries(pk.kind), unstructuredAncestors)
	}
	return w
}

// serve makes the cache of an informer of kind visible to the writer.
func (w *statusWriter) serve(kind objKind, idx cache.Indexer) { w.caches[kind].Store(&idx) }

// leading reports whether the writer is in a leadership term.
func (w *statusWriter) leading() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.queue != nil
}

// setDesired records a translation's status and queues the objects whose
// desired status changed or disappeared.
func (w *statusWriter) setDesired(st gatewayapi.Status) {
	next := make(map[objKey]desired, len(st.GatewayClasses)+len(st.Gateways)+len(st.ListenerSets)+len(st.HTTPRoutes)+len(st.GRPCRoutes)+
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
		next[objKey{kindHTTPRoute, s.Namespace, s.Name}] = desired{s.Generation, s.Status.Parents}
	}
	for _, s := range st.TLSRoutes {
		next[objKey{kindTLSRoute, s.Namespace, s.Name}] = desired{s.Generation, s.Status.Parents}
	}
	for _, s := range st.TCPRoutes {
		next[objKey{kindTCPRoute, s.Namespace, s.Name}] = desired{s.Generation, s.Status.Parents}
	}
	for _, s := range st.GRPCRoutes {
		next[objKey{kindGRPCRoute, s.Namespace, s.Name}] = desired{s.Generation, s.Status.Parents}
	}
	for _, s := range st.UDPRoutes {
		next[objKey{kindUDPRoute, s.Namespace, s.Name}] = desired{s.Generation, s.Status.Parents}
	}
	for kind, list := range map[objKind][]gatewayapi.PolicyStatus{
		kindBackendTLSPolicy:      st.BackendTLSPolicies,
		kindBackendPolicy:         st.BackendPolicies,
		kindTrafficPolicy:         st.TrafficPolicies,
		kindXBackendTrafficPolicy: st.XBackendTrafficPolicies,
	} {
		for _, s := range list {
			next[objKey{kind, s.Namespace, s.Name}] = desired{s.Generation, s.Status.Ancestors}
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
	for _, k := range w.kinds {
		if k.enqueueOwned != nil {
			k.enqueueOwned(q.Add)
		}
	}
}

// enqueueOwned queues the cached objects of kind that hold an entry of
// this controller, so that entries the translator no longer wants are
// removed: called when the cache of a kind appears after the start.
func (w *statusWriter) enqueueOwned(kind objKind) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.queue != nil && w.have && w.kinds[kind].enqueueOwned != nil {
		w.kinds[kind].enqueueOwned(w.queue.Add)
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
	if !have || key.kind >= numKinds || w.kinds[key.kind].write == nil {
		return nil
	}
	now := metav1.NewTime(w.now().Truncate(time.Second))
	return w.kinds[key.kind].write(ctx, key, d, ok, live, now)
}

func (w *statusWriter) ours(className string) bool {
	gc, err := w.c.classes.Get(className)
	return err == nil && gc.Spec.ControllerName == w.c.controller
}

// statusKind is how the status writer handles one kind of object.
type statusKind struct {
	// write writes the status of the object key names if it differs from
	// the desired one d (ok is false when no status is desired), merged
	// with the stored one at time now; live reads the object from the API
	// server instead of the cache.
	write func(ctx context.Context, key objKey, d desired, ok, live bool, now metav1.Time) error
	// enqueueOwned queues the cached objects that hold an entry of this
	// controller; nil for the kinds whose status is rauta's alone.
	enqueueOwned func(add func(objKey))
}

// object is a Kubernetes object as a typed or the dynamic client gives it.
type object interface {
	metav1.Object
	runtime.Object
}

// statusClient reads objects of one kind from the API server and writes
// their status subresource. The typed clientsets' interfaces satisfy it;
// the dynamic client does through [dynamicClient].
type statusClient[O object] interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (O, error)
	UpdateStatus(ctx context.Context, obj O, opts metav1.UpdateOptions) (O, error)
}

// statusAPI is how the writer reads and writes objects of one kind:
// client gives the kind's client for a namespace (cluster-scoped kinds
// ignore it); the cache is the one [statusWriter.serve] recorded.
type statusAPI[O object] struct {
	w      *statusWriter
	kind   objKind
	client func(namespace string) statusClient[O]
}

// get reads the object key names: from the cache, or from the API server
// when live. ok is false when the kind is not served or the cached item
// is not an O: there is nothing to write.
func (a statusAPI[O]) get(ctx context.Context, key objKey, live bool) (obj O, ok bool, err error) {
	idx := a.w.caches[a.kind].Load()
	if idx == nil {
		return obj, false, nil
	}
	if live {
		obj, err = a.client(key.namespace).Get(ctx, key.name, metav1.GetOptions{})
		return obj, err == nil, err
	}
	item, exists, err := (*idx).GetByKey(key.cacheKey())
	if err != nil {
		return obj, false, err
	}
	if !exists {
		return obj, false, apierrors.NewNotFound(schema.GroupResource{Resource: key.kind.String()}, key.name)
	}
	obj, ok = item.(O)
	return obj, ok, nil
}

// update writes the status of obj (a copy holding the merged status) and
// records the write and the new problems.
func (a statusAPI[O]) update(ctx context.Context, key objKey, obj O, probs []problem) error {
	if _, err := a.client(key.namespace).UpdateStatus(ctx, obj, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
		return err
	}
	a.w.written(ctx, key, obj.GetUID(), probs)
	return nil
}

// list returns the cached objects of the kind.
func (a statusAPI[O]) list() []O {
	idx := a.w.caches[a.kind].Load()
	if idx == nil {
		return nil
	}
	var out []O
	for _, item := range (*idx).List() {
		if o, ok := item.(O); ok {
			out = append(out, o)
		}
	}
	return out
}

// wholeStatus is the writer of a kind whose status is rauta's alone
// (GatewayClass, Gateway, ListenerSet): status points into an object's
// status, accept says whether the object is rauta's to write, merge and
// problems merge the desired status into the stored one and list the
// problems a write would newly report. Nothing is written unless a status
// is desired for the object's generation and accept holds.
func wholeStatus[O object, S any](w *statusWriter, kind objKind, client func(string) statusClient[O], status func(O) *S,
	accept func(O) bool, merge func(stored, desired S, now metav1.Time) S, problems func(stored, merged *S) []problem) statusKind {
	api := statusAPI[O]{w, kind, client}
	return statusKind{write: func(ctx context.Context, key objKey, d desired, ok, live bool, now metav1.Time) error {
		if !ok {
			return nil
		}
		obj, ok, err := api.get(ctx, key, live)
		if !ok || err != nil {
			return err
		}
		if obj.GetGeneration() != d.generation || !accept(obj) {
			return nil
		}
		stored := status(obj)
		merged := merge(*stored, d.status.(S), now)
		if apiequality.Semantic.DeepEqual(*stored, merged) {
			return nil
		}
		probs := problems(stored, &merged)
		cp := obj.DeepCopyObject().(O)
		*status(cp) = merged
		return api.update(ctx, key, cp, probs)
	}}
}

// entryList is a status list with an entry per controller and reference:
// route parents or policy ancestors.
type entryList[E any] struct {
	keyed[E]
	// controller returns the controllerName of an entry.
	controller func(*E) gatewayv1.GatewayController
	// where names an entry of an object in namespace ns, for problems.
	where func(e *E, ns string) string
}

// merge merges the desired entries of controller into the stored list:
// the stored entries of other controllers are kept as stored,
// controller's are replaced by the desired entry with their reference or
// removed (nil desired removes them all); see [keyed.mergeOwned].
func (l entryList[E]) merge(stored, desired []E, controller gatewayv1.GatewayController, now metav1.Time) []E {
	return l.mergeOwned(stored, desired, func(e *E) bool { return l.controller(e) == controller }, now)
}

// holds reports whether list holds an entry of controller.
func (l entryList[E]) holds(list []E, controller gatewayv1.GatewayController) bool {
	return slices.ContainsFunc(list, func(e E) bool { return l.controller(&e) == controller })
}

// routeParentEntries are the parents of a route's status.
var routeParentEntries = entryList[gatewayv1.RouteParentStatus]{
	keyed:      routeParents,
	controller: func(p *gatewayv1.RouteParentStatus) gatewayv1.GatewayController { return p.ControllerName },
	where: func(p *gatewayv1.RouteParentStatus, ns string) string {
		return "parentRef " + parentName(p.ParentRef, ns)
	},
}

// ancestorEntries returns the ancestors of a policy of kind k.
func ancestorEntries(k objKind) entryList[gatewayv1.PolicyAncestorStatus] {
	return entryList[gatewayv1.PolicyAncestorStatus]{
		keyed:      ancestors(k),
		controller: func(a *gatewayv1.PolicyAncestorStatus) gatewayv1.GatewayController { return a.ControllerName },
		where: func(a *gatewayv1.PolicyAncestorStatus, ns string) string {
			return "ancestor " + parentName(a.AncestorRef, ns)
		},
	}
}

// entryAccess reads and sets an object's list of entries.
type entryAccess[O object, E any] struct {
	get func(O) ([]E, error)
	set func(O, []E) error
}

// fieldEntries is the entryAccess of a list held in a field of a typed
// object.
func fieldEntries[O object, E any](field func(O) *[]E) entryAccess[O, E] {
	return entryAccess[O, E]{
		get: func(o O) ([]E, error) { return *field(o), nil },
		set: func(o O, es []E) error { *field(o) = es; return nil },
	}
}

// routeStatus is the writer of a route kind; parents points into a
// route's status.parents.
func routeStatus[O object](w *statusWriter, kind objKind, client func(string) statusClient[O], parents func(O) *[]gatewayv1.RouteParentStatus) statusKind {
	return entryStatus(w, kind, client, routeParentEntries, fieldEntries(parents))
}

// entryStatus is the writer of a kind whose status holds a list with an
// entry per controller (routes, policies): only this controller's entries
// are added, changed and removed (see [keyed.mergeOwned]). An object with
// a desired status is written when the desired status is for its
// generation; one without is written when it holds an entry of ours, to
// remove it.
func entryStatus[O object, E any](w *statusWriter, kind objKind, client func(string) statusClient[O], list entryList[E], access entryAccess[O, E]) statusKind {
	api := statusAPI[O]{w, kind, client}
	mine := func(e *E) bool { return list.controller(e) == w.c.controller }
	return statusKind{
		write: func(ctx context.Context, key objKey, d desired, ok, live bool, now metav1.Time) error {
			obj, found, err := api.get(ctx, key, live)
			if !found || err != nil {
				return err
			}
			stored, err := access.get(obj)
			if err != nil {
				return err
			}
			var want []E
			if ok {
				if obj.GetGeneration() != d.generation {
					return nil
				}
				want = d.status.([]E)
			} else if !list.holds(stored, w.c.controller) {
				return nil
			}
			merged := list.merge(stored, want, w.c.controller, now)
			if apiequality.Semantic.DeepEqual(stored, merged) {
				return nil
			}
			probs := list.problems(stored, merged, mine, func(e *E) string { return list.where(e, obj.GetNamespace()) })
			cp := obj.DeepCopyObject().(O)
			if err := access.set(cp, merged); err != nil {
				return err
			}
			return api.update(ctx, key, cp, probs)
		},
		enqueueOwned: func(add func(objKey)) {
			for _, o := range api.list() {
				if es, err := access.get(o); err == nil && list.holds(es, w.c.controller) {
					add(objKey{kind, o.GetNamespace(), o.GetName()})
				}
			}
		},
	}
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
