package kube

import (
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// managedByLabel and managedByValue mark the Services rauta keeps.
const (
	managedByLabel = "app.kubernetes.io/managed-by"
	managedByValue = "rauta"
)

// infraSuffix ends the name of a Gateway's infrastructure Service.
const infraSuffix = "-rauta"

// infraServiceName returns the name of the infrastructure Service of the
// Gateway named gw: "<gw>-rauta" when that is a valid Service name (a DNS
// label), otherwise a sanitized, truncated prefix of gw followed by a hash
// of gw, so that distinct Gateways keep distinct names.
func infraServiceName(gw string) string {
	name := gw + infraSuffix
	if len(validation.IsDNS1035Label(name)) == 0 {
		return name
	}
	var b strings.Builder
	for i, r := range gw {
		switch {
		case r >= 'a' && r <= 'z':
			b.WriteRune(r)
		case (r >= '0' && r <= '9') || r == '-' || r == '.':
			if i == 0 {
				b.WriteString("gw-")
			}
			if r == '.' {
				r = '-'
			}
			b.WriteRune(r)
		}
	}
	h := fnv.New32a()
	h.Write([]byte(gw))
	tail := fmt.Sprintf("-%08x%s", h.Sum32(), infraSuffix)
	base := b.String()
	if max := validation.DNS1035LabelMaxLength - len(tail); len(base) > max {
		base = base[:max]
	}
	base = strings.TrimRight(base, "-")
	if base == "" {
		base = "gw"
	}
	return base + tail
}

// infraPorts returns the distinct listener ports of gw, sorted.
func infraPorts(gw *gatewayv1.Gateway) []int32 {
	var ports []int32
	for _, l := range gw.Spec.Listeners {
		if p := int32(l.Port); p > 0 && !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	slices.Sort(ports)
	return ports
}

// infraService returns the desired infrastructure Service of gw, or nil
// when gw has no listener port (a Service needs one).
func infraService(gw *gatewayv1.Gateway) *corev1ac.ServiceApplyConfiguration {
	ports := infraPorts(gw)
	if len(ports) == 0 {
		return nil
	}
	lbls := map[string]string{}
	ann := map[string]string{}
	if inf := gw.Spec.Infrastructure; inf != nil {
		for k, v := range inf.Labels {
			lbls[string(k)] = string(v)
		}
		for k, v := range inf.Annotations {
			ann[string(k)] = string(v)
		}
	}
	if len(validation.IsValidLabelValue(gw.Name)) == 0 {
		lbls[gatewayv1.GatewayNameLabelKey] = gw.Name
	}
	lbls[managedByLabel] = managedByValue
	spec := corev1ac.ServiceSpec().WithType(corev1.ServiceTypeClusterIP)
	for _, p := range ports {
		spec.WithPorts(corev1ac.ServicePort().
			WithName("p" + strconv.Itoa(int(p))).
			WithProtocol(corev1.ProtocolTCP).
			WithPort(p))
	}
	svc := corev1ac.Service(infraServiceName(gw.Name), gw.Namespace).
		WithLabels(lbls).
		WithOwnerReferences(metav1ac.OwnerReference().
			WithAPIVersion(gatewayGroupVersion).
			WithKind("Gateway").
			WithName(gw.Name).
			WithUID(gw.UID).
			WithController(true)).
		WithSpec(spec)
	if len(ann) > 0 {
		svc.WithAnnotations(ann)
	}
	return svc
}

// ownerGateway returns the name of the Gateway that is the controller
// owner of a Service rauta manages, or "".
func ownerGateway(m metav1.Object) string {
	if m.GetLabels()[managedByLabel] != managedByValue {
		return ""
	}
	for _, o := range m.GetOwnerReferences() {
		if o.Controller != nil && *o.Controller && o.Kind == "Gateway" && o.APIVersion == gatewayGroupVersion {
			return o.Name
		}
	}
	return ""
}

// infraWriter keeps, while its replica holds the Lease, the infrastructure
// Service of every Gateway of rauta's classes: applied (server-side, field
// manager "rauta") when the Gateway changes, deleted when it is deleted or
// leaves rauta's classes. Keys are Gateways' namespace/name.
type infraWriter struct {
	c *Controller

	mu      sync.Mutex
	queue   workqueue.TypedRateLimitingInterface[types.NamespacedName]
	termMu  sync.Mutex
	maxFail int
}

// enqueue queues a Gateway during a leadership term.
func (w *infraWriter) enqueue(k types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.queue != nil {
		w.queue.Add(k)
	}
}

// enqueueAll queues every Gateway and every Gateway named by a Service
// rauta manages (so that orphans are deleted). Called with mu held.
func (w *infraWriter) enqueueAll(q workqueue.TypedRateLimitingInterface[types.NamespacedName]) {
	gws, _ := w.c.gateways.List(labels.Everything())
	for _, g := range gws {
		q.Add(types.NamespacedName{Namespace: g.Namespace, Name: g.Name})
	}
	svcs, _ := w.c.services.List(labels.SelectorFromSet(labels.Set{managedByLabel: managedByValue}))
	for _, s := range svcs {
		if n := ownerGateway(s); n != "" {
			q.Add(types.NamespacedName{Namespace: s.Namespace, Name: n})
		}
	}
}

// all queues every Gateway (a GatewayClass changed).
func (w *infraWriter) all() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.queue != nil {
		w.enqueueAll(w.queue)
	}
}

// gatewayHandler queues a Gateway that was added, deleted or changed.
func (w *infraWriter) gatewayHandler() cache.ResourceEventHandler {
	key := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if m, ok := obj.(metav1.Object); ok {
			w.enqueue(types.NamespacedName{Namespace: m.GetNamespace(), Name: m.GetName()})
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: key,
		UpdateFunc: func(o, n any) {
			if specChanged(o, n) {
				key(n)
			}
		},
		DeleteFunc: key,
	}
}

// classHandler queues every Gateway when a GatewayClass changes.
func (w *infraWriter) classHandler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { w.all() },
		UpdateFunc: func(o, n any) {
			if specChanged(o, n) {
				w.all()
			}
		},
		DeleteFunc: func(any) { w.all() },
	}
}

// serviceHandler queues the Gateway owning a Service rauta manages when
// the Service changes, so that a Service edited or deleted by someone else
// is restored.
func (w *infraWriter) serviceHandler() cache.ResourceEventHandler {
	key := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if m, ok := obj.(metav1.Object); ok {
			if n := ownerGateway(m); n != "" {
				w.enqueue(types.NamespacedName{Namespace: m.GetNamespace(), Name: n})
			}
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: key,
		UpdateFunc: func(o, n any) {
			om, ok1 := o.(metav1.Object)
			nm, ok2 := n.(metav1.Object)
			if ok1 && ok2 && om.GetResourceVersion() == nm.GetResourceVersion() {
				return
			}
			key(o)
			key(n)
		},
		DeleteFunc: key,
	}
}

// lead runs one leadership term until ctx is done.
func (w *infraWriter) lead(ctx context.Context) {
	w.termMu.Lock()
	defer w.termMu.Unlock()
	q := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[types.NamespacedName](10*time.Millisecond, 30*time.Second),
		workqueue.TypedRateLimitingQueueConfig[types.NamespacedName]{},
	)
	w.mu.Lock()
	w.queue = q
	w.enqueueAll(q)
	w.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() {
		for w.next(ctx, q) {
		}
	})
	<-ctx.Done()
	w.mu.Lock()
	w.queue = nil
	w.mu.Unlock()
	q.ShutDown()
	wg.Wait()
}

// next processes one key; it returns false once the queue is shut down.
func (w *infraWriter) next(ctx context.Context, q workqueue.TypedRateLimitingInterface[types.NamespacedName]) bool {
	key, shutdown := q.Get()
	if shutdown {
		return false
	}
	defer q.Done(key)
	err := w.sync(ctx, key)
	switch {
	case err == nil, ctx.Err() != nil:
		q.Forget(key)
	case q.NumRequeues(key) < w.maxFail:
		w.c.log.Warn("keeping the infrastructure Service; retrying", "namespace", key.Namespace, "gateway", key.Name, "error", err)
		q.AddRateLimited(key)
	default:
		w.c.log.Error("keeping the infrastructure Service; giving up until the Gateway changes", "namespace", key.Namespace, "gateway", key.Name, "error", err)
		q.Forget(key)
	}
	return true
}

// sync applies or deletes the infrastructure Service of one Gateway.
func (w *infraWriter) sync(ctx context.Context, key types.NamespacedName) error {
	var want *corev1ac.ServiceApplyConfiguration
	gw, err := w.c.gateways.Gateways(key.Namespace).Get(key.Name)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return err
	case gw.DeletionTimestamp == nil && w.c.writer.ours(string(gw.Spec.GatewayClassName)):
		want = infraService(gw)
	}
	api := w.c.kube.CoreV1().Services(key.Namespace)
	owned, _ := w.c.services.Services(key.Namespace).List(labels.SelectorFromSet(labels.Set{managedByLabel: managedByValue}))
	for _, s := range owned {
		if ownerGateway(s) != key.Name || (want != nil && s.Name == *want.Name) {
			continue
		}
		uid := s.UID
		err := api.Delete(ctx, s.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("deleting Service %s/%s: %w", s.Namespace, s.Name, err)
		}
		w.c.log.Debug("infrastructure Service deleted", "namespace", s.Namespace, "name", s.Name, "gateway", key.Name)
	}
	if want == nil {
		return nil
	}
	if cur, err := w.c.services.Services(key.Namespace).Get(*want.Name); err == nil && ownerGateway(cur) != key.Name {
		// Someone else's Service: leave it alone.
		w.c.log.Warn("infrastructure Service name taken by a Service rauta does not manage", "namespace", key.Namespace, "name", *want.Name, "gateway", key.Name)
		return nil
	}
	if equalService(w.c, want) {
		return nil
	}
	if _, err := api.Apply(ctx, want, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
		return fmt.Errorf("applying Service %s/%s: %w", key.Namespace, *want.Name, err)
	}
	w.c.log.Debug("infrastructure Service applied", "namespace", key.Namespace, "name", *want.Name, "gateway", key.Name)
	return nil
}

// equalService reports whether the cached Service already is what want
// says, with no other label or annotation that rauta may have set before;
// a Service carrying labels or annotations of others is applied again
// (a no-op for the API server when nothing of rauta's changed).
func equalService(c *Controller, want *corev1ac.ServiceApplyConfiguration) bool {
	cur, err := c.services.Services(*want.Namespace).Get(*want.Name)
	if err != nil {
		return false
	}
	if !maps.Equal(cur.Labels, want.Labels) || !maps.Equal(nonNil(cur.Annotations), nonNil(want.Annotations)) {
		return false
	}
	if cur.Spec.Type != corev1.ServiceTypeClusterIP || len(cur.Spec.Ports) != len(want.Spec.Ports) {
		return false
	}
	for i, p := range cur.Spec.Ports {
		wp := want.Spec.Ports[i]
		if p.Name != *wp.Name || p.Port != *wp.Port || p.Protocol != *wp.Protocol {
			return false
		}
	}
	o := want.OwnerReferences[0]
	return slices.ContainsFunc(cur.OwnerReferences, func(r metav1.OwnerReference) bool {
		return r.UID == *o.UID && r.Controller != nil && *r.Controller && r.Name == *o.Name
	})
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
