package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/rauta/rauta/proxy"
	"github.com/rauta/rauta/upstream"
)

// lease returns a Lease of the view's tests: renewed at renew (zero: never)
// with a duration of ttl seconds.
func lease(name string, renew time.Time, ttl int32, rv string) *coordinationv1.Lease {
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: rv}}
	l.Spec.LeaseDurationSeconds = &ttl
	if !renew.IsZero() {
		t := metav1.NewMicroTime(renew)
		l.Spec.RenewTime = &t
	}
	return l
}

// TestReplicaView drives the view through first sights, renewals, expiry
// proven and not, relists, clock skew, a partition, and garbage, on a
// clock of its own.
func TestReplicaView(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	s := time.Second
	v := &replicaView{
		self: "me", ttl: 5 * s, gcAfter: 60 * s, tolerate: 2 * s,
		started: t0, leases: map[string]*seenLease{},
	}
	type want struct {
		n       int
		next    time.Time
		prove   bool
		garbage []garbageLease
	}
	check := func(step string, now time.Time, w want) {
		t.Helper()
		n, next, prove, garbage := v.count(now)
		if diff := cmp.Diff(w, want{n, next, prove, garbage}, cmp.AllowUnexported(want{}, garbageLease{})); diff != "" {
			t.Errorf("%s: (-want +got)\n%s", step, diff)
		}
	}
	// renewed records a renewal of the own Lease, sent and seen at d.
	renewed := func(d time.Duration, rv string) { v.observe(lease("me", at(d), 5, rv), at(d)) }

	check("alone", at(0), want{n: 1})

	// A renewal of the own Lease written before this process started (a
	// Lease of the same name left by an earlier process) proves nothing.
	v.observe(lease("me", at(-10*s), 5, "0"), at(0))
	if !v.ownIssued.IsZero() {
		t.Errorf("ownIssued %v after a renewal by an earlier process", v.ownIssued)
	}

	// The own Lease and three others appear (a list at start).
	renewed(0, "1")
	v.observe(lease("fresh", at(-s), 5, "2"), at(0))        // renewed 1s ago: counts for 5s
	v.observe(lease("old", at(-6*s), 5, "3"), at(0))        // 6s ago: 1s of the 2s tolerance left
	v.observe(lease("dead", at(-time.Hour), 5, "4"), at(0)) // long gone: never counts
	check("first sight", at(0), want{n: 3, next: at(s)})
	// old expires, but no renewal of the own Lease sent since proves it.
	check("expired, not proven", at(s), want{n: 3, next: at(5 * s), prove: true})
	renewed(s, "5")
	check("expiry proven", at(s), want{n: 2, next: at(5 * s)})

	// Renewals are judged by when they are seen, not by the time written:
	// a writer 30s behind or ahead counts once its renewal is seen.
	v.observe(lease("behind", at(-30*s), 5, "6"), at(s))
	v.observe(lease("ahead", at(30*s), 5, "7"), at(s))
	check("skewed first sight", at(s), want{n: 3, next: at(5 * s)})
	v.observe(lease("behind", at(-28*s), 5, "8"), at(2*s))
	renewed(2*s, "9")
	check("skewed renewal", at(2*s), want{n: 4, next: at(5 * s)})

	// A relist delivers the same renewTime again: no renewal.
	v.observe(lease("fresh", at(-s), 5, "2"), at(4*s))
	check("relist", at(5*s), want{n: 4, next: at(6 * s), prove: true})
	renewed(5*s+s/10, "10")
	check("relist, proven", at(5*s+s/10), want{n: 3, next: at(6 * s)})

	// Cut off the API server: no renewal of the own Lease is seen any
	// more, so no expiry is proven and the count does not fall; it rises
	// with a new Lease, and falls with a deletion (an event).
	check("partition", at(8*s), want{n: 3, prove: true})
	v.observe(lease("new", at(8*s), 5, "11"), at(8*s))
	check("partition, new replica", at(8*s), want{n: 4, next: at(13 * s), prove: true})
	delete(v.leases, "new")
	check("partition, replica deleted", at(9*s), want{n: 3, prove: true})
	renewed(9*s, "12")
	check("healed", at(9*s), want{n: 1})

	// Garbage: Leases proven unchanged for gcAfter, once per gcAfter.
	renewed(61*s, "13")
	check("garbage", at(61*s), want{n: 1, garbage: []garbageLease{{"ahead", "7"}, {"dead", "4"}, {"fresh", "2"}, {"old", "3"}}})
	check("garbage once", at(61*s), want{n: 1})
	renewed(62*s, "14")
	check("more garbage", at(62*s), want{n: 1, garbage: []garbageLease{{"behind", "8"}}})
}

// TestReplicaNames: the group label value and the Lease name are valid
// for the API server whatever the LeaseName and Identity.
func TestReplicaNames(t *testing.T) {
	long := strings.Repeat("gateway.", 40) + "example/controller"
	for _, tc := range []struct{ lease, identity, group string }{
		{leaseName("rauta.io/gateway-controller"), "rauta-7d9f-x2k", "rauta.io-gateway-controller"},
		{leaseName(long), "host_0a1b2c3d", ""},
		{leaseName(strings.Repeat("a", 63)), strings.Repeat("Pod_", 80), strings.Repeat("a", 63)},
	} {
		g := replicaGroup(tc.lease)
		if errs := validation.IsValidLabelValue(g); len(errs) > 0 {
			t.Errorf("group %q of %q: %v", g, tc.lease, errs)
		}
		if tc.group != "" && g != tc.group {
			t.Errorf("group of %q = %q, want %q", tc.lease, g, tc.group)
		}
		name := leaseName(tc.lease + "." + tc.identity)
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			t.Errorf("Lease name %q: %v", name, errs)
		}
	}
	mid := strings.Repeat("gateway.", 10) + "example/controller-"
	if a, b := replicaGroup(leaseName(mid+"a")), replicaGroup(leaseName(mid+"b")); a == b {
		t.Errorf("two long names give one group %q", a)
	}
}

// TestReplicaOptions: timings the count cannot work with are refused.
func TestReplicaOptions(t *testing.T) {
	cfg := &rest.Config{Host: "https://127.0.0.1:1"}
	p := newProxy(t, &backends{})
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{Proxy: p, ReplicaLeaseDuration: 500 * time.Millisecond}, "ReplicaLeaseDuration 500ms is below 1s"},
		{Options{Proxy: p, ReplicaRenewPeriod: 3 * time.Second}, "ReplicaRenewPeriod 3s must be positive and at most half of ReplicaLeaseDuration 5s"},
		{Options{Proxy: p, DisableReplicaCount: true, ReplicaRenewPeriod: 3 * time.Second}, ""},
		{Options{Proxy: p}, ""},
	} {
		_, err := New(cfg, tc.opts)
		if got := fmt.Sprint(err); (tc.want == "" && err != nil) || (tc.want != "" && !strings.Contains(got, tc.want)) {
			t.Errorf("New(%+v) = %v, want %q", tc.opts, err, tc.want)
		}
	}
}

// cutTransport cuts a client off the API server on demand, as a crash or
// a network partition would: requests fail, and so do reads of the
// responses already streaming (watches).
type cutTransport struct {
	rt  http.RoundTripper
	cut atomic.Bool
}

var errCut = errors.New("test: cut off the API server")

func (c *cutTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if c.cut.Load() {
		return nil, errCut
	}
	resp, err := c.rt.RoundTrip(req)
	if err == nil {
		resp.Body = &cutBody{ReadCloser: resp.Body, c: c}
	}
	return resp, err
}

type cutBody struct {
	io.ReadCloser
	c *cutTransport
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.c.cut.Load() {
		return 0, errCut
	}
	n, err := b.ReadCloser.Read(p)
	if b.c.cut.Load() {
		return 0, errCut
	}
	return n, err
}

// testReplica is a replica counter run by a test, with the default
// timings, through a transport the test can cut.
type testReplica struct {
	r      *replicaCounter
	ct     *cutTransport
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	counts []int // every count reported
}

func (e *env) replica(group, identity string, gcAfter time.Duration, reg prometheus.Registerer) *testReplica {
	e.t.Helper()
	tr := &testReplica{ct: &cutTransport{}, done: make(chan struct{})}
	cfg := rest.CopyConfig(e.c.Config)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { tr.ct.rt = rt; return tr.ct }
	client, err := kubernetes.NewForConfig(cfg)
	e.must(err)
	gauge, err := replicasGauge(reg)
	e.must(err)
	tr.r = newReplicaCounter(replicaConfig{
		client:    client,
		namespace: DefaultLeaseNamespace,
		group:     group,
		name:      leaseName(group + "." + identity),
		identity:  identity,
		duration:  DefaultReplicaLeaseDuration,
		renew:     DefaultReplicaRenewPeriod,
		gcAfter:   gcAfter,
		gauge:     gauge,
		onChange: func(n int) {
			tr.mu.Lock()
			tr.counts = append(tr.counts, n)
			tr.mu.Unlock()
		},
		log: quietLogger().With("replica", identity),
	})
	ctx, cancel := context.WithCancel(context.Background())
	tr.cancel = cancel
	go func() { defer close(tr.done); tr.r.run(ctx) }()
	e.t.Cleanup(tr.stop)
	return tr
}

// stop stops the replica and waits until it has deleted its Lease (unless
// it was cut off).
func (tr *testReplica) stop() {
	tr.cancel()
	<-tr.done
}

// reported returns the counts the replica reported.
func (tr *testReplica) reported() []int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]int(nil), tr.counts...)
}

// waitCount waits until every replica counts n, at most limit from since,
// and returns how long it took from since.
func (e *env) waitCount(what string, n int, since time.Time, limit time.Duration, rs ...*testReplica) time.Duration {
	e.t.Helper()
	for {
		all := true
		var got []int
		for _, r := range rs {
			c := r.r.replicas()
			got = append(got, c)
			all = all && c == n
		}
		took := time.Since(since)
		if all {
			e.t.Logf("%s: every replica counts %d after %v", what, n, took.Round(time.Millisecond))
			return took
		}
		if took > limit {
			e.t.Fatalf("%s: replicas count %v after %v, want %d within %v", what, got, took.Round(time.Millisecond), n, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReplicaCount runs three replicas against the real API server with
// the default timings (Lease duration 5s, renewed every 1.5s): all count 3
// within seconds; one stopped cleanly is no longer counted within 2s (it
// deletes its Lease); one cut off the API server without deleting its
// Lease (a crash) is no longer counted within the Lease duration and a
// margin, 10s.
func TestReplicaCount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	group := replicaGroup(leaseName(e.ctrl))
	reg := prometheus.NewRegistry()
	start := time.Now()
	a := e.replica(group, "a", 0, reg)
	b := e.replica(group, "b", 0, nil)
	c := e.replica(group, "c", 0, nil)
	e.waitCount("start", 3, start, 10*time.Second, a, b, c)
	if got := gaugeValue(t, reg); got != 3 {
		t.Errorf("rauta_replicas = %v, want 3", got)
	}

	stopped := time.Now()
	c.stop()
	e.waitCount("clean stop", 2, stopped, 2*time.Second, a, b)

	// A crash: b is cut off the API server and stops without being able
	// to delete its Lease.
	crashed := time.Now()
	b.ct.cut.Store(true)
	b.stop()
	took := e.waitCount("crash", 1, crashed, 10*time.Second, a)
	if _, err := e.kube.CoordinationV1().Leases(DefaultLeaseNamespace).Get(e.ctx(), b.r.cfg.name, metav1.GetOptions{}); err != nil {
		t.Errorf("the crashed replica's Lease: %v, want it left to expire", err)
	}
	// The Lease expires DefaultReplicaLeaseDuration after its last
	// renewal, which was at most a renew period before the crash.
	if low := DefaultReplicaLeaseDuration - DefaultReplicaRenewPeriod - time.Second; took < low {
		t.Errorf("the crash was noticed after %v, before the Lease could expire (%v)", took, low)
	}
	if got := gaugeValue(t, reg); got != 1 {
		t.Errorf("rauta_replicas = %v, want 1", got)
	}
	if got, want := a.reported(), []int{1, 2, 3, 2, 1}; !isSuffix(got, want[2:]) {
		t.Errorf("a reported %v, want it to end with %v", got, want[2:])
	}
	if _, err := e.kube.CoordinationV1().Leases(DefaultLeaseNamespace).Get(e.ctx(), c.r.cfg.name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the Lease of the replica stopped cleanly: %v, want NotFound", err)
	}
}

func isSuffix(s, suffix []int) bool {
	return len(s) >= len(suffix) && cmp.Equal(s[len(s)-len(suffix):], suffix)
}

// gaugeValue returns the value of rauta_replicas in reg.
func gaugeValue(t *testing.T, reg prometheus.Gatherer) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "rauta_replicas" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no rauta_replicas in the registry")
	return 0
}

// TestReplicaPartition: a replica cut off the API server keeps counting
// the others (its share does not grow while it cannot see them), while
// they stop counting it; once it reaches the API server again they count
// it again.
func TestReplicaPartition(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	group := replicaGroup(leaseName(e.ctrl))
	start := time.Now()
	a := e.replica(group, "a", 0, nil)
	b := e.replica(group, "b", 0, nil)
	e.waitCount("start", 2, start, 10*time.Second, a, b)

	cut := time.Now()
	a.ct.cut.Store(true)
	e.waitCount("partition, seen by b", 1, cut, 10*time.Second, b)
	for time.Since(cut) < 2*DefaultReplicaLeaseDuration {
		if n := a.r.replicas(); n != 2 {
			t.Fatalf("%v after it was cut off, a counts %d, want 2 still", time.Since(cut).Round(time.Millisecond), n)
		}
		time.Sleep(50 * time.Millisecond)
	}

	healed := time.Now()
	a.ct.cut.Store(false)
	e.waitCount("healed, seen by b", 2, healed, 2*DefaultReplicaRenewPeriod+time.Second, b)
}

// TestReplicaLeftovers: a Lease left by an earlier process of the same
// identity is taken over; Leases of the group that nobody renews are not
// counted once expired and are deleted after gcAfter; other groups'
// Leases are left alone.
func TestReplicaLeftovers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	group := replicaGroup(leaseName(e.ctrl))
	leases := e.kube.CoordinationV1().Leases(DefaultLeaseNamespace)
	put := func(name, g string, renew time.Time) {
		l := lease(name, renew, 5, "")
		l.Labels = map[string]string{ReplicaOfLabel: g}
		_, err := leases.Create(e.ctx(), l, metav1.CreateOptions{})
		e.must(err)
	}
	put(leaseName(group+".a"), group, time.Now().Add(-time.Hour)) // a's own, from an earlier process
	put(group+".gone", group, time.Now().Add(-time.Hour))
	put(group+".just-crashed", group, time.Now())
	put(group+".other", group+"-other", time.Now().Add(-time.Hour))

	start := time.Now()
	a := e.replica(group, "a", 8*time.Second, nil)
	e.waitCount("just-crashed counted", 2, start, 5*time.Second, a)
	e.waitCount("just-crashed expired", 1, start, 10*time.Second, a)
	own, err := leases.Get(e.ctx(), leaseName(group+".a"), metav1.GetOptions{})
	e.must(err)
	if own.Spec.RenewTime.Time.Before(start.Add(-time.Second)) || *own.Spec.HolderIdentity != "a" {
		t.Errorf("own Lease not taken over: %+v", own.Spec)
	}
	e.eventually("leftovers deleted", func() (bool, string) {
		var left []string
		for _, n := range []string{".gone", ".just-crashed"} {
			if _, err := leases.Get(e.ctx(), group+n, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				left = append(left, n)
			}
		}
		return len(left) == 0, fmt.Sprintf("left %v", left)
	})
	if took := time.Since(start); took < 8*time.Second {
		t.Errorf("leftovers deleted after %v, before gcAfter", took)
	}
	if _, err := leases.Get(e.ctx(), group+".other", metav1.GetOptions{}); err != nil {
		t.Errorf("another group's Lease: %v", err)
	}
	if n := a.r.replicas(); n != 1 {
		t.Errorf("a counts %d, want 1", n)
	}
}

// TestControllerReplicas: controllers count each other through their
// Leases from Run, report N to their proxy's SetReplicas (or OnReplicas)
// and to rauta_replicas in the proxy's registry, and delete their Lease
// when they stop; one with DisableReplicaCount keeps no Lease and is not
// counted.
func TestControllerReplicas(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var bs backends
	bs.add(t, "10.213.0.1", "A")
	pa := newProxy(t, &bs)
	oa, ob, oc := e.options(pa), e.options(newProxy(t, &backends{})), e.options(newProxy(t, &backends{}))
	oa.Identity, ob.Identity, oc.Identity = "replica-a", "replica-b", "replica-c"
	oc.DisableReplicaCount = true
	var mu sync.Mutex
	var reported []int
	ob.OnReplicas = func(n int) {
		mu.Lock()
		reported = append(reported, n)
		mu.Unlock()
	}
	ra, rb, rc := e.start(nil, oa), e.start(nil, ob), e.start(nil, oc)
	e.eventually("both count 2", func() (bool, string) {
		a, b := ra.c.Replicas(), rb.c.Replicas()
		return a == 2 && b == 2, fmt.Sprintf("a counts %d, b %d", a, b)
	})
	if n := rc.c.Replicas(); n != 0 {
		t.Errorf("with DisableReplicaCount, Replicas() = %d", n)
	}
	if got := gaugeValue(t, pa.Registry()); got != 2 {
		t.Errorf("rauta_replicas = %v, want 2", got)
	}
	leases, err := e.kube.CoordinationV1().Leases(DefaultLeaseNamespace).List(e.ctx(),
		metav1.ListOptions{LabelSelector: ReplicaOfLabel + "=" + replicaGroup(leaseName(e.ctrl))})
	e.must(err)
	var holders []string
	for _, l := range leases.Items {
		holders = append(holders, *l.Spec.HolderIdentity)
	}
	if diff := cmp.Diff([]string{"replica-a", "replica-b"}, holders); diff != "" {
		t.Errorf("replica Leases (-want +got):\n%s", diff)
	}

	stopped := time.Now()
	ra.stop(t)
	e.eventually("b counts 1", func() (bool, string) { n := rb.c.Replicas(); return n == 1, fmt.Sprint(n) })
	if took := time.Since(stopped); took > 2*time.Second {
		t.Errorf("b counted 1 after %v, want the clean stop seen within 2s", took)
	}
	mu.Lock()
	if !isSuffix(reported, []int{2, 1}) {
		t.Errorf("OnReplicas got %v, want it to end with 2, 1", reported)
	}
	mu.Unlock()

	// a counted 2 when it stopped, and told its proxy: a limit with a
	// burst of 4 admits 2 there. (a no longer applies configurations.)
	e.must(pa.Apply(proxy.Config{
		Listeners: []proxy.Listener{{Name: "web", Address: "127.0.0.1", Protocol: proxy.HTTP}},
		Routes: []proxy.Route{{
			Namespace: e.ns, Name: "limited", Listeners: []string{"web"},
			RateLimits: []proxy.RateLimit{{Rate: 0.001, Burst: 4}},
			Rules:      []proxy.Rule{{Backends: []proxy.BackendRef{{Backend: "web", Weight: 1}}}},
		}},
		Backends: []proxy.Backend{{Spec: upstream.Spec{Name: "web", Endpoints: []upstream.Endpoint{{Address: "10.213.0.1:8080"}}}}},
	}))
	addr, ok := pa.Addr("web")
	if !ok {
		t.Fatal("no listener web")
	}
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	var codes []int
	for range 4 {
		resp, err := client.Get("http://" + addr.String() + "/")
		e.must(err)
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
	if want := []int{200, 200, 429, 429}; !cmp.Equal(codes, want) {
		t.Errorf("a burst of 4 shared by 2 replicas answered %v, want %v", codes, want)
	}
}
