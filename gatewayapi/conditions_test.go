package gatewayapi

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestConditionTypesMatchOutput translates every golden input and checks
// that setConditionTypes is exactly what the translator sets: each
// condition of the output is listed for its place (or a status writer
// would not remove it once the translator stops setting it), and each
// listed type appears somewhere in the output (or a status writer would
// claim, and remove, another controller's condition of that type).
func TestConditionTypesMatchOutput(t *testing.T) {
	ins, err := filepath.Glob(filepath.Join("testdata", "*.in.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) == 0 {
		t.Fatal("no golden inputs")
	}
	seen := map[string]map[string]bool{}
	check := func(file, place string, listed []string, where string, cs []metav1.Condition) {
		t.Helper()
		if seen[place] == nil {
			seen[place] = map[string]bool{}
		}
		for _, c := range cs {
			seen[place][c.Type] = true
			if !slices.Contains(listed, c.Type) {
				t.Errorf("%s: %s: condition %q is not in setConditionTypes.%s", file, where, c.Type, place)
			}
		}
	}
	s := setConditionTypes
	for _, in := range ins {
		data, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		res, opts, err := decodeResources(data)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		st := Translate(res, opts).Status
		for _, g := range st.GatewayClasses {
			check(in, "GatewayClass", s.GatewayClass, "GatewayClass "+g.Name, g.Status.Conditions)
		}
		for _, g := range st.Gateways {
			check(in, "Gateway", s.Gateway, "Gateway "+g.Name, g.Status.Conditions)
			for _, l := range g.Status.Listeners {
				check(in, "Listener", s.Listener, "Gateway "+g.Name+" listener "+string(l.Name), l.Conditions)
			}
		}
		for _, ls := range st.ListenerSets {
			check(in, "ListenerSet", s.ListenerSet, "ListenerSet "+ls.Name, ls.Status.Conditions)
			for _, l := range ls.Status.Listeners {
				check(in, "Listener", s.Listener, "ListenerSet "+ls.Name+" listener "+string(l.Name), l.Conditions)
			}
		}
		for _, r := range st.HTTPRoutes {
			for _, p := range r.Status.Parents {
				check(in, "RouteParent", s.RouteParent, "HTTPRoute "+r.Name, p.Conditions)
			}
		}
		for _, p := range st.BackendTLSPolicies {
			for _, a := range p.Status.Ancestors {
				check(in, "BackendTLSPolicyAncestor", s.BackendTLSPolicyAncestor, "BackendTLSPolicy "+p.Name, a.Conditions)
			}
		}
		for kind, ps := range map[string][]PolicyStatus{
			"XBackendTrafficPolicy": st.XBackendTrafficPolicies,
			"BackendPolicy":         st.BackendPolicies,
			"TrafficPolicy":         st.TrafficPolicies,
		} {
			for _, p := range ps {
				for _, a := range p.Status.Ancestors {
					check(in, "PolicyAncestor", s.PolicyAncestor, kind+" "+p.Name, a.Conditions)
				}
			}
		}
	}
	for place, listed := range map[string][]string{
		"GatewayClass":             s.GatewayClass,
		"Gateway":                  s.Gateway,
		"Listener":                 s.Listener,
		"ListenerSet":              s.ListenerSet,
		"RouteParent":              s.RouteParent,
		"BackendTLSPolicyAncestor": s.BackendTLSPolicyAncestor,
		"PolicyAncestor":           s.PolicyAncestor,
	} {
		for _, typ := range listed {
			if !seen[place][typ] {
				t.Errorf("setConditionTypes.%s lists %q, which no golden output sets there (move it to retiredConditionTypes if the translator no longer sets it, or add a golden case)", place, typ)
			}
		}
	}
}

// TestOwnedConditionTypes checks that OwnedConditionTypes holds the set
// and the retired types and hands out a copy.
func TestOwnedConditionTypes(t *testing.T) {
	a := OwnedConditionTypes()
	if !slices.Equal(a.Gateway, setConditionTypes.Gateway) || !slices.Contains(a.Listener, "Conflicted") {
		t.Fatalf("OwnedConditionTypes() = %+v", a)
	}
	a.Gateway[0] = "Changed"
	if b := OwnedConditionTypes(); b.Gateway[0] == "Changed" || setConditionTypes.Gateway[0] == "Changed" {
		t.Error("OwnedConditionTypes shares its slices")
	}
}
