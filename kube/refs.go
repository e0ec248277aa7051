package kube

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/rauta/rauta/gatewayapi"
)

// Secrets and ConfigMaps are not cached whole. A cluster holds many of them
// (service-account tokens, Helm releases, every application's
// configuration) and rauta needs a handful: the listener certificates
// Gateways and ListenerSets name, and the CA bundles BackendTLSPolicies
// name. So:
//
//   - a metadata-only informer watches every Secret and ConfigMap
//     (PartialObjectMetadata with managedFields, labels, annotations and
//     owner references dropped: a few hundred bytes each), which says which
//     exist and their resourceVersion;
//   - at each rebuild the referenced ones are fetched with GET, only when
//     their resourceVersion changed, and kept with only the keys the
//     translator reads (tls.crt and tls.key; ca.crt);
//   - a metadata event marks the state dirty only for a referenced object,
//     so rotating a certificate triggers a rebuild and unrelated churn does
//     not.
//
// Only references from rauta's own Gateways (those of GatewayClasses with
// its controllerName), the ListenerSets attached to them and the
// BackendTLSPolicies of the Services their routes use count. A reference is
// followed whatever the ReferenceGrants say (the translator judges them),
// so the data held is bounded by what rauta's Gateways name.

// refKind is the kind of a referenced object.
type refKind uint8

const (
	refSecret refKind = iota
	refConfigMap
)

// refKey names a referenced object.
type refKey struct {
	kind            refKind
	namespace, name string
}

// refSet is an immutable set of references, swapped whole.
type refSet map[refKey]struct{}

// refStore holds the referenced Secrets and ConfigMaps.
type refStore struct {
	client     kubernetes.Interface
	secretMeta cache.Indexer // metadata informers' stores
	cmMeta     cache.Indexer

	mu   sync.RWMutex
	refs refSet // read by event handlers

	// Owned by the rebuild goroutine.
	secrets    map[refKey]*corev1.Secret
	configMaps map[refKey]*corev1.ConfigMap

	nSecrets, nConfigMaps atomic.Int64 // sizes of the maps, for held
}

func newRefStore(client kubernetes.Interface, secretMeta, cmMeta cache.Indexer) *refStore {
	return &refStore{
		client: client, secretMeta: secretMeta, cmMeta: cmMeta,
		refs:       refSet{},
		secrets:    make(map[refKey]*corev1.Secret),
		configMaps: make(map[refKey]*corev1.ConfigMap),
	}
}

// referenced reports whether the object is referenced at the moment.
func (r *refStore) referenced(k refKey) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.refs[k]
	return ok
}

// held returns the number of Secrets and ConfigMaps whose data is held.
func (r *refStore) held() (secrets, configMaps int) {
	return int(r.nSecrets.Load()), int(r.nConfigMaps.Load())
}

// references returns the Secrets and ConfigMaps the translator may read
// for the Gateways of controller's classes: the certificates of their
// listeners and of the listeners of the ListenerSets attached to them, the
// CA ConfigMaps and client certificate Secret of their spec.tls, and
// the CA bundles of the BackendTLSPolicies that target a Service named by an
// HTTPRoute, GRPCRoute or TLSRoute attached to them. Objects of other controllers' Gateways are not
// held.
func references(controller gatewayv1.GatewayController, res *gatewayapi.Resources) refSet {
	set := refSet{}
	classes := map[string]bool{}
	for i := range res.GatewayClasses {
		if res.GatewayClasses[i].Spec.ControllerName == controller {
			classes[res.GatewayClasses[i].Name] = true
		}
	}
	type nn struct{ ns, name string }
	gateways := map[nn]bool{}
	certs := func(ns string, tls *gatewayv1.ListenerTLSConfig) {
		if tls == nil {
			return
		}
		for _, ref := range tls.CertificateRefs {
			if (ref.Group != nil && *ref.Group != "") || (ref.Kind != nil && *ref.Kind != "Secret") {
				continue
			}
			n := ns
			if ref.Namespace != nil && *ref.Namespace != "" {
				n = string(*ref.Namespace)
			}
			set[refKey{refSecret, n, string(ref.Name)}] = struct{}{}
		}
	}
	for i := range res.Gateways {
		gw := &res.Gateways[i]
		if !classes[string(gw.Spec.GatewayClassName)] {
			continue
		}
		gateways[nn{gw.Namespace, gw.Name}] = true
		for j := range gw.Spec.Listeners {
			certs(gw.Namespace, gw.Spec.Listeners[j].TLS)
		}
		gatewayTLS(set, gw)
	}
	listenerSets := map[nn]bool{}
	for i := range res.ListenerSets {
		ls := &res.ListenerSets[i]
		ns := ls.Namespace
		if p := ls.Spec.ParentRef.Namespace; p != nil && *p != "" {
			ns = string(*p)
		}
		if !gateways[nn{ns, string(ls.Spec.ParentRef.Name)}] {
			continue
		}
		listenerSets[nn{ls.Namespace, ls.Name}] = true
		for j := range ls.Spec.Listeners {
			certs(ls.Namespace, ls.Spec.Listeners[j].TLS)
		}
	}
	if len(res.BackendTLSPolicies) == 0 {
		return set
	}
	services := map[nn]bool{}
	route := func(rns string, parents []gatewayv1.ParentReference, backends []gatewayv1.BackendObjectReference) {
		ours := false
		for _, p := range parents {
			ns := rns
			if p.Namespace != nil && *p.Namespace != "" {
				ns = string(*p.Namespace)
			}
			switch {
			case p.Kind == nil || *p.Kind == "Gateway":
				ours = ours || gateways[nn{ns, string(p.Name)}]
			case *p.Kind == "ListenerSet":
				ours = ours || listenerSets[nn{ns, string(p.Name)}]
			}
		}
		if !ours {
			return
		}
		for _, b := range backends {
			if (b.Group != nil && *b.Group != "") || (b.Kind != nil && *b.Kind != "Service") {
				continue
			}
			ns := rns
			if b.Namespace != nil && *b.Namespace != "" {
				ns = string(*b.Namespace)
			}
			services[nn{ns, string(b.Name)}] = true
		}
	}
	for i := range res.HTTPRoutes {
		r := &res.HTTPRoutes[i]
		var backends []gatewayv1.BackendObjectReference
		for _, rule := range r.Spec.Rules {
			for _, b := range rule.BackendRefs {
				backends = append(backends, b.BackendObjectReference)
			}
		}
		route(r.Namespace, r.Spec.ParentRefs, backends)
	}
	for i := range res.GRPCRoutes {
		r := &res.GRPCRoutes[i]
		var backends []gatewayv1.BackendObjectReference
		for _, rule := range r.Spec.Rules {
			for _, b := range rule.BackendRefs {
				backends = append(backends, b.BackendObjectReference)
			}
		}
		route(r.Namespace, r.Spec.ParentRefs, backends)
	}
	// TLSRoutes too: behind a Terminate listener the policy re-encrypts
	// the stream toward the Service.
	for i := range res.TLSRoutes {
		r := &res.TLSRoutes[i]
		var backends []gatewayv1.BackendObjectReference
		for _, rule := range r.Spec.Rules {
			for _, b := range rule.BackendRefs {
				backends = append(backends, b.BackendObjectReference)
			}
		}
		route(r.Namespace, r.Spec.ParentRefs, backends)
	}
	for i := range res.BackendTLSPolicies {
		pol := &res.BackendTLSPolicies[i]
		targeted := false
		for _, t := range pol.Spec.TargetRefs {
			if t.Group == "" && t.Kind == "Service" && services[nn{pol.Namespace, string(t.Name)}] {
				targeted = true
			}
		}
		if !targeted {
			continue
		}
		for _, ref := range pol.Spec.Validation.CACertificateRefs {
			if ref.Group == "" && ref.Kind == "ConfigMap" {
				set[refKey{refConfigMap, pol.Namespace, string(ref.Name)}] = struct{}{}
			}
		}
	}
	return set
}

// gatewayTLS adds the objects a Gateway's spec.tls refers to: the CA
// ConfigMaps of its frontend client certificate validation (default and
// per port) and the Secret of its backend client certificate.
func gatewayTLS(set refSet, gw *gatewayv1.Gateway) {
	tls := gw.Spec.TLS
	if tls == nil {
		return
	}
	validation := func(v *gatewayv1.FrontendTLSValidation) {
		if v == nil {
			return
		}
		for _, ref := range v.CACertificateRefs {
			if ref.Group != "" || ref.Kind != "ConfigMap" {
				continue
			}
			ns := gw.Namespace
			if ref.Namespace != nil && *ref.Namespace != "" {
				ns = string(*ref.Namespace)
			}
			set[refKey{refConfigMap, ns, string(ref.Name)}] = struct{}{}
		}
	}
	if f := tls.Frontend; f != nil {
		validation(f.Default.Validation)
		for i := range f.PerPort {
			validation(f.PerPort[i].TLS.Validation)
		}
	}
	if b := tls.Backend; b != nil && b.ClientCertificateRef != nil {
		ref := b.ClientCertificateRef
		if (ref.Group == nil || *ref.Group == "") && (ref.Kind == nil || *ref.Kind == "Secret") {
			ns := gw.Namespace
			if ref.Namespace != nil && *ref.Namespace != "" {
				ns = string(*ref.Namespace)
			}
			set[refKey{refSecret, ns, string(ref.Name)}] = struct{}{}
		}
	}
}

// load makes set the referenced objects and returns those that exist,
// fetching the ones that are new or changed. On a fetch error it keeps the
// object held before (if any) and returns the error with the rest.
func (r *refStore) load(ctx context.Context, set refSet) (secrets []corev1.Secret, cms []corev1.ConfigMap, err error) {
	r.mu.Lock()
	r.refs = set
	r.mu.Unlock()
	var errs []error
	for k := range r.secrets {
		if _, ok := set[k]; !ok {
			delete(r.secrets, k)
		}
	}
	for k := range r.configMaps {
		if _, ok := set[k]; !ok {
			delete(r.configMaps, k)
		}
	}
	for k := range set {
		meta := r.secretMeta
		if k.kind == refConfigMap {
			meta = r.cmMeta
		}
		obj, exists, _ := meta.GetByKey(k.namespace + "/" + k.name)
		if !exists {
			delete(r.secrets, k)
			delete(r.configMaps, k)
			continue
		}
		m, ok := obj.(metav1.Object)
		if !ok {
			continue
		}
		rv := m.GetResourceVersion()
		switch k.kind {
		case refSecret:
			if s := r.secrets[k]; s == nil || s.ResourceVersion != rv {
				got, err := r.client.CoreV1().Secrets(k.namespace).Get(ctx, k.name, metav1.GetOptions{})
				switch {
				case apierrors.IsNotFound(err):
					delete(r.secrets, k)
				case err != nil:
					errs = append(errs, fmt.Errorf("getting Secret %s/%s: %w", k.namespace, k.name, err))
				default:
					r.secrets[k] = trimSecret(got)
				}
			}
			if s := r.secrets[k]; s != nil {
				secrets = append(secrets, *s)
			}
		case refConfigMap:
			if c := r.configMaps[k]; c == nil || c.ResourceVersion != rv {
				got, err := r.client.CoreV1().ConfigMaps(k.namespace).Get(ctx, k.name, metav1.GetOptions{})
				switch {
				case apierrors.IsNotFound(err):
					delete(r.configMaps, k)
				case err != nil:
					errs = append(errs, fmt.Errorf("getting ConfigMap %s/%s: %w", k.namespace, k.name, err))
				default:
					r.configMaps[k] = trimConfigMap(got)
				}
			}
			if c := r.configMaps[k]; c != nil {
				cms = append(cms, *c)
			}
		}
	}
	r.nSecrets.Store(int64(len(r.secrets)))
	r.nConfigMaps.Store(int64(len(r.configMaps)))
	return secrets, cms, errors.Join(errs...)
}

// trimSecret keeps what the translator reads of a Secret: its identity,
// type and certificate keys.
func trimSecret(s *corev1.Secret) *corev1.Secret {
	out := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: s.Namespace, Name: s.Name, UID: s.UID,
			ResourceVersion: s.ResourceVersion, CreationTimestamp: s.CreationTimestamp,
		},
		Type: s.Type,
	}
	for _, k := range []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey} {
		if v, ok := s.Data[k]; ok {
			if out.Data == nil {
				out.Data = make(map[string][]byte, 2)
			}
			out.Data[k] = v
		}
	}
	return out
}

// caKey is the ConfigMap key BackendTLSPolicy CA bundles are read from.
const caKey = "ca.crt"

// trimConfigMap keeps what the translator reads of a ConfigMap: its
// identity and the ca.crt key.
func trimConfigMap(c *corev1.ConfigMap) *corev1.ConfigMap {
	out := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: c.Namespace, Name: c.Name, UID: c.UID,
			ResourceVersion: c.ResourceVersion, CreationTimestamp: c.CreationTimestamp,
		},
	}
	if v, ok := c.Data[caKey]; ok {
		out.Data = map[string]string{caKey: v}
	}
	if v, ok := c.BinaryData[caKey]; ok {
		out.BinaryData = map[string][]byte{caKey: v}
	}
	return out
}
