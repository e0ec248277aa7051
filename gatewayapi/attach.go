package gatewayapi

import (
	"fmt"
	"slices"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// This file holds what every directly attached policy (GEP-713) shares:
// targets, precedence by age, and the ancestor status. BackendTLSPolicies
// order and report through it too; TrafficPolicies, BackendPolicies and
// XBackendTrafficPolicies keep their policies in an [attachIndex].

// olderFirst orders policies (or any objects) by creationTimestamp, then
// by namespace/name: the first one takes precedence.
func olderFirst(a, b metav1.Time, ka, kb nn) int {
	if c := a.Compare(b.Time); c != 0 {
		return c
	}
	return compareNN(ka, kb)
}

// gatewayAncestor is the ancestorRef of a Gateway in a policy status.
func gatewayAncestor(k nn) gatewayv1.ParentReference {
	return gatewayv1.ParentReference{
		Group:     new(groupGateway),
		Kind:      new(kindGateway),
		Namespace: new(gatewayv1.Namespace(k.ns)),
		Name:      gatewayv1.ObjectName(k.name),
	}
}

// policyTarget is one target of a policy: an object in the policy's
// namespace and, optionally, a section of it (a listener of a Gateway, a
// rule of an HTTPRoute, a port of a Service).
type policyTarget struct {
	group   gatewayv1.Group
	kind    gatewayv1.Kind
	ns      string
	name    string
	section string
}

// object returns the target without its section.
func (pt policyTarget) object() policyTarget {
	pt.section = ""
	return pt
}

// String names the target for messages, e.g. `Gateway infra/gw listener
// "http"`.
func (pt policyTarget) String() string {
	s := string(pt.kind) + " " + pt.ns + "/" + pt.name
	if pt.section == "" {
		return s
	}
	what := "section"
	switch pt.kind {
	case kindGateway:
		what = "listener"
	case kindHTTPRoute:
		what = "rule"
	case kindService:
		what = "port"
	}
	return s + " " + what + " " + strconv.Quote(pt.section)
}

// ancestorRef is the ancestorRef of a target that does not exist: the
// target itself, the nearest ancestor there is.
func (pt policyTarget) ancestorRef() gatewayv1.ParentReference {
	return gatewayv1.ParentReference{
		Group:     new(pt.group),
		Kind:      new(pt.kind),
		Namespace: new(gatewayv1.Namespace(pt.ns)),
		Name:      gatewayv1.ObjectName(pt.name),
	}
}

// attachedPolicy is one policy of a kind attached through targetRefs, and
// its translation: spec holds the settings of a valid policy, invalid says
// (naming the field) why the policy cannot be used.
type attachedPolicy[S any] struct {
	kind    string
	key     nn
	created metav1.Time
	gen     int64
	targets []policyTarget
	invalid string
	spec    S

	// missing are the targets whose object does not exist (or is of a
	// kind the policy cannot target).
	missing []policyTarget
	// ancestors are the Gateways the policy's targets are served
	// through, with what went wrong there.
	ancestors map[nn]*ancestorVerdict
}

// ancestorVerdict is what keeps a policy from being in effect through one
// Gateway: a target or section that does not exist, or an older policy
// of the same kind on a target. Empty means the policy is accepted there.
type ancestorVerdict struct {
	notFound string
	conflict string
	// effective is set when the policy is in effect on one of its
	// targets through the Gateway all the same.
	effective bool
}

// provenance names the policy in proxy Policies lists, e.g.
// "TrafficPolicy default/limits".
func (p *attachedPolicy[S]) provenance() string { return p.kind + " " + p.key.String() }

// ancestor returns the verdict of Gateway g, adding it.
func (p *attachedPolicy[S]) ancestor(g *gatewayState) *ancestorVerdict {
	v := p.ancestors[g.key]
	if v == nil {
		v = &ancestorVerdict{}
		p.ancestors[g.key] = v
	}
	return v
}

// attachIndex holds the policies of one kind by target. Between policies
// on one target, the oldest valid one is in effect there, entirely; the
// others are Conflicted. A section (a listener, a rule, a port) is a
// target of its own, more specific than its object: callers merge the
// two.
type attachIndex[S any] struct {
	kind       string
	controller gatewayv1.GatewayController
	all        []*attachedPolicy[S]                  // by namespace/name
	byTarget   map[policyTarget][]*attachedPolicy[S] // oldest first
	byObject   map[policyTarget][]*attachedPolicy[S] // oldest first
}

// policyInput is one policy as an attachIndex reads it.
type policyInput[S any] struct {
	meta *metav1.ObjectMeta
	// targets are the policy's targets; duplicates are dropped.
	targets []policyTarget
	spec    S
	invalid string
}

// newAttachIndex indexes n policies of a kind; input returns the i-th, and
// exists reports whether a target's object exists (sections are checked
// when the target is reached).
func newAttachIndex[S any](kind string, controller gatewayv1.GatewayController, n int, input func(i int) policyInput[S], exists func(policyTarget) bool) *attachIndex[S] {
	ix := &attachIndex[S]{
		kind:       kind,
		controller: controller,
		byTarget:   make(map[policyTarget][]*attachedPolicy[S]),
		byObject:   make(map[policyTarget][]*attachedPolicy[S]),
	}
	for i := range n {
		in := input(i)
		p := &attachedPolicy[S]{
			kind:      kind,
			key:       nn{in.meta.Namespace, in.meta.Name},
			created:   in.meta.CreationTimestamp,
			gen:       in.meta.Generation,
			invalid:   in.invalid,
			spec:      in.spec,
			ancestors: make(map[nn]*ancestorVerdict),
		}
		for _, pt := range in.targets {
			if slices.Contains(p.targets, pt) {
				continue
			}
			p.targets = append(p.targets, pt)
			if !exists(pt.object()) {
				if !slices.Contains(p.missing, pt.object()) {
					p.missing = append(p.missing, pt.object())
				}
				continue
			}
			ix.byTarget[pt] = append(ix.byTarget[pt], p)
			if o := pt.object(); !slices.Contains(ix.byObject[o], p) {
				ix.byObject[o] = append(ix.byObject[o], p)
			}
		}
		ix.all = append(ix.all, p)
	}
	slices.SortFunc(ix.all, func(a, b *attachedPolicy[S]) int { return compareNN(a.key, b.key) })
	byAge := func(a, b *attachedPolicy[S]) int { return olderFirst(a.created, b.created, a.key, b.key) }
	for _, v := range ix.byTarget {
		slices.SortFunc(v, byAge)
	}
	for _, v := range ix.byObject {
		slices.SortFunc(v, byAge)
	}
	return ix
}

// winner returns the policy in effect on target pt: the oldest valid
// policy targeting it, or nil.
func (ix *attachIndex[S]) winner(pt policyTarget) *attachedPolicy[S] {
	for _, p := range ix.byTarget[pt] {
		if p.invalid == "" {
			return p
		}
	}
	return nil
}

// reach records that target pt is served through the Gateways gws: they
// become ancestors of every policy targeting it, and the valid policies
// other than the winner are Conflicted there. It returns the winner.
func (ix *attachIndex[S]) reach(pt policyTarget, gws []*gatewayState) *attachedPolicy[S] {
	w := ix.winner(pt)
	for _, p := range ix.byTarget[pt] {
		for _, g := range gws {
			v := p.ancestor(g)
			if p == w {
				v.effective = true
			}
			if p.invalid == "" && p != w && v.conflict == "" {
				v.conflict = fmt.Sprintf("%s: the older %s %s targets it too", pt, ix.kind, w.key)
			}
		}
	}
	return w
}

// reachObject records that the object obj is served through gws, for
// every policy targeting it or one of its sections: sections that do not
// exist (has reports which do) are TargetNotFound there.
func (ix *attachIndex[S]) reachObject(obj policyTarget, gws []*gatewayState, has func(section string) bool) {
	for _, p := range ix.byObject[obj] {
		for _, pt := range p.targets {
			if pt.object() != obj || pt.section == "" || has(pt.section) {
				continue
			}
			for _, g := range gws {
				if v := p.ancestor(g); v.notFound == "" {
					v.notFound = pt.String() + " not found"
				}
			}
		}
	}
}

// statuses returns the status of the policies that are relevant to the
// controller: those with a target served through one of its Gateways, and
// those none of whose targets exists. A Gateway is an ancestor; a target
// that does not exist is reported with itself as the ancestorRef.
func (ix *attachIndex[S]) statuses() []PolicyStatus {
	var out []PolicyStatus
	for _, p := range ix.all {
		if len(p.ancestors) == 0 && (len(p.targets) == 0 || len(p.missing) < len(p.targets)) {
			continue
		}
		st := PolicyStatus{Namespace: p.key.ns, Name: p.key.name, Generation: p.gen}
		keys := make([]nn, 0, len(p.ancestors))
		for k := range p.ancestors {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, compareNN)
		for _, k := range keys {
			v := p.ancestors[k]
			partly := ""
			if v.effective {
				partly = "; the policy is in effect on its other targets"
			}
			var acc metav1.Condition
			switch {
			case p.invalid != "":
				acc = condition(gatewayv1.PolicyConditionAccepted, false, gatewayv1.PolicyReasonInvalid, p.invalid, p.gen)
			case v.notFound != "":
				acc = condition(gatewayv1.PolicyConditionAccepted, false, gatewayv1.PolicyReasonTargetNotFound, v.notFound+partly, p.gen)
			case v.conflict != "":
				acc = condition(gatewayv1.PolicyConditionAccepted, false, gatewayv1.PolicyReasonConflicted, v.conflict+partly, p.gen)
			default:
				acc = condition(gatewayv1.PolicyConditionAccepted, true, gatewayv1.PolicyReasonAccepted, "policy accepted", p.gen)
			}
			st.Status.Ancestors = append(st.Status.Ancestors, ancestorStatus(gatewayAncestor(k), ix.controller, acc))
		}
		for _, pt := range p.missing {
			acc := condition(gatewayv1.PolicyConditionAccepted, false, gatewayv1.PolicyReasonTargetNotFound, pt.String()+" not found", p.gen)
			if p.invalid != "" {
				acc = condition(gatewayv1.PolicyConditionAccepted, false, gatewayv1.PolicyReasonInvalid, p.invalid, p.gen)
			}
			st.Status.Ancestors = append(st.Status.Ancestors, ancestorStatus(pt.ancestorRef(), ix.controller, acc))
		}
		out = append(out, st)
	}
	return out
}

// ancestorStatus is one entry of a policy's status.ancestors.
func ancestorStatus(ref gatewayv1.ParentReference, controller gatewayv1.GatewayController, conds ...metav1.Condition) gatewayv1.PolicyAncestorStatus {
	return gatewayv1.PolicyAncestorStatus{AncestorRef: ref, ControllerName: controller, Conditions: conds}
}

// provenances returns the provenance of the policies ps in order, without
// nils or repeats.
func provenances[S any](ps ...*attachedPolicy[S]) []string {
	var out []string
	for _, p := range ps {
		if p != nil && !slices.Contains(out, p.provenance()) {
			out = append(out, p.provenance())
		}
	}
	return out
}
