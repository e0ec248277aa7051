package filters

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// mirrored is what a recordingSender saw.
type mirrored struct {
	Backend       string
	Method        string
	Host          string
	Path          string
	RequestURI    string
	Header        http.Header
	Body          string
	ContentLength int64
}

// recordingSender records mirrored requests. If block is non-nil each send
// waits for it to be closed (or for the request context to end).
type recordingSender struct {
	mu     sync.Mutex
	got    []mirrored
	ctxs   []context.Context
	block  chan struct{}
	err    error
	panics bool
	closed atomic.Int32 // response bodies closed
}

func (s *recordingSender) SendMirror(backend string, r *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.got = append(s.got, mirrored{backend, r.Method, r.Host, r.URL.Path, r.RequestURI, r.Header, string(body), r.ContentLength})
	s.ctxs = append(s.ctxs, r.Context())
	s.mu.Unlock()
	if s.block != nil {
		select {
		case <-s.block:
		case <-r.Context().Done():
		}
	}
	if s.panics {
		panic("sender bug")
	}
	if s.err != nil {
		return nil, s.err
	}
	return &http.Response{StatusCode: 200, Body: &closeRecorder{Reader: strings.NewReader("ignored"), n: &s.closed}}, nil
}

func (s *recordingSender) requests() []mirrored {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]mirrored(nil), s.got...)
}

type closeRecorder struct {
	io.Reader
	n *atomic.Int32
}

func (c *closeRecorder) Close() error { c.n.Add(1); return nil }

// newMirrorer returns a Mirrorer over s and waits for it at test end.
func newMirrorer(t *testing.T, s MirrorSender, opts MirrorOptions) *Mirrorer {
	t.Helper()
	opts.Sender = s
	m, err := NewMirrorer(opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func waitMirrors(t *testing.T, m *Mirrorer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Wait(ctx); err != nil {
		t.Fatalf("mirrors still in flight: %v", err)
	}
}

// readAll drains r.Body as a transport would, then closes it.
func readAll(t *testing.T, r *http.Request) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Body.Close(); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The conformance tests httproute-request-mirror and
// httproute-request-multiple-mirrors.
func TestMirrorConformance(t *testing.T) {
	s := &recordingSender{}
	m := newMirrorer(t, s, MirrorOptions{})
	opts := CompileOptions{Mirrorer: m}

	t.Run("mirror", func(t *testing.T) {
		s.got = nil
		c := mustCompile(t, []Spec{mirrorSpec(Mirror{Backend: "infra-backend-v2"})}, opts)
		r := newRequest("GET", "http://mirror.example/mirror", "X-Client", "1")
		uri := r.RequestURI
		var st State
		if c.Request(httptest.NewRecorder(), r, RequestInfo{}, &st) {
			t.Fatal("handled")
		}
		waitMirrors(t, m)
		want := []mirrored{{Backend: "infra-backend-v2", Method: "GET", Host: "mirror.example", Path: "/mirror", Header: hdr("X-Client", "1")}}
		if diff := cmp.Diff(want, s.requests()); diff != "" {
			t.Errorf("mirrored (-want +got):\n%s", diff)
		}
		if r.RequestURI != uri || r.Header.Get("X-Client") != "1" {
			t.Errorf("primary request changed: %q %v", r.RequestURI, r.Header)
		}
	})
	t.Run("mirror and modify headers", func(t *testing.T) {
		s.got = nil
		c := mustCompile(t, []Spec{rewriteHeaders, mirrorSpec(Mirror{Backend: "infra-backend-v2"})}, opts)
		r := newRequest("GET", "/mirror-and-modify-headers", "X-Header-Remove", "remove-val", "X-Header-Add-Append", "append-val-1")
		var st State
		c.Request(httptest.NewRecorder(), r, RequestInfo{}, &st)
		waitMirrors(t, m)
		wantHdr := hdr("X-Header-Add", "header-val-1", "X-Header-Add-Append", "append-val-1", "X-Header-Add-Append", "header-val-2", "X-Header-Set", "set-overwrites-values")
		if diff := cmp.Diff(wantHdr, r.Header); diff != "" {
			t.Errorf("primary headers (-want +got):\n%s", diff)
		}
		want := []mirrored{{Backend: "infra-backend-v2", Method: "GET", Host: "example.com", Path: "/mirror-and-modify-headers", Header: wantHdr}}
		if diff := cmp.Diff(want, s.requests()); diff != "" {
			t.Errorf("mirrored (-want +got):\n%s", diff)
		}
	})
	t.Run("multiple mirrors", func(t *testing.T) {
		s.got = nil
		c := mustCompile(t, []Spec{
			mirrorSpec(Mirror{Backend: "infra-backend-v2"}),
			mirrorSpec(Mirror{Backend: "infra-backend-v3"}),
		}, opts)
		r := newRequest("GET", "/multi-mirror")
		var st State
		c.Request(httptest.NewRecorder(), r, RequestInfo{}, &st)
		waitMirrors(t, m)
		var backends []string
		for _, g := range s.requests() {
			backends = append(backends, g.Backend+" "+g.Path)
		}
		if diff := cmp.Diff([]string{"infra-backend-v2 /multi-mirror", "infra-backend-v3 /multi-mirror"}, backends,
			cmpSortStrings); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	if st := m.Stats(); st != (MirrorStats{Sent: 4}) {
		t.Errorf("stats = %+v, want 4 sent", st)
	}
	if n := s.closed.Load(); n != 4 {
		t.Errorf("%d response bodies closed, want 4", n)
	}
}

var cmpSortStrings = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
})

// Filters run in order: a mirror takes its copy where it stands, so a
// header modifier listed after it does not reach the mirror.
func TestMirrorSnapshotsAtItsPosition(t *testing.T) {
	s := &recordingSender{}
	m := newMirrorer(t, s, MirrorOptions{})
	c := mustCompile(t, []Spec{
		mirrorSpec(Mirror{Backend: "shadow"}),
		reqHeaders(HeaderModifier{Set: []Header{{"X-After", "1"}}}),
		rewriteSpec(URLRewrite{Hostname: "rewritten.example", Path: fullPath("/new")}),
	}, CompileOptions{Mirrorer: m})
	r := newRequest("GET", "/old")
	var st State
	c.Request(httptest.NewRecorder(), r, RequestInfo{}, &st)
	waitMirrors(t, m)
	want := []mirrored{{Backend: "shadow", Method: "GET", Host: "example.com", Path: "/old", Header: http.Header{}}}
	if diff := cmp.Diff(want, s.requests()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// seqRand returns 0, 1, 2, ... modulo n: a deterministic uniform source.
func seqRand() func(uint64) uint64 {
	var i atomic.Uint64
	return func(n uint64) uint64 { return (i.Add(1) - 1) % n }
}

// The conformance test httproute-request-percentage-mirror (20%, 25/50 and
// 35% with a header modifier), made exact with a deterministic source.
func TestMirrorFractions(t *testing.T) {
	tests := []struct {
		name     string
		fraction *Fraction
		requests int
		want     int
	}{
		{"percent 20", Percent(20), 100, 20},
		{"fraction 25/50", &Fraction{25, 50}, 100, 50},
		{"percent 35", Percent(35), 100, 35},
		{"fraction 5/1000", &Fraction{5, 1000}, 2000, 10},
		{"default denominator 100", &Fraction{Numerator: 7}, 100, 7},
		{"zero", Percent(0), 50, 0},
		{"all", Percent(100), 50, 50},
		{"unset means all", nil, 50, 50},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			rnd := seqRand()
			s := &recordingSender{}
			m := newMirrorer(t, s, MirrorOptions{MaxInFlight: 10000, Rand: func(n uint64) uint64 { calls.Add(1); return rnd(n) }})
			c := mustCompile(t, []Spec{mirrorSpec(Mirror{Backend: "b", Fraction: tc.fraction})}, CompileOptions{Mirrorer: m})
			for range tc.requests {
				var st State
				c.Request(httptest.NewRecorder(), newRequest("GET", "/percent-mirror"), RequestInfo{}, &st)
			}
			waitMirrors(t, m)
			if got := len(s.requests()); got != tc.want {
				t.Errorf("mirrored %d of %d, want %d", got, tc.requests, tc.want)
			}
			if (tc.want == 0 || tc.want == tc.requests) && calls.Load() != 0 {
				t.Errorf("random source called %d times for a 0%%/100%% mirror", calls.Load())
			}
		})
	}
}

func TestMirrorBody(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		length    int64 // Content-Length; -1 unknown
		limit     int64
		read      bool // the primary body is read to EOF
		want      []string
		wantStats MirrorStats
	}{
		{name: "known length", body: "hello mirror", length: 12, read: true,
			want: []string{"hello mirror"}, wantStats: MirrorStats{Sent: 1}},
		{name: "unknown length", body: "chunked body", length: -1, read: true,
			want: []string{"chunked body"}, wantStats: MirrorStats{Sent: 1}},
		{name: "exactly the limit", body: "12345678", length: -1, limit: 8, read: true,
			want: []string{"12345678"}, wantStats: MirrorStats{Sent: 1}},
		{name: "known length over the limit", body: "123456789", length: 9, limit: 8, read: true,
			wantStats: MirrorStats{TooLarge: 1}},
		{name: "unknown length over the limit", body: "123456789", length: -1, limit: 8, read: true,
			wantStats: MirrorStats{TooLarge: 1}},
		{name: "bodies disabled", body: "x", length: 1, limit: -1, read: true,
			wantStats: MirrorStats{TooLarge: 1}},
		{name: "body not read", body: "never read", length: -1,
			wantStats: MirrorStats{Abandoned: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &recordingSender{}
			m := newMirrorer(t, s, MirrorOptions{MaxBodyBytes: tc.limit})
			c := mustCompile(t, []Spec{mirrorSpec(Mirror{Backend: "b"})}, CompileOptions{Mirrorer: m})
			r := httptest.NewRequest("POST", "/upload", io.NopCloser(strings.NewReader(tc.body)))
			r.ContentLength = tc.length
			var st State
			if c.Request(httptest.NewRecorder(), r, RequestInfo{}, &st) {
				t.Fatal("handled")
			}
			if tc.read {
				if got := readAll(t, r); got != tc.body {
					t.Fatalf("primary body = %q, want %q", got, tc.body)
				}
			} else if err := r.Body.Close(); err != nil {
				t.Fatal(err)
			}
			waitMirrors(t, m)
			var bodies []string
			for _, g := range s.requests() {
				bodies = append(bodies, g.Body)
				if g.ContentLength != int64(len(g.Body)) {
					t.Errorf("mirror ContentLength %d for body of %d bytes", g.ContentLength, len(g.Body))
				}
			}
			if diff := cmp.Diff(tc.want, bodies); diff != "" {
				t.Errorf("mirrored bodies (-want +got):\n%s", diff)
			}
			if st := m.Stats(); st != tc.wantStats {
				t.Errorf("stats = %+v, want %+v", st, tc.wantStats)
			}
			if n := m.InFlight(); n != 0 {
				t.Errorf("InFlight = %d after the request", n)
			}
		})
	}
}

// A request that ends (its context is canceled) before its body is read
// releases its mirror slot even if nobody closes the body.
func TestMirrorAbandonedOnContextEnd(t *testing.T) {
	s := &recordingSender{}
	m := newMirrorer(t, s, MirrorOptions{})
	c := mustCompile(t, []Spec{mirrorSpec(Mirror{Backend: "b"})}, CompileOptions{Mirrorer: m})
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequest("POST", "/x", strings.NewReader("body")).WithContext(ctx)
	var st State
	c.Request(httptest.NewRecorder(), r, RequestInfo{}, &st)
	if m.InFlight() != 1 {
		t.Fatalf("InFlight = %d, want 1 while the body is pending", m.InFlight())
	}
	cancel()
	waitMirrors(t, m)
	if st := m.Stats(); st != (MirrorStats{Abandoned: 1}) {
		t.Errorf("stats = %+v", st)
	}
	// Reading afterwards still works for the primary request.
	if got := readAll(t, r); got != "body" {
		t.Errorf("body = %q", got)
	}
}

// A read error on the primary body gives the mirror up.
func TestMirrorBodyReadError(t *testing.T) {
	s := &recordingSender{}
	m := newMirrorer(t, s, MirrorOptions{})
	c := mustCompile(t, []Spec{mirrorSpec(Mirror{Backend: "b"})}, CompileOptions{Mirrorer: m})
	boom := errors.New("client went away")
	r := httptest.NewRequest("POST", "/x", io.MultiReader(strings.NewReader("part"), errReader{boom}))
	r.ContentLength = -1
	var st State
	c.Request(httptest.NewRecorder(), r, RequestInfo{}, &st)
	if _, err := io.ReadAll(r.Body); !errors.Is(err, boom) {
		t.Fatalf("read error = %v, want %v", err, boom)
	}
	waitMirrors(t, m)
	if st := m.Stats(); st != (MirrorStats{Abandoned: 1}) {
		t.Errorf("stats = %+v", st)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// When the chain answers the request itself after a mirror, a bodiless
// mirror has already gone out; one waiting for a body is abandoned.
func TestMirrorBeforeRedirect(t *testing.T) {
	s := &recordingSender{}
	m := newMirrorer(t, s, MirrorOptions{})
	c := mustCompile(t, []Spec{mirrorSpec(Mirror{Backend: "b"}), redirectSpec(Redirect{Scheme: SchemeHTTPS})}, CompileOptions{Mirrorer: m})
	var st State
	if !c.Request(httptest.NewRecorder(), newRequest("GET", "/a"), http80, &st) {
		t.Fatal("not redirected")
	}
	if !c.Request(httptest.NewRecorder(), httptest.NewRequest("POST", "/a", strings.NewReader("b")), http80, &st) {
		t.Fatal("not redirected")
	}
	waitMirrors(t, m)
	if st := m.Stats(); st != (MirrorStats{Sent: 1, Abandoned: 1}) {
		t.Errorf("stats = %+v", st)
	}
}

// Mirrors never delay the primary request: a stuck mirror backend does not
// block Request nor the body, and beyond MaxInFlight mirrors are dropped.
func TestMirrorNeverBlocksPrimary(t *testing.T) {
	s := &recordingSender{block: make(chan struct{})}
	m := newMirrorer(t, s, MirrorOptions{MaxInFlight: 2})
	c := mustCompile(t, []Spec{mirrorSpec(Mirror{Backend: "b"})}, CompileOptions{Mirrorer: m})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 5 {
			var r *http.Request
			if i%2 == 0 {
				r = newRequest("GET", "/")
			} else {
				r = httptest.NewRequest("POST", "/", strings.NewReader("payload"))
			}
			var st State
			c.Request(httptest.NewRecorder(), r, RequestInfo{}, &st)
			if r.Method == "POST" {
				if got := readAll(t, r); got != "payload" {
					t.Errorf("body = %q", got)
				}
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("primary requests blocked by a stuck mirror")
	}
	if st := m.Stats(); st.Dropped != 3 || st.Sent != 0 {
		t.Errorf("stats = %+v, want 3 dropped while 2 are stuck", st)
	}
	close(s.block)
	waitMirrors(t, m)
	if st := m.Stats(); st != (MirrorStats{Sent: 2, Dropped: 3}) {
		t.Errorf("stats = %+v", st)
	}
}

func TestMirrorSenderFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sender *recordingSender
	}{
		{"error", &recordingSender{err: errors.New("connection refused")}},
		{"panic", &recordingSender{panics: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMirrorer(t, tc.sender, MirrorOptions{Logger: discardLogger()})
			c := mustCompile(t, []Spec{mirrorSpec(Mirror{Backend: "b"})}, CompileOptions{Mirrorer: m})
			var st State
			c.Request(httptest.NewRecorder(), newRequest("GET", "/"), RequestInfo{}, &st)
			waitMirrors(t, m)
			if st := m.Stats(); st != (MirrorStats{Failed: 1}) {
				t.Errorf("stats = %+v", st)
			}
		})
	}
}

// The mirror's context keeps the values of the original request but not its
// cancellation, and is bounded by the timeout.
func TestMirrorContext(t *testing.T) {
	s := &recordingSender{block: make(chan struct{})}
	m := newMirrorer(t, s, MirrorOptions{Timeout: 50 * time.Millisecond})
	c := mustCompile(t, []Spec{mirrorSpec(Mirror{Backend: "b"})}, CompileOptions{Mirrorer: m})
	type key struct{}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "trace-1"))
	r := newRequest("GET", "/").WithContext(ctx)
	var st State
	c.Request(httptest.NewRecorder(), r, RequestInfo{}, &st)
	cancel() // the client is gone; the mirror carries on until its timeout
	waitMirrors(t, m)
	s.mu.Lock()
	mctx := s.ctxs[0]
	s.mu.Unlock()
	if v, _ := mctx.Value(key{}).(string); v != "trace-1" {
		t.Errorf("context value = %q", v)
	}
	if _, ok := mctx.Deadline(); !ok {
		t.Error("mirror context has no deadline")
	}
	if !errors.Is(mctx.Err(), context.DeadlineExceeded) {
		t.Errorf("mirror context ended with %v, want the timeout", mctx.Err())
	}
}

// Many concurrent requests through one chain (run with -race).
func TestMirrorConcurrent(t *testing.T) {
	s := &recordingSender{}
	m := newMirrorer(t, s, MirrorOptions{MaxInFlight: 1000})
	c := mustCompile(t, []Spec{
		reqHeaders(HeaderModifier{Set: []Header{{"X-A", "1"}}, Add: []Header{{"X-B", "2"}}}),
		mirrorSpec(Mirror{Backend: "b"}),
		mirrorSpec(Mirror{Backend: "c", Fraction: Percent(50)}),
	}, CompileOptions{Mirrorer: m})
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			r := httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat("x", i)))
			var st State
			c.Request(httptest.NewRecorder(), r, RequestInfo{}, &st)
			readAll(t, r)
		})
	}
	wg.Wait()
	waitMirrors(t, m)
	st := m.Stats()
	if st.Sent < 50 || st.Sent > 100 || st.Dropped+st.Failed+st.Abandoned+st.TooLarge != 0 {
		t.Errorf("stats = %+v", st)
	}
	for _, g := range s.requests() {
		if g.Header.Get("X-A") != "1" {
			t.Errorf("mirror missing header: %v", g.Header)
		}
	}
}

func TestNewMirrorerNeedsSender(t *testing.T) {
	if _, err := NewMirrorer(MirrorOptions{}); err == nil {
		t.Error("NewMirrorer without Sender succeeded")
	}
}

// A WebSocket handshake cannot be replayed to a second backend.
func TestMirrorSkipsUpgrades(t *testing.T) {
	s := &recordingSender{}
	m := newMirrorer(t, s, MirrorOptions{})
	c := mustCompile(t, []Spec{mirrorSpec(Mirror{Backend: "b"})}, CompileOptions{Mirrorer: m})
	var st State
	c.Request(httptest.NewRecorder(), newRequest("GET", "/ws", "Connection", "Upgrade", "Upgrade", "websocket"), RequestInfo{}, &st)
	c.Request(httptest.NewRecorder(), newRequest("GET", "/plain"), RequestInfo{}, &st)
	waitMirrors(t, m)
	if got := s.requests(); len(got) != 1 || got[0].Path != "/plain" {
		t.Errorf("mirrored %+v, want only /plain", got)
	}
}
