package kube

import (
	"slices"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/rauta/rauta/gatewayapi"
)

// The merge functions combine the status the translator computed (whose
// conditions carry a zero LastTransitionTime) with the status stored on the
// object. What belongs to others is kept as stored and where it is stored:
// route parents and policy ancestors of other controllers, and conditions
// of types rauta does not own (see [ownedTypes]), also within rauta's own
// entries, as the Gateway API asks of every conditions list ("MUST NOT
// remove or reorder Conditions that they are not directly responsible
// for"). A condition whose status, reason and message are unchanged keeps
// its stored LastTransitionTime, any other gets now.

// ownedTypes are the condition types rauta owns in each place of a status:
// those the translator sets and those an earlier version set. A stored
// condition of another type is someone else's.
var ownedTypes = gatewayapi.OwnedConditionTypes()

// keyed describes a status list whose entries are matched by a key:
// conditions (by type), route parents and policy ancestors (by controller
// and reference), listeners (by name).
type keyed[E any] struct {
	// same reports whether two entries have the same key.
	same func(a, b *E) bool
	// merge returns desired merged with stored, the stored entry of the
	// same key (nil when there is none).
	merge func(stored, desired *E, now metav1.Time) E
	// deepCopy copies an entry kept as stored.
	deepCopy func(*E) *E
	// conds points to an entry's conditions; nil for conditions
	// themselves.
	conds func(*E) *[]metav1.Condition
}

// index returns the index of the entry of list with e's key, or -1.
func (k keyed[E]) index(list []E, e *E) int {
	for i := range list {
		if k.same(&list[i], e) {
			return i
		}
	}
	return -1
}

// find returns the entry of list with e's key, or nil.
func (k keyed[E]) find(list []E, e *E) *E {
	if i := k.index(list, e); i >= 0 {
		return &list[i]
	}
	return nil
}

// mergeOwned merges the desired entries into a list that others write to
// as well; mine reports the stored entries that are this controller's. A
// stored entry with the key of a desired entry is replaced by it, merged;
// another entry of this controller is removed; an entry of someone else is
// kept as stored. Entries stay in their stored order, and desired entries
// with no stored one follow in their order. The result is nil when it
// holds nothing.
func (k keyed[E]) mergeOwned(stored, desired []E, mine func(*E) bool, now metav1.Time) []E {
	var out []E
	used := make([]bool, len(desired))
	for i := range stored {
		s := &stored[i]
		j := k.index(desired, s)
		switch {
		case j >= 0:
			if !used[j] { // a second stored entry of the key is dropped
				used[j] = true
				out = append(out, k.merge(s, &desired[j], now))
			}
		case !mine(s):
			out = append(out, *k.deepCopy(s))
		}
	}
	for j := range desired {
		if !used[j] {
			out = append(out, k.merge(nil, &desired[j], now))
		}
	}
	return out
}

// problems returns the problems of the merged entries (those mine
// accepts; all when mine is nil) that the stored entry of their key did
// not report yet, each named by where; see [newProblems].
func (k keyed[E]) problems(stored, merged []E, mine func(*E) bool, where func(*E) string) []problem {
	var out []problem
	for i := range merged {
		e := &merged[i]
		if mine != nil && !mine(e) {
			continue
		}
		var prev []metav1.Condition
		if s := k.find(stored, e); s != nil {
			prev = *k.conds(s)
		}
		out = append(out, newProblems(where(e), prev, *k.conds(e))...)
	}
	return out
}

// mergeAll merges a list that is this controller's alone: the result is
// desired, in its order, each entry merged with the stored entry of its
// key; stored entries with no desired one are removed.
func (k keyed[E]) mergeAll(stored, desired []E, now metav1.Time) []E {
	if desired == nil {
		return nil
	}
	out := make([]E, len(desired))
	for i := range desired {
		out[i] = k.merge(k.find(stored, &desired[i]), &desired[i], now)
	}
	return out
}

// conditions merges conditions: matched by type, a condition keeps the
// stored LastTransitionTime when its status, reason and message are
// unchanged.
var conditions = keyed[metav1.Condition]{
	same: func(a, b *metav1.Condition) bool { return a.Type == b.Type },
	merge: func(s, d *metav1.Condition, now metav1.Time) metav1.Condition {
		c := *d
		c.LastTransitionTime = now
		if s != nil && s.Status == d.Status && s.Reason == d.Reason && s.Message == d.Message && !s.LastTransitionTime.IsZero() {
			c.LastTransitionTime = s.LastTransitionTime
		}
		return c
	},
	deepCopy: (*metav1.Condition).DeepCopy,
}

// mergeConditions merges the desired conditions into the stored ones: the
// stored conditions of the owned types are replaced by the desired ones of
// their type or removed, those of other types are kept as stored; see
// [keyed.mergeOwned].
func mergeConditions(stored, desired []metav1.Condition, owned []string, now metav1.Time) []metav1.Condition {
	return conditions.mergeOwned(stored, desired, func(c *metav1.Condition) bool { return slices.Contains(owned, c.Type) }, now)
}

// mergeGatewayClassStatus merges a GatewayClass's status.
func mergeGatewayClassStatus(stored, desired gatewayv1.GatewayClassStatus, now metav1.Time) gatewayv1.GatewayClassStatus {
	out := *desired.DeepCopy()
	out.Conditions = mergeConditions(stored.Conditions, desired.Conditions, ownedTypes.GatewayClass, now)
	return out
}

// withConditions returns a keyed list whose entries hold conditions, of
// which rauta owns types: a merged entry is the desired one with its
// conditions merged into the stored entry's (see [mergeConditions]).
func withConditions[E any](same func(a, b *E) bool, deepCopy func(*E) *E, conds func(*E) *[]metav1.Condition, types []string) keyed[E] {
	return keyed[E]{
		same: same,
		merge: func(s, d *E, now metav1.Time) E {
			out := *deepCopy(d)
			var prev []metav1.Condition
			if s != nil {
				prev = *conds(s)
			}
			*conds(&out) = mergeConditions(prev, *conds(d), types, now)
			return out
		},
		deepCopy: deepCopy,
		conds:    conds,
	}
}

// listeners and listenerEntries merge the listeners of a Gateway and of a
// ListenerSet. The list is rauta's alone: one controller reports on a
// Gateway's listeners, and an entry whose name rauta does not report is a
// listener that is no longer in the spec (or never was), so it is removed.
// Within an entry, conditions of types rauta does not own are kept.
var (
	listeners = withConditions(
		func(a, b *gatewayv1.ListenerStatus) bool { return a.Name == b.Name },
		(*gatewayv1.ListenerStatus).DeepCopy,
		func(e *gatewayv1.ListenerStatus) *[]metav1.Condition { return &e.Conditions },
		ownedTypes.Listener)
	listenerEntries = withConditions(
		func(a, b *gatewayv1.ListenerEntryStatus) bool { return a.Name == b.Name },
		(*gatewayv1.ListenerEntryStatus).DeepCopy,
		func(e *gatewayv1.ListenerEntryStatus) *[]metav1.Condition { return &e.Conditions },
		ownedTypes.Listener)
)

// mergeGatewayStatus merges a Gateway's status; listeners are matched by
// name.
func mergeGatewayStatus(stored, desired gatewayv1.GatewayStatus, now metav1.Time) gatewayv1.GatewayStatus {
	out := *desired.DeepCopy()
	out.Conditions = mergeConditions(stored.Conditions, desired.Conditions, ownedTypes.Gateway, now)
	out.Listeners = listeners.mergeAll(stored.Listeners, desired.Listeners, now)
	return out
}

// mergeListenerSetStatus merges a ListenerSet's status; listeners are
// matched by name.
func mergeListenerSetStatus(stored, desired gatewayv1.ListenerSetStatus, now metav1.Time) gatewayv1.ListenerSetStatus {
	out := *desired.DeepCopy()
	out.Conditions = mergeConditions(stored.Conditions, desired.Conditions, ownedTypes.ListenerSet, now)
	out.Listeners = listenerEntries.mergeAll(stored.Listeners, desired.Listeners, now)
	return out
}

// routeParents and the ancestor lists merge lists whose entries belong to
// controllers: an entry is matched by controllerName and reference. The
// spec's rule for conditions holds within rauta's entries too, so there
// the conditions of types rauta does not own are kept.
var (
	routeParents = withConditions(
		func(a, b *gatewayv1.RouteParentStatus) bool {
			return a.ControllerName == b.ControllerName && apiequality.Semantic.DeepEqual(a.ParentRef, b.ParentRef)
		},
		(*gatewayv1.RouteParentStatus).DeepCopy,
		func(e *gatewayv1.RouteParentStatus) *[]metav1.Condition { return &e.Conditions },
		ownedTypes.RouteParent)
	sameAncestor = func(a, b *gatewayv1.PolicyAncestorStatus) bool {
		return a.ControllerName == b.ControllerName && apiequality.Semantic.DeepEqual(a.AncestorRef, b.AncestorRef)
	}
	ancestorConditions        = func(e *gatewayv1.PolicyAncestorStatus) *[]metav1.Condition { return &e.Conditions }
	backendTLSPolicyAncestors = withConditions(sameAncestor, (*gatewayv1.PolicyAncestorStatus).DeepCopy, ancestorConditions, ownedTypes.BackendTLSPolicyAncestor)
	policyAncestors           = withConditions(sameAncestor, (*gatewayv1.PolicyAncestorStatus).DeepCopy, ancestorConditions, ownedTypes.PolicyAncestor)
)

// ancestors returns the ancestor list of a policy of kind k.
func ancestors(k objKind) keyed[gatewayv1.PolicyAncestorStatus] {
	if k == kindBackendTLSPolicy {
		return backendTLSPolicyAncestors
	}
	return policyAncestors
}

// problem is a condition that tells a user to fix something: it becomes an
// Event when it first appears.
type problem struct {
	where string // "" or e.g. `listener "https"`, `parent gw`
	cond  metav1.Condition
}

// isProblem reports whether a condition reports a configuration error.
// Conditions that only report progress (reason Pending) are not problems.
func isProblem(c metav1.Condition) bool {
	if c.Reason == "Pending" {
		return false
	}
	switch c.Type {
	case "Conflicted":
		return c.Status == metav1.ConditionTrue
	case "Accepted", "ResolvedRefs", "Programmed", "ResolvedRefsAndProgrammed":
		return c.Status == metav1.ConditionFalse
	}
	return false
}

// newProblems returns the problem conditions of merged that stored did not
// hold with the same status, reason and message: those a user has not been
// told about yet.
func newProblems(where string, stored, merged []metav1.Condition) []problem {
	var out []problem
	for _, c := range merged {
		if !isProblem(c) {
			continue
		}
		seen := slices.ContainsFunc(stored, func(s metav1.Condition) bool {
			return s.Type == c.Type && s.Status == c.Status && s.Reason == c.Reason && s.Message == c.Message
		})
		if !seen {
			out = append(out, problem{where: where, cond: c})
		}
	}
	return out
}
