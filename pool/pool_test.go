package pool

import (
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPoolGetValidates(t *testing.T) {
	p := newTestPool(t, Options{})
	bad := map[string]Key{
		"no port":          {Address: "10.0.0.1", Protocol: HTTP1},
		"empty address":    {Protocol: HTTP1},
		"unknown protocol": {Address: "10.0.0.1:80", Protocol: Protocol(9)},
		"TLS on h2c":       {Address: "10.0.0.1:80", Protocol: H2C, TLS: &tls.Config{}},
	}
	for name, k := range bad {
		if _, err := p.Get(k); err == nil {
			t.Errorf("%s: Get(%v) succeeded", name, k)
		}
	}
	k := Key{Address: "10.0.0.1:80", Protocol: HTTP1}
	e1, err := p.Get(k)
	if err != nil {
		t.Fatal(err)
	}
	e2, _ := p.Get(k)
	if e1 != e2 || e1.Key() != k {
		t.Error("Get returned a different endpoint for the same key")
	}
	cfgA, cfgB := &tls.Config{}, &tls.Config{}
	a, _ := p.Get(Key{Address: "10.0.0.1:443", Protocol: H2, TLS: cfgA})
	b, _ := p.Get(Key{Address: "10.0.0.1:443", Protocol: H2, TLS: cfgB})
	if a == b {
		t.Error("different TLS configurations share an endpoint")
	}
}

func TestPoolRetain(t *testing.T) {
	gate := make(chan struct{})
	s, _ := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			w.(http.Flusher).Flush()
			<-gate
		}
		io.WriteString(w, "done")
	}))
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	p := newTestPool(t, Options{})
	kept := endpoint(t, p, s.URL, HTTP1)
	dropped, _ := p.Get(Key{Address: kept.Key().Address, Protocol: H2C})
	// Give the dropped endpoint an idle HTTP/1.1 connection (Upgrade
	// requests use HTTP/1.1 on h2c endpoints) and one request in flight.
	roundTrip(t, kept, newRequest(t, "GET", "/", nil))
	upgradeReq := func(path string) *http.Request {
		req := newRequest(t, "GET", path, nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "none") // the backend ignores it: a plain 200
		return req
	}
	inflight, err := dropped.RoundTrip(upgradeReq("/slow"))
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, dropped, upgradeReq("/"))
	if st := dropped.Stats(); st.Open != 2 || st.Idle != 1 {
		t.Fatalf("before Retain: %+v", st)
	}

	if n := p.Retain([]Key{kept.Key()}); n != 1 {
		t.Errorf("Retain removed %d endpoints, want 1", n)
	}
	if st := dropped.Stats(); st.Open != 1 || st.Idle != 0 || st.InUse != 1 {
		t.Errorf("after Retain, only the idle connection should be closed: %+v", st)
	}
	if st := kept.Stats(); st.Idle != 1 {
		t.Errorf("the kept endpoint lost its idle connection: %+v", st)
	}
	release()
	body, err := io.ReadAll(inflight.Body)
	inflight.Body.Close()
	if err != nil || string(body) != "done" {
		t.Fatalf("in-flight request on a removed endpoint: %q, %v", body, err)
	}
	if st := dropped.Stats(); st.Open != 0 {
		t.Errorf("a removed endpoint pooled a connection: %+v", st)
	}
	if _, ok := p.Lookup(dropped.Key()); ok {
		t.Error("Lookup finds a removed endpoint")
	}
	again, _ := p.Get(dropped.Key())
	if again == dropped {
		t.Error("Get returned the removed endpoint")
	}

	stats := p.Stats()
	var got []Protocol
	for _, st := range stats {
		got = append(got, st.Protocol)
	}
	if diff := cmp.Diff([]Protocol{HTTP1, H2C}, got); diff != "" {
		t.Errorf("Stats order (-want +got):\n%s", diff)
	}

	p.Close()
	if _, err := p.Get(kept.Key()); !errors.Is(err, ErrPoolClosed) {
		t.Errorf("Get after Close: %v", err)
	}
	if st := kept.Stats(); st.Open != 0 {
		t.Errorf("Close left idle connections open: %+v", st)
	}
}

func TestProtocolString(t *testing.T) {
	got := []string{HTTP1.String(), H2C.String(), H2.String(), HTTP1TLS.String(), Protocol(7).String()}
	want := []string{"http1", "h2c", "h2", "http1-tls", "Protocol(7)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if !H2.TLS() || !HTTP1TLS.TLS() || H2C.TLS() || HTTP1.TLS() {
		t.Error("Protocol.TLS is wrong")
	}
}
