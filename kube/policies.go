package kube

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayxv1alpha1 "sigs.k8s.io/gateway-api/apisx/v1alpha1"

	rautav1alpha1 "github.com/rauta/rauta/apis/v1alpha1"
	"github.com/rauta/rauta/gatewayapi"
)

// The policy kinds (rauta's BackendPolicy and TrafficPolicy, the Gateway
// API's experimental XBackendTrafficPolicy) are read through the dynamic
// client: their objects are cached unstructured and converted to the typed
// objects of gatewayapi.Resources when a snapshot is taken. Their CRDs are
// optional: a kind whose CRD is not installed is logged once, and the
// controller checks discovery every PolicyDiscoveryInterval until it
// appears, then starts its informer and rebuilds.

// rautaGroupVersion is the API group version of rauta's own kinds.
var rautaGroupVersion = schema.GroupVersion{Group: "gateway.rauta.io", Version: "v1alpha1"}

// policyKind is one policy kind read through the dynamic client.
type policyKind struct {
	kind objKind
	gvr  schema.GroupVersionResource
	// collect converts the cached objects and stores them in res.
	collect func(c *Controller, pk *policyKind, objs []any, res *gatewayapi.Resources, fp *fingerprint)

	// inf is the kind's informer once it is served; owned by Run, then
	// by watchNewPolicies.
	inf cache.SharedIndexInformer
	// lister is the synced informer's indexer, nil until the kind is
	// served and its informer has synced.
	lister    atomic.Pointer[cache.Indexer]
	logged    bool // "not served" was logged; owned by discovery
	forbidden bool // "not permitted" was logged; owned by discovery
	// badVersions are the resourceVersions of the objects that did not
	// convert, by UID, so that each is logged once; owned by the rebuild
	// goroutine.
	badVersions map[types.UID]string
}

// newPolicyKinds returns the policy kinds the controller watches.
func newPolicyKinds() []*policyKind {
	return []*policyKind{
		{
			kind: kindBackendPolicy,
			gvr:  rautaGroupVersion.WithResource("backendpolicies"),
			collect: func(c *Controller, pk *policyKind, objs []any, res *gatewayapi.Resources, fp *fingerprint) {
				res.BackendPolicies = convertAll[rautav1alpha1.BackendPolicy](c, pk, objs, 12, fp)
			},
		},
		{
			kind: kindTrafficPolicy,
			gvr:  rautaGroupVersion.WithResource("trafficpolicies"),
			collect: func(c *Controller, pk *policyKind, objs []any, res *gatewayapi.Resources, fp *fingerprint) {
				res.TrafficPolicies = convertAll[rautav1alpha1.TrafficPolicy](c, pk, objs, 13, fp)
			},
		},
		{
			kind: kindXBackendTrafficPolicy,
			gvr:  gatewayxv1alpha1.SchemeGroupVersion.WithResource("xbackendtrafficpolicies"),
			collect: func(c *Controller, pk *policyKind, objs []any, res *gatewayapi.Resources, fp *fingerprint) {
				res.XBackendTrafficPolicies = convertAll[gatewayxv1alpha1.XBackendTrafficPolicy](c, pk, objs, 14, fp)
			},
		},
	}
}

// convertAll converts cached unstructured objects to T, adding each to fp.
// An object that does not convert (its CRD's schema and rauta's types
// disagree) is left out with a warning, once per version of the object.
func convertAll[T any, PT interface {
	*T
	metav1.Object
}](c *Controller, pk *policyKind, objs []any, fpKind byte, fp *fingerprint) []T {
	out := make([]T, 0, len(objs))
	for _, o := range objs {
		u, ok := o.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		fp.add(c.fpSeed, fpKind, u)
		var v T
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, PT(&v)); err != nil {
			if pk.badVersions[u.GetUID()] != u.GetResourceVersion() {
				if pk.badVersions == nil {
					pk.badVersions = map[types.UID]string{}
				}
				pk.badVersions[u.GetUID()] = u.GetResourceVersion()
				c.log.Warn("ignoring a policy that does not convert", "kind", pk.kind.String(),
					"namespace", u.GetNamespace(), "name", u.GetName(), "error", err)
			}
			continue
		}
		out = append(out, v)
	}
	return out
}

// snapshotPolicies adds the policies of the served kinds to res.
func (c *Controller) snapshotPolicies(res *gatewayapi.Resources, fp *fingerprint) {
	for _, pk := range c.dynKinds {
		if l := pk.lister.Load(); l != nil {
			pk.collect(c, pk, (*l).List(), res, fp)
		}
	}
}

// discoverPolicies reports, for each policy kind, whether the API server
// serves it and lets the controller list it; a kind not served is logged
// at info level the first time, one it may not list at warning level.
func (c *Controller) discoverPolicies(ctx context.Context) []bool {
	served := make([]bool, len(c.dynKinds))
	groups := map[schema.GroupVersion]map[string]bool{}
	for i, pk := range c.dynKinds {
		gv := pk.gvr.GroupVersion()
		have, ok := groups[gv]
		if !ok {
			rl, err := c.kube.Discovery().ServerResourcesForGroupVersion(gv.String())
			switch {
			case err == nil:
				have = map[string]bool{}
				for _, r := range rl.APIResources {
					have[r.Name] = true
				}
			case !apierrors.IsNotFound(err):
				c.log.Warn("discovering policy kinds; trying again later", "apiVersion", gv.String(), "error", err)
			}
			groups[gv] = have
		}
		served[i] = have[pk.gvr.Resource]
		if !served[i] {
			if !pk.logged {
				pk.logged = true
				c.log.Info("policy kind not served (its CRD is not installed); ignoring it until it is",
					"kind", pk.kind.String(), "apiVersion", gv.String(), "checkEvery", c.opts.PolicyDiscoveryInterval.String())
			}
			continue
		}
		// An informer that may not list never syncs: check first, so that
		// a role without the policy kinds leaves the rest working.
		_, err := c.dyn.Resource(pk.gvr).List(ctx, metav1.ListOptions{Limit: 1})
		switch {
		case apierrors.IsNotFound(err): // removed since discovery
			served[i] = false
		case apierrors.IsForbidden(err):
			served[i] = false
			if !pk.forbidden {
				pk.forbidden = true
				c.log.Warn("not permitted to list a policy kind; ignoring it until the role allows it",
					"kind", pk.kind.String(), "apiVersion", gv.String(), "error", err)
			}
		}
	}
	return served
}

// watchPolicy sets up the informer of a served policy kind on the dynamic
// factory; the caller starts the factory, waits for the informer to sync
// and publishes it.
func (c *Controller) watchPolicy(pk *policyKind) error {
	inf := c.dynF.ForResource(pk.gvr).Informer()
	if err := inf.SetTransform(stripObject); err != nil {
		return err
	}
	if _, err := inf.AddEventHandler(c.gwHandler(pk.kind)); err != nil {
		return err
	}
	pk.inf = inf
	return nil
}

// publish makes the synced informer's objects visible to snapshots and
// the status writer.
func (c *Controller) publish(pk *policyKind) {
	idx := pk.inf.GetIndexer()
	pk.lister.Store(&idx)
	c.writer.serve(pk.kind, idx)
}

// setupPolicyInformers sets up the informers of the policy kinds served
// now; the others are left to watchNewPolicies.
func (c *Controller) setupPolicyInformers(served []bool) (pending []*policyKind, err error) {
	c.dynF = dynamicinformer.NewDynamicSharedInformerFactory(c.dyn, 0)
	var errs []error
	for i, pk := range c.dynKinds {
		if !served[i] {
			pending = append(pending, pk)
			continue
		}
		errs = append(errs, c.watchPolicy(pk))
	}
	return pending, errors.Join(errs...)
}

// watchNewPolicies checks discovery every PolicyDiscoveryInterval for the
// pending policy kinds and, when one is served, starts its informer, waits
// for it to sync and rebuilds. It returns when ctx is done or every kind is
// watched.
func (c *Controller) watchNewPolicies(ctx context.Context, pending []*policyKind) {
	t := time.NewTicker(c.opts.PolicyDiscoveryInterval)
	defer t.Stop()
	for len(pending) > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		served := c.discoverPolicies(ctx)
		var next, added []*policyKind
		for _, pk := range pending {
			if !served[slices.Index(c.dynKinds, pk)] {
				next = append(next, pk)
				continue
			}
			if err := c.watchPolicy(pk); err != nil {
				c.log.Error("watching a policy kind", "kind", pk.kind.String(), "error", err)
				continue
			}
			added = append(added, pk)
		}
		pending = next
		if len(added) == 0 {
			continue
		}
		c.dynF.Start(ctx.Done())
		for _, pk := range added {
			if !cache.WaitForCacheSync(ctx.Done(), pk.inf.HasSynced) {
				return
			}
			c.publish(pk)
			c.log.Info("policy kind served; watching it", "kind", pk.kind.String(), "apiVersion", pk.gvr.GroupVersion().String())
			c.writer.enqueueOwned(pk.kind)
		}
		c.co.markFull(time.Now())
	}
}

// policyStatusOf reads the generation and status of a cached or fetched
// policy object.
func policyStatusOf(u *unstructured.Unstructured) (gatewayv1.PolicyStatus, error) {
	var st gatewayv1.PolicyStatus
	m, ok := u.Object["status"].(map[string]any)
	if !ok {
		return st, nil
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &st); err != nil {
		return st, fmt.Errorf("reading status of %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	return st, nil
}

// dynamicClient is the [statusClient] of a policy kind read through the
// dynamic client.
type dynamicClient struct{ dynamic.ResourceInterface }

// Get reads an object.
func (d dynamicClient) Get(ctx context.Context, name string, opts metav1.GetOptions) (*unstructured.Unstructured, error) {
	return d.ResourceInterface.Get(ctx, name, opts)
}

// unstructuredAncestors reads and sets the status.ancestors of a policy
// read through the dynamic client.
var unstructuredAncestors = entryAccess[*unstructured.Unstructured, gatewayv1.PolicyAncestorStatus]{
	get: func(u *unstructured.Unstructured) ([]gatewayv1.PolicyAncestorStatus, error) {
		st, err := policyStatusOf(u)
		return st.Ancestors, err
	},
	set: func(u *unstructured.Unstructured, as []gatewayv1.PolicyAncestorStatus) error {
		status, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&gatewayv1.PolicyStatus{Ancestors: as})
		if err != nil {
			return err
		}
		u.Object["status"] = status
		return nil
	},
}
