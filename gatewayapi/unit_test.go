package gatewayapi

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rauta/rauta/proxy"
	"github.com/rauta/rauta/upstream"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestBackendName(t *testing.T) {
	if got, want := BackendName("ns", "svc", 8080), "ns/svc:8080"; got != want {
		t.Errorf("BackendName = %q, want %q", got, want)
	}
}

func TestParseBackendName(t *testing.T) {
	type parsed struct {
		NS, Svc string
		Port    int32
		OK      bool
	}
	tests := []struct {
		name string
		want parsed
	}{
		{BackendName("ns", "svc", 8080), parsed{"ns", "svc", 8080, true}},
		{ClientCertificateBackendName(BackendName("ns", "svc", 443), "pki/client"), parsed{"ns", "svc", 443, true}},
		{"ns/svc:443+client-certificate=pki/client:1", parsed{"ns", "svc", 443, true}},
		{"ns/svc", parsed{}},
		{"/svc:80", parsed{}},
		{"ns/:80", parsed{}},
		{"ns/svc:http", parsed{}},
		{"ns/svc:0", parsed{}},
		{"ns/svc:99999999999", parsed{}},
		{"svc:80", parsed{}},
	}
	for _, tt := range tests {
		var got parsed
		got.NS, got.Svc, got.Port, got.OK = ParseBackendName(tt.name)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseBackendName(%q) (-want +got):\n%s", tt.name, diff)
		}
	}
	if got, want := ClientCertificateBackendName("ns/svc:443", "pki/client"), "ns/svc:443+client-certificate=pki/client"; got != want {
		t.Errorf("ClientCertificateBackendName = %q, want %q", got, want)
	}
}

func TestSameValidation(t *testing.T) {
	a := &proxy.ClientValidation{Name: "ns/a", CACertificates: []byte("pem"), Mode: proxy.AllowValidOnly}
	sameBytes := &proxy.ClientValidation{Name: "ns/b", CACertificates: []byte("pem"), Mode: proxy.AllowValidOnly}
	insecure := &proxy.ClientValidation{Name: "ns/a", CACertificates: []byte("pem"), Mode: proxy.AllowInsecureFallback}
	otherCA := &proxy.ClientValidation{Name: "ns/a", CACertificates: []byte("other"), Mode: proxy.AllowValidOnly}
	tests := []struct {
		a, b *proxy.ClientValidation
		want bool
	}{
		{nil, nil, true},
		{a, nil, false},
		{nil, a, false},
		{a, sameBytes, true},
		{a, insecure, false},
		{a, otherCA, false},
	}
	for i, tt := range tests {
		if got := sameValidation(tt.a, tt.b); got != tt.want {
			t.Errorf("%d: sameValidation = %t, want %t", i, got, tt.want)
		}
	}
}

func TestIntersectHostnames(t *testing.T) {
	tests := []struct {
		listener string
		route    []string
		want     []string
		ok       bool
	}{
		{"", nil, nil, true},
		{"", []string{"b.com", "a.com", "a.com"}, []string{"a.com", "b.com"}, true},
		{"foo.com", nil, []string{"foo.com"}, true},
		{"foo.com", []string{"FOO.com"}, []string{"foo.com"}, true},
		{"foo.com", []string{"bar.com"}, nil, false},
		{"*.example.com", []string{"a.example.com", "a.b.example.com", "example.com"}, []string{"a.b.example.com", "a.example.com"}, true},
		{"*.example.com", []string{"*.example.com"}, []string{"*.example.com"}, true},
		{"*.example.com", []string{"*.a.example.com"}, []string{"*.a.example.com"}, true},
		{"*.a.example.com", []string{"*.example.com"}, []string{"*.a.example.com"}, true},
		{"a.example.com", []string{"*.example.com"}, []string{"a.example.com"}, true},
		{"example.com", []string{"*.example.com"}, nil, false},
		{"*.example.com", []string{"*.other.com", "xexample.com"}, nil, false},
		{"*.com", []string{"*.example.com", "foo.com"}, []string{"*.example.com", "foo.com"}, true},
	}
	for _, tt := range tests {
		got, _, ok := intersectHostnames(tt.listener, tt.route)
		if ok != tt.ok || !cmp.Equal(got, tt.want) {
			t.Errorf("intersectHostnames(%q, %q) = %q, %v; want %q, %v", tt.listener, tt.route, got, ok, tt.want, tt.ok)
		}
	}
}

func TestIntersectHostnamesOrigins(t *testing.T) {
	// Sorted by hostname, each with the route hostname it came from.
	hosts, origins, ok := intersectHostnames("*.example.com", []string{"z.example.com", "*.com", "A.example.com"})
	if !ok || !cmp.Equal(hosts, []string{"*.example.com", "a.example.com", "z.example.com"}) || !cmp.Equal(origins, []string{"*.com", "a.example.com", "z.example.com"}) {
		t.Errorf("got %q, %q, %v", hosts, origins, ok)
	}
	hosts, origins, ok = intersectHostnames("abc.example.com", []string{"*.com", "*.example.com"})
	if !ok || !cmp.Equal(hosts, []string{"abc.example.com"}) || !cmp.Equal(origins, []string{"*.example.com"}) {
		t.Errorf("got %q, %q, %v", hosts, origins, ok)
	}
	hosts, origins, ok = intersectHostnames("abc.example.com", nil)
	if !ok || !cmp.Equal(hosts, []string{"abc.example.com"}) || !cmp.Equal(origins, []string{"*"}) {
		t.Errorf("got %q, %q, %v", hosts, origins, ok)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0s", 0, true},
		{"1s", time.Second, true},
		{"500ms", 500 * time.Millisecond, true},
		{"1h30m", 90 * time.Minute, true},
		{"1h2m3s4ms", time.Hour + 2*time.Minute + 3*time.Second + 4*time.Millisecond, true},
		{"99999s", 99999 * time.Second, true},
		{"", 0, false},
		{"1", 0, false},
		{"1.5s", 0, false},
		{"-1s", 0, false},
		{"100000s", 0, false},
		{"1us", 0, false},
		{"1h1h1h1h1h", 0, false},
		{" 1s", 0, false},
	}
	for _, tt := range tests {
		got, err := parseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"1s", "1h30m", "500ms", "0s", "1.5s", "99999h1m1s1ms"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDuration(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("parseDuration(%q) = %v, negative", s, d)
		}
		if d2, err := time.ParseDuration(s); err != nil || d2 != d {
			t.Fatalf("parseDuration(%q) = %v, time.ParseDuration = %v, %v", s, d, d2, err)
		}
	})
}

func TestPickFromPool(t *testing.T) {
	pool := netip.MustParsePrefix("10.0.0.0/30") // .1 and .2 usable
	taken := map[netip.Addr]bool{}
	var got []netip.Addr
	for _, k := range []string{"a", "b"} {
		ip, ok := pickFromPool(pool, k, taken)
		if !ok {
			t.Fatalf("pool exhausted after %v", got)
		}
		if !pool.Contains(ip) || ip == pool.Addr() || ip == netip.MustParseAddr("10.0.0.3") {
			t.Fatalf("picked %v: network, broadcast or outside %v", ip, pool)
		}
		taken[ip] = true
		got = append(got, ip)
	}
	if got[0] == got[1] {
		t.Fatalf("picked %v twice", got[0])
	}
	if ip, ok := pickFromPool(pool, "c", taken); ok {
		t.Fatalf("picked %v from an exhausted pool", ip)
	}
	// Stable: the same key gives the same address.
	a, _ := pickFromPool(netip.MustParsePrefix("127.1.0.0/16"), "ns/gw", nil)
	b, _ := pickFromPool(netip.MustParsePrefix("127.1.0.0/16"), "ns/gw", nil)
	if a != b {
		t.Fatalf("pickFromPool not stable: %v, %v", a, b)
	}
	v6, ok := pickFromPool(netip.MustParsePrefix("fd00::/64"), "ns/gw", nil)
	if !ok || !netip.MustParsePrefix("fd00::/64").Contains(v6) {
		t.Fatalf("IPv6 pool gave %v, %v", v6, ok)
	}
}

func TestAddressesOverlap(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"127.0.0.1", "127.0.0.1", true},
		{"127.0.0.1", "127.0.0.2", false},
		{"0.0.0.0", "127.0.0.2", true},
		{"127.0.0.2", "0.0.0.0", true},
		{"::", "127.0.0.2", true},
		{"0.0.0.0", "::1", false},
		{"::1", "::2", false},
		{"::", "::2", true},
	}
	for _, tt := range tests {
		if got := addressesOverlap(tt.a, tt.b); got != tt.want {
			t.Errorf("addressesOverlap(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestEndpoints(t *testing.T) {
	yes, no := new(true), new(false)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)},
			{Name: "named", Port: 81, TargetPort: intstr.FromString("alt")},
			{Name: "same", Port: 82},
		}},
	}
	slice := func(name string, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) discoveryv1.EndpointSlice {
		return discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: map[string]string{serviceNameLabel: "web"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       ports,
			Endpoints:   eps,
		}
	}
	port := func(name string, n int32) discoveryv1.EndpointPort {
		return discoveryv1.EndpointPort{Name: new(name), Port: new(n)}
	}
	ep := func(ready, serving, terminating *bool, addrs ...string) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Addresses: addrs, Conditions: discoveryv1.EndpointConditions{Ready: ready, Serving: serving, Terminating: terminating}}
	}
	eps := func(addrs ...string) []upstream.Endpoint {
		var out []upstream.Endpoint
		for _, a := range addrs {
			out = append(out, upstream.Endpoint{Address: a})
		}
		return out
	}
	other := slice("other", []discoveryv1.EndpointPort{port("http", 9999)}, ep(nil, nil, nil, "10.9.9.9"))
	other.Labels[serviceNameLabel] = "other"
	otherNS := slice("other-ns", []discoveryv1.EndpointPort{port("http", 9999)}, ep(nil, nil, nil, "10.9.9.8"))
	otherNS.Namespace = "elsewhere"
	fqdn := slice("fqdn", []discoveryv1.EndpointPort{port("http", 8080)}, ep(nil, nil, nil, "example.com"))
	fqdn.AddressType = discoveryv1.AddressTypeFQDN

	tests := []struct {
		name   string
		port   int32
		slices []discoveryv1.EndpointSlice
		want   []upstream.Endpoint
	}{
		{"no such port", 99, []discoveryv1.EndpointSlice{slice("a", nil, ep(nil, nil, nil, "10.0.0.1"))}, nil},
		{"ready nil and true, not ready skipped", 80, []discoveryv1.EndpointSlice{
			slice("a", []discoveryv1.EndpointPort{port("http", 8080)}, ep(nil, nil, nil, "10.0.0.2"), ep(yes, nil, nil, "10.0.0.1"), ep(no, yes, no, "10.0.0.3")),
		}, eps("10.0.0.1:8080", "10.0.0.2:8080")},
		{"terminating used only when none ready", 80, []discoveryv1.EndpointSlice{
			slice("a", []discoveryv1.EndpointPort{port("http", 8080)}, ep(no, yes, yes, "10.0.0.4"), ep(no, no, yes, "10.0.0.5")),
		}, eps("10.0.0.4:8080")},
		{"terminating ignored when one is ready", 80, []discoveryv1.EndpointSlice{
			slice("a", []discoveryv1.EndpointPort{port("http", 8080)}, ep(no, yes, yes, "10.0.0.4")),
			slice("b", []discoveryv1.EndpointPort{port("http", 8080)}, ep(yes, yes, no, "10.0.0.6")),
		}, eps("10.0.0.6:8080")},
		{"numeric targetPort without slice port names", 80, []discoveryv1.EndpointSlice{
			slice("a", nil, ep(nil, nil, nil, "10.0.0.1")),
		}, eps("10.0.0.1:8080")},
		{"named targetPort through slice ports", 81, []discoveryv1.EndpointSlice{
			slice("a", []discoveryv1.EndpointPort{port("alt", 7000)}, ep(nil, nil, nil, "10.0.0.1")),
			slice("b", []discoveryv1.EndpointPort{port("nope", 7001)}, ep(nil, nil, nil, "10.0.0.2")),
		}, eps("10.0.0.1:7000")},
		{"no targetPort means the port", 82, []discoveryv1.EndpointSlice{slice("a", nil, ep(nil, nil, nil, "10.0.0.1"))}, eps("10.0.0.1:82")},
		{"duplicates, IPv6, bad addresses, other services", 80, []discoveryv1.EndpointSlice{
			slice("a", []discoveryv1.EndpointPort{port("http", 8080)}, ep(nil, nil, nil, "10.0.0.1", "fd00::1", "not-an-ip")),
			slice("b", []discoveryv1.EndpointPort{port("http", 8080)}, ep(nil, nil, nil, "10.0.0.1")),
			other, otherNS, fqdn,
		}, eps("10.0.0.1:8080", "[fd00::1]:8080")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Endpoints(svc, tt.port, tt.slices)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Endpoints (-want +got):\n%s", diff)
			}
		})
	}
	if got := Endpoints(nil, 80, nil); got != nil {
		t.Errorf("Endpoints(nil) = %v", got)
	}
}

func TestSupportedFeaturesSorted(t *testing.T) {
	fs := supportedFeatures()
	for i := 1; i < len(fs); i++ {
		if fs[i-1].Name >= fs[i].Name {
			t.Errorf("supportedFeatures not sorted and unique at %d: %q >= %q", i, fs[i-1].Name, fs[i].Name)
		}
	}
}
