package upstream

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rauta/rauta/breaker"
	"github.com/rauta/rauta/maglev"
	"github.com/rauta/rauta/pool"
)

func eps(addrs ...string) []Endpoint {
	out := make([]Endpoint, len(addrs))
	for i, a := range addrs {
		out[i] = Endpoint{Address: a}
	}
	return out
}

func newSet(t *testing.T, opts Options) *Set {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := NewSet(opts)
	t.Cleanup(s.Close)
	return s
}

func mustSync(t *testing.T, s *Set, specs []Spec, tr func(*Spec) Transport) map[string]*Backend {
	t.Helper()
	bs, errs := s.Sync(specs, tr)
	if len(errs) > 0 {
		t.Fatalf("Sync: %v", errs)
	}
	s.Settle()
	return bs
}

// TestSyncKeepsMembers: a member that stays keeps its state (breaker,
// stream count) across Syncs; one that leaves is marked removed and the
// Removed hook names it; a backend that leaves has all its members
// removed.
func TestSyncKeepsMembers(t *testing.T) {
	var mu sync.Mutex
	var removed []string
	s := newSet(t, Options{Hooks: Hooks{Removed: func(b, a string) {
		mu.Lock()
		removed = append(removed, b+"/"+a)
		mu.Unlock()
	}}})
	specs := []Spec{{Name: "a", Endpoints: eps("10.0.0.1:1", "10.0.0.2:1")}, {Name: "b", Endpoints: eps("10.0.0.3:1")}}
	bs := mustSync(t, s, specs, nil)
	m1 := bs["a"].Table().Find([]byte("10.0.0.1:1"))
	m2 := bs["a"].Table().Find([]byte("10.0.0.2:1"))
	if m1 == nil || m2 == nil || !m1.Acquire() {
		t.Fatal("members missing")
	}
	specs = []Spec{{Name: "a", Endpoints: eps("10.0.0.1:1", "10.0.0.4:1")}}
	bs2 := mustSync(t, s, specs, nil)
	if bs2["a"] != bs["a"] {
		t.Error("backend a was replaced though its transport did not change")
	}
	if got := bs2["a"].Table().Find([]byte("10.0.0.1:1")); got != m1 || got.Streams() != 1 {
		t.Errorf("10.0.0.1 lost its state: %p vs %p", got, m1)
	}
	if !m2.Removed() || bs2["a"].Table().Find([]byte("10.0.0.2:1")) != nil {
		t.Error("10.0.0.2 not removed")
	}
	if bs2["b"] != nil || !bs["b"].Table().Members()[0].Removed() {
		t.Error("backend b not removed")
	}
	mu.Lock()
	got := strings.Join(removed, " ")
	mu.Unlock()
	if got != "a/10.0.0.2:1 b/10.0.0.3:1" && got != "b/10.0.0.3:1 a/10.0.0.2:1" {
		t.Errorf("Removed hook: %q", got)
	}
}

// TestTransportKeyChange: a changed transport key gives a backend new
// members (fresh breakers and transports), calls TLS once per change and
// not for an unchanged key.
func TestTransportKeyChange(t *testing.T) {
	p := pool.New(pool.Options{})
	defer p.Close()
	s := newSet(t, Options{Pool: p})
	calls := 0
	tr := func(key string) func(*Spec) Transport {
		return func(*Spec) Transport {
			return Transport{Key: key, Protocol: pool.H2, TLS: func() (*tls.Config, error) {
				calls++
				return &tls.Config{ServerName: key}, nil
			}}
		}
	}
	specs := []Spec{{Name: "a", Endpoints: eps("127.0.0.1:1")}}
	b1 := mustSync(t, s, specs, tr("k1"))["a"]
	b1again := mustSync(t, s, specs, tr("k1"))["a"]
	if b1again != b1 || calls != 1 {
		t.Fatalf("same key: replaced %v, TLS calls %d", b1again != b1, calls)
	}
	m1 := b1.Table().Members()[0]
	b2 := mustSync(t, s, specs, tr("k2"))["a"]
	if b2 == b1 || calls != 2 || b2.TLS().ServerName != "k2" {
		t.Fatalf("new key: replaced %v, TLS calls %d", b2 != b1, calls)
	}
	m2 := b2.Table().Members()[0]
	if m2 == m1 || !m1.Removed() || m2.Transport() == m1.Transport() {
		t.Error("members kept across a transport change")
	}
	if m2.Transport().Key().TLS != b2.TLS() {
		t.Error("the member's transport does not use the backend's TLS configuration")
	}
	// The retired transport is closed by Settle: the pool no longer has it.
	if _, ok := p.Lookup(m1.Transport().Key()); ok {
		t.Error("the old transport is still in the pool after Settle")
	}
}

// TestSyncErrors: an invalid spec is reported under its name, naming the
// field, and left out; the others are served.
func TestSyncErrors(t *testing.T) {
	s := newSet(t, Options{})
	specs := []Spec{
		{Name: "ok", Endpoints: eps("10.0.0.1:1")},
		{Name: "badaddr", Endpoints: eps("10.0.0.1")},
		{Name: "badkey", LoadBalancer: LoadBalancer{Policy: Maglev, Key: HashKey{Source: KeyHeader, Name: "bad header"}}},
		{Name: "badhealth", HealthCheck: &HealthCheck{Kind: HealthTCP, ExpectedStatuses: []StatusRange{{Start: 200}}}},
		{Name: "badconn", Connections: ConnectionLimits{MaxPerEndpoint: -1}},
		{Name: "ok"},
		{},
	}
	bs, errs := s.Sync(specs, nil)
	if len(bs) != 1 || bs["ok"] == nil {
		t.Errorf("served %d backends, want ok only", len(bs))
	}
	want := map[string]string{
		"badaddr":   `endpoints[0].address "10.0.0.1"`,
		"badkey":    `loadBalancer.key.name "bad header"`,
		"badhealth": "healthCheck.expectedStatuses",
		"badconn":   "connections.maxPerEndpoint: must not be negative",
		"ok":        "duplicate name",
		"specs[6]":  "name: must not be empty",
	}
	for k, w := range want {
		if err := errs[k]; err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("errs[%q] = %v, want it to contain %q", k, err, w)
		}
	}
	if len(errs) != len(want) {
		t.Errorf("errors: %v", errs)
	}
}

// TestPickWeightsAndAvoid: round robin follows the weights, smoothly, and
// a retry avoids the member it tried unless it is the only one.
func TestPickWeightsAndAvoid(t *testing.T) {
	s := newSet(t, Options{})
	bs := mustSync(t, s, []Spec{
		{Name: "w", Endpoints: []Endpoint{{Address: "10.0.0.1:1", Weight: 2}, {Address: "10.0.0.2:1", Weight: 1}, {Address: "10.0.0.2:1", Weight: 1}}},
		{Name: "one", Endpoints: eps("10.0.0.9:1")},
	}, nil)
	tb := bs["w"].Table()
	if tb.Len() != 2 {
		t.Fatalf("duplicate address not merged: %d members", tb.Len())
	}
	count := map[string]int{}
	var last string
	run := 0
	for range 400 {
		m, tk := tb.Pick(0, false, nil)
		m.Done(tk, true)
		count[m.Addr()]++
		if m.Addr() == last {
			run++
			if run > 1 {
				t.Fatal("the schedule bunches picks of one member")
			}
		} else {
			run = 0
		}
		last = m.Addr()
	}
	if count["10.0.0.1:1"] != 200 || count["10.0.0.2:1"] != 200 {
		t.Errorf("weights 2 and 1+1 gave %v", count)
	}
	first, tk := tb.Pick(0, false, nil)
	first.Done(tk, true)
	for range 10 {
		m, tk := tb.Pick(0, false, first)
		m.Done(tk, true)
		if m == first {
			t.Fatal("Pick returned the avoided member")
		}
	}
	one := bs["one"].Table()
	m, tk := one.Pick(0, false, one.Members()[0])
	if m == nil {
		t.Fatal("the only member was not picked for a retry")
	}
	m.Done(tk, true)
}

// TestMaglevPick: with the Maglev policy a key keeps its member, keys
// spread over the members, and a key whose member is not admitted moves
// to another.
func TestMaglevPick(t *testing.T) {
	s := newSet(t, Options{})
	bs := mustSync(t, s, []Spec{{Name: "m", Endpoints: eps("10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"),
		LoadBalancer: LoadBalancer{Policy: Maglev}}}, nil)
	tb := bs["m"].Table()
	if tb.Maglev() == nil || tb.Key().Source != KeyClientAddress {
		t.Fatalf("Maglev table %v, key %v: want a table hashing the client address", tb.Maglev(), tb.Key())
	}
	seen := map[string]bool{}
	for k := range 100 {
		h := maglev.HashString(fmt.Sprint("client-", k))
		a, ta := tb.Pick(h, true, nil)
		a.Done(ta, true)
		b, tb2 := tb.Pick(h, true, nil)
		b.Done(tb2, true)
		if a != b {
			t.Fatalf("key %d moved between picks", k)
		}
		seen[a.Addr()] = true
	}
	if len(seen) != 3 {
		t.Errorf("100 keys reached %d members", len(seen))
	}
	h := maglev.HashString("client-0")
	owner, tk := tb.Pick(h, true, nil)
	owner.Done(tk, true)
	owner.healthy.Store(false)
	m, tk := tb.Pick(h, true, nil)
	if m == nil || m == owner {
		t.Fatalf("an unhealthy owner was picked (%v)", m)
	}
	m.Done(tk, true)
}

// TestBreakerOpens: failures reported with Done open a member's breaker,
// which takes it out of the pick and tells the Breaker hook; Cancel does
// not count.
func TestBreakerOpens(t *testing.T) {
	var mu sync.Mutex
	var changes []string
	s := newSet(t, Options{Hooks: Hooks{Breaker: func(b, a string, from, to breaker.State) {
		mu.Lock()
		changes = append(changes, fmt.Sprint(b, " ", a, " ", to))
		mu.Unlock()
	}}})
	cfg := breaker.Options{MinRequests: 3, FailureThreshold: 0.5, Window: time.Minute, OpenTimeout: time.Hour}
	bs := mustSync(t, s, []Spec{{Name: "b", Endpoints: eps("10.0.0.1:1", "10.0.0.2:1"),
		CircuitBreaker: &CircuitBreaker{Options: cfg}}}, nil)
	tb := bs["b"].Table()
	bad := tb.Find([]byte("10.0.0.1:1"))
	for range 10 {
		tk, ok := bad.Admit()
		if !ok {
			t.Fatal("breaker opened on cancelled attempts")
		}
		bad.Cancel(tk)
	}
	for range 3 {
		tk, ok := bad.Admit()
		if !ok {
			break
		}
		bad.Done(tk, false)
	}
	if _, ok := bad.Admit(); ok {
		t.Fatal("breaker still closed after 3 failures of 3")
	}
	for range 10 {
		m, tk := tb.Pick(0, false, nil)
		if m != tb.Find([]byte("10.0.0.2:1")) {
			t.Fatalf("picked %v, want the member whose breaker is closed", m)
		}
		m.Done(tk, true)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(changes) != 1 || changes[0] != "b 10.0.0.1:1 "+breaker.Open.String() {
		t.Errorf("Breaker hook: %q", changes)
	}
}

// TestAcquireLimit: MaxPerEndpoint bounds the stream slots of a member,
// and a changed limit applies to members that stay.
func TestAcquireLimit(t *testing.T) {
	s := newSet(t, Options{})
	spec := Spec{Name: "l", Endpoints: eps("10.0.0.1:1"), Connections: ConnectionLimits{MaxPerEndpoint: 2}}
	m := mustSync(t, s, []Spec{spec}, nil)["l"].Table().Members()[0]
	if !m.Acquire() || !m.Acquire() {
		t.Fatal("slots under the limit refused")
	}
	if m.Acquire() {
		t.Fatal("a third slot was given under a limit of 2")
	}
	m.Release()
	if !m.Acquire() {
		t.Fatal("a released slot was not given again")
	}
	spec.Connections.MaxPerEndpoint = 0
	mustSync(t, s, []Spec{spec}, nil)
	if !m.Acquire() || m.Streams() != 3 {
		t.Errorf("no limit: Acquire refused or streams %d", m.Streams())
	}
}

// TestHealthCheckTCP: a member whose port refuses connections becomes
// unhealthy after the threshold and leaves the pick; when the port
// listens again it comes back; the Health hook sees both flips. Health
// checking that is removed makes the member healthy.
func TestHealthCheckTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	good := ln.Addr().String()
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	defer ln.Close()

	flips := make(chan string, 16)
	s := newSet(t, Options{Hooks: Hooks{Health: func(b, a string, healthy, changed bool) {
		if changed {
			flips <- fmt.Sprint(a, " ", healthy)
		}
	}}})
	spec := Spec{Name: "h", Endpoints: eps(good, deadAddr),
		HealthCheck: &HealthCheck{Kind: HealthTCP, Interval: 10 * time.Millisecond, Timeout: time.Second, UnhealthyThreshold: 2, HealthyThreshold: 1}}
	tb := mustSync(t, s, []Spec{spec}, nil)["h"].Table()
	select {
	case f := <-flips:
		if f != deadAddr+" false" {
			t.Fatalf("first flip %q, want %s false", f, deadAddr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the dead member stayed healthy")
	}
	for range 10 {
		m, tk := tb.Pick(0, false, nil)
		if m.Addr() != good {
			t.Fatalf("picked the unhealthy member %s", m.Addr())
		}
		m.Done(tk, true)
	}
	back, err := net.Listen("tcp", deadAddr)
	if err != nil {
		t.Skipf("could not listen on %s again: %v", deadAddr, err)
	}
	defer back.Close()
	go func() {
		for {
			c, err := back.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	select {
	case f := <-flips:
		if f != deadAddr+" true" {
			t.Fatalf("second flip %q", f)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the member did not come back")
	}
	back.Close()
	deadline := time.Now().Add(10 * time.Second)
	for tb.Find([]byte(deadAddr)).Healthy() {
		if time.Now().After(deadline) {
			t.Fatal("did not go unhealthy again")
		}
		time.Sleep(5 * time.Millisecond)
	}
	spec.HealthCheck = nil
	mustSync(t, s, []Spec{spec}, nil)
	if !tb.Find([]byte(deadAddr)).Healthy() {
		t.Error("a member whose health checks were removed stays unhealthy")
	}
}

// TestUpdateEndpoints: the fast path swaps the table, keeps members that
// stay, and refuses an unknown backend or a bad address without changing
// anything.
func TestUpdateEndpoints(t *testing.T) {
	s := newSet(t, Options{})
	b := mustSync(t, s, []Spec{{Name: "u", Endpoints: eps("10.0.0.1:1", "10.0.0.2:1")}}, nil)["u"]
	m1 := b.Table().Find([]byte("10.0.0.1:1"))
	if err := s.UpdateEndpoints("u", eps("10.0.0.1:1", "10.0.0.3:1")); err != nil {
		t.Fatal(err)
	}
	if b.Table().Find([]byte("10.0.0.1:1")) != m1 || b.Table().Find([]byte("10.0.0.3:1")) == nil || b.Table().Find([]byte("10.0.0.2:1")) != nil {
		t.Error("table not swapped as asked")
	}
	if err := s.UpdateEndpoints("nope", nil); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown backend: %v", err)
	}
	before := b.Table()
	if err := s.UpdateEndpoints("u", eps("bad")); err == nil || !strings.Contains(err.Error(), `endpoints[0].address "bad"`) {
		t.Errorf("bad address: %v", err)
	}
	if b.Table() != before {
		t.Error("a refused update changed the table")
	}
	s.Close()
	if err := s.UpdateEndpoints("u", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

// TestSharedTransportLimits: two backends with a member at the same
// address share its transport, under the smaller limit of each field.
func TestSharedTransportLimits(t *testing.T) {
	p := pool.New(pool.Options{})
	defer p.Close()
	s := newSet(t, Options{Pool: p})
	bs := mustSync(t, s, []Spec{
		{Name: "a", Endpoints: eps("127.0.0.1:1"), Connections: ConnectionLimits{MaxPerEndpoint: 5, MaxRequests: 10}},
		{Name: "b", Endpoints: eps("127.0.0.1:1"), Connections: ConnectionLimits{MaxPerEndpoint: 3, IdleTimeout: time.Second}},
	}, nil)
	ra, rb := bs["a"].Table().Members()[0].Transport(), bs["b"].Table().Members()[0].Transport()
	if ra != rb {
		t.Fatal("the two backends do not share the transport")
	}
	want := pool.Limits{MaxConns: 3, MaxRequests: 10, IdleTimeout: time.Second}
	if got := ra.Limits(); got != want {
		t.Errorf("limits %+v, want %+v", got, want)
	}
}

func TestSmoothSchedule(t *testing.T) {
	got := smoothSchedule([]uint32{5, 1, 1})
	if fmt.Sprint(got) != "[0 0 1 0 2 0 0]" {
		t.Errorf("schedule %v", got)
	}
	big := smoothSchedule([]uint32{1 << 20, 1})
	if len(big) > 128 || len(big) < 65 {
		t.Errorf("large weights not scaled: %d entries", len(big))
	}
}
