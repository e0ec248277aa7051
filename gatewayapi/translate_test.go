package gatewayapi

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// loadGolden decodes every golden input.
func loadGolden(t testing.TB) map[string]struct {
	res  *Resources
	opts Options
} {
	t.Helper()
	ins, err := filepath.Glob(filepath.Join("testdata", "*.in.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]struct {
		res  *Resources
		opts Options
	})
	for _, in := range ins {
		data, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		res, opts, err := decodeResources(data)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		out[filepath.Base(in)] = struct {
			res  *Resources
			opts Options
		}{res, opts}
	}
	return out
}

// deepCopy copies every object of res.
func deepCopy(res *Resources) *Resources {
	c := &Resources{}
	for i := range res.GatewayClasses {
		c.GatewayClasses = append(c.GatewayClasses, *res.GatewayClasses[i].DeepCopy())
	}
	for i := range res.Gateways {
		c.Gateways = append(c.Gateways, *res.Gateways[i].DeepCopy())
	}
	for i := range res.ListenerSets {
		c.ListenerSets = append(c.ListenerSets, *res.ListenerSets[i].DeepCopy())
	}
	for i := range res.HTTPRoutes {
		c.HTTPRoutes = append(c.HTTPRoutes, *res.HTTPRoutes[i].DeepCopy())
	}
	for i := range res.TLSRoutes {
		c.TLSRoutes = append(c.TLSRoutes, *res.TLSRoutes[i].DeepCopy())
	}
	for i := range res.TCPRoutes {
		c.TCPRoutes = append(c.TCPRoutes, *res.TCPRoutes[i].DeepCopy())
	}
	for i := range res.UDPRoutes {
		c.UDPRoutes = append(c.UDPRoutes, *res.UDPRoutes[i].DeepCopy())
	}
	for i := range res.GRPCRoutes {
		c.GRPCRoutes = append(c.GRPCRoutes, *res.GRPCRoutes[i].DeepCopy())
	}
	for i := range res.ReferenceGrants {
		c.ReferenceGrants = append(c.ReferenceGrants, *res.ReferenceGrants[i].DeepCopy())
	}
	for i := range res.BackendTLSPolicies {
		c.BackendTLSPolicies = append(c.BackendTLSPolicies, *res.BackendTLSPolicies[i].DeepCopy())
	}
	for i := range res.XBackendTrafficPolicies {
		c.XBackendTrafficPolicies = append(c.XBackendTrafficPolicies, *res.XBackendTrafficPolicies[i].DeepCopy())
	}
	c.BackendPolicies = jsonCopy(res.BackendPolicies)
	c.TrafficPolicies = jsonCopy(res.TrafficPolicies)
	for i := range res.Services {
		c.Services = append(c.Services, *res.Services[i].DeepCopy())
	}
	for i := range res.EndpointSlices {
		c.EndpointSlices = append(c.EndpointSlices, *res.EndpointSlices[i].DeepCopy())
	}
	for i := range res.Secrets {
		c.Secrets = append(c.Secrets, *res.Secrets[i].DeepCopy())
	}
	for i := range res.ConfigMaps {
		c.ConfigMaps = append(c.ConfigMaps, *res.ConfigMaps[i].DeepCopy())
	}
	for i := range res.Namespaces {
		c.Namespaces = append(c.Namespaces, *res.Namespaces[i].DeepCopy())
	}
	return c
}

// jsonCopy copies v through JSON, for the types without a DeepCopy
// method. A nil slice stays nil.
func jsonCopy[T any](v []T) []T {
	if v == nil {
		return nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out []T
	if err := json.Unmarshal(data, &out); err != nil {
		panic(err)
	}
	return out
}

// shuffle permutes every list of res.
func shuffle(r *rand.Rand, res *Resources) {
	perm := func(n int, swap func(i, j int)) { r.Shuffle(n, swap) }
	perm(len(res.GatewayClasses), func(i, j int) {
		res.GatewayClasses[i], res.GatewayClasses[j] = res.GatewayClasses[j], res.GatewayClasses[i]
	})
	perm(len(res.Gateways), func(i, j int) { res.Gateways[i], res.Gateways[j] = res.Gateways[j], res.Gateways[i] })
	perm(len(res.ListenerSets), func(i, j int) { res.ListenerSets[i], res.ListenerSets[j] = res.ListenerSets[j], res.ListenerSets[i] })
	perm(len(res.HTTPRoutes), func(i, j int) { res.HTTPRoutes[i], res.HTTPRoutes[j] = res.HTTPRoutes[j], res.HTTPRoutes[i] })
	perm(len(res.TLSRoutes), func(i, j int) { res.TLSRoutes[i], res.TLSRoutes[j] = res.TLSRoutes[j], res.TLSRoutes[i] })
	perm(len(res.TCPRoutes), func(i, j int) { res.TCPRoutes[i], res.TCPRoutes[j] = res.TCPRoutes[j], res.TCPRoutes[i] })
	perm(len(res.UDPRoutes), func(i, j int) { res.UDPRoutes[i], res.UDPRoutes[j] = res.UDPRoutes[j], res.UDPRoutes[i] })
	perm(len(res.GRPCRoutes), func(i, j int) { res.GRPCRoutes[i], res.GRPCRoutes[j] = res.GRPCRoutes[j], res.GRPCRoutes[i] })
	perm(len(res.ReferenceGrants), func(i, j int) {
		res.ReferenceGrants[i], res.ReferenceGrants[j] = res.ReferenceGrants[j], res.ReferenceGrants[i]
	})
	perm(len(res.BackendTLSPolicies), func(i, j int) {
		res.BackendTLSPolicies[i], res.BackendTLSPolicies[j] = res.BackendTLSPolicies[j], res.BackendTLSPolicies[i]
	})
	perm(len(res.XBackendTrafficPolicies), func(i, j int) {
		res.XBackendTrafficPolicies[i], res.XBackendTrafficPolicies[j] = res.XBackendTrafficPolicies[j], res.XBackendTrafficPolicies[i]
	})
	perm(len(res.BackendPolicies), func(i, j int) {
		res.BackendPolicies[i], res.BackendPolicies[j] = res.BackendPolicies[j], res.BackendPolicies[i]
	})
	perm(len(res.TrafficPolicies), func(i, j int) {
		res.TrafficPolicies[i], res.TrafficPolicies[j] = res.TrafficPolicies[j], res.TrafficPolicies[i]
	})
	perm(len(res.Services), func(i, j int) { res.Services[i], res.Services[j] = res.Services[j], res.Services[i] })
	perm(len(res.EndpointSlices), func(i, j int) {
		res.EndpointSlices[i], res.EndpointSlices[j] = res.EndpointSlices[j], res.EndpointSlices[i]
	})
	perm(len(res.Secrets), func(i, j int) { res.Secrets[i], res.Secrets[j] = res.Secrets[j], res.Secrets[i] })
	perm(len(res.ConfigMaps), func(i, j int) { res.ConfigMaps[i], res.ConfigMaps[j] = res.ConfigMaps[j], res.ConfigMaps[i] })
	perm(len(res.Namespaces), func(i, j int) { res.Namespaces[i], res.Namespaces[j] = res.Namespaces[j], res.Namespaces[i] })
}

// TestTranslateDoesNotMutate checks that Translate leaves its input as it
// found it.
func TestTranslateDoesNotMutate(t *testing.T) {
	for name, g := range loadGolden(t) {
		before := deepCopy(g.res)
		Translate(g.res, g.opts)
		if diff := cmp.Diff(before, g.res); diff != "" {
			t.Errorf("%s: Translate modified its input (-before +after):\n%s", name, diff)
		}
	}
}

// TestTranslateDeterministic checks that the output depends neither on
// the order of the input objects nor on the run.
func TestTranslateDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for name, g := range loadGolden(t) {
		want := Translate(g.res, g.opts)
		for i := range 5 {
			res := deepCopy(g.res)
			shuffle(r, res)
			got := Translate(res, g.opts)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("%s: shuffle %d changed the result (-want +got):\n%s", name, i, diff)
			}
		}
	}
}

// TestTranslateNil checks that a nil or empty bundle translates to
// nothing.
func TestTranslateNil(t *testing.T) {
	for _, res := range []*Resources{nil, {}} {
		got := Translate(res, Options{})
		if diff := cmp.Diff(Result{}, got); diff != "" {
			t.Errorf("Translate(%v) (-want +got):\n%s", res, diff)
		}
	}
}
