package h2wire

import (
	"net/http"
	"testing"
)

func TestValidFieldName(t *testing.T) {
	for name, want := range map[string]bool{
		"content-type": true, "x-b3-traceid": true, "a": true,
		"": false, "Content-Type": false, "bad name": false, "a:b": false, ":path": false,
	} {
		if got := ValidFieldName(name); got != want {
			t.Errorf("ValidFieldName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestConnectionSpecific(t *testing.T) {
	for _, k := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade"} {
		if !ConnectionSpecific(k) {
			t.Errorf("%s not connection-specific", k)
		}
	}
	for _, k := range []string{"connection", "KEEP-ALIVE", "transfer-encoding", "upgrade"} {
		if !ConnectionSpecific(k) {
			t.Errorf("%s (not canonical) not connection-specific", k)
		}
	}
	for _, k := range []string{"Te", "Content-Length", "Host", "Trailer", "Connectionx", "Upgrade-Insecure-Requests"} {
		if ConnectionSpecific(k) {
			t.Errorf("%s connection-specific", k)
		}
	}
}

func TestNamesRoundTrip(t *testing.T) {
	var n Names
	for _, k := range []string{"Content-Type", "Grpc-Status", "X-Custom-Field", "X-Custom-Field"} {
		l := Lower(k)
		if !ValidFieldName(l) {
			t.Fatalf("Lower(%q) = %q, not a wire name", k, l)
		}
		if got := n.Canonical(l); got != k {
			t.Errorf("Canonical(%q) = %q, want %q", l, got, k)
		}
	}
	if len(n.cache) != 1 {
		t.Errorf("cache holds %d names, want the one uncommon name", len(n.cache))
	}
	for i := 0; i < 2*maxCached; i++ {
		n.Canonical("x-" + string(rune('a'+i%26)) + string(rune('a'+i/26)))
	}
	if len(n.cache) > maxCached {
		t.Errorf("cache grew to %d names", len(n.cache))
	}
}

func TestLowerCommonAllocatesNothing(t *testing.T) {
	if a := testing.AllocsPerRun(100, func() { Lower("Content-Type"); Lower("Grpc-Status") }); a != 0 {
		t.Errorf("Lower of common names: %v allocs", a)
	}
	if http.CanonicalHeaderKey("te") != "Te" {
		t.Fatal("canonical form of te changed")
	}
}
