package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rauta/rauta/internal/grpctest"
	"github.com/rauta/rauta/router"
	"github.com/rauta/rauta/upstream"
)

var (
	grpcFrame     = grpctest.Frame
	readGRPCFrame = grpctest.ReadFrame
)

// h2cClient speaks HTTP/2 with prior knowledge, as gRPC clients do. Its
// connections are closed when the test ends, before the proxy shuts down.
func h2cClient(t testing.TB) *http.Client {
	c := grpctest.H2CClient()
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// grpcResult is what a gRPC client sees of a unary call.
type grpcResult struct {
	httpStatus  int
	contentType string
	messages    []string
	status      string // grpc-status, from the trailers or a trailers-only response
	message     string
	elapsed     time.Duration
}

// grpcUnary makes a unary call with gRPC framing and reads the whole answer.
func grpcUnary(t testing.TB, c *http.Client, url, msg string, hdr ...string) grpcResult {
	t.Helper()
	r, err := grpctest.Unary(c, url, msg, hdr...)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	return grpcResult{r.HTTPStatus, r.ContentType, r.Messages, r.Status, r.Message, r.Elapsed}
}

// grpcBackend is an h2c gRPC server on loopback with a few methods of
// service echo.Echo: Say echoes its message, Missing answers NOT_FOUND,
// Slow answers after five seconds or when the call is cancelled, Stall
// sends one message and then waits for cancellation. It records the
// grpc-timeout of the calls it receives.
func grpcBackend(t testing.TB) (*httptest.Server, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var timeouts []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		timeouts = append(timeouts, r.Header.Get("Grpc-Timeout"))
		mu.Unlock()
		msg, _ := readGRPCFrame(r.Body)
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status, Grpc-Message")
		switch r.URL.Path {
		case "/echo.Echo/Say":
			w.Write(grpcFrame("echo:" + msg))
			w.Header().Set("Grpc-Status", "0")
		case "/echo.Echo/Missing":
			w.Header().Set("Grpc-Status", "5")
			w.Header().Set("Grpc-Message", "no such thing")
		case "/echo.Echo/Slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			w.Header().Set("Grpc-Status", "0")
		case "/echo.Echo/Stall":
			w.Write(grpcFrame("first"))
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			w.Header().Set("Grpc-Status", "0")
		default:
			w.Header().Set("Grpc-Status", "12")
		}
	})
	s := httptest.NewUnstartedServer(h)
	s.Config.Protocols = new(http.Protocols)
	s.Config.Protocols.SetUnencryptedHTTP2(true)
	s.Start()
	t.Cleanup(s.Close)
	return s, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), timeouts...)
	}
}

func exact(p string) []router.Match {
	return []router.Match{{Path: router.PathMatch{Type: router.PathExact, Value: p}}}
}

// grpcConfig routes the echo.Echo methods to the gRPC backend at addr,
// with a route timeout of 2s on Slow, and services whose calls the gateway
// answers itself: down.Down (no endpoint), invalid.Invalid (an invalid
// backend reference) and limited.Limited (one call per long while).
func grpcConfig(addr string) Config {
	return Config{
		Listeners: []Listener{{Name: "gw/grpc", Address: "127.0.0.1", Protocol: HTTP}},
		Routes: []Route{{
			Namespace: "default", Name: "echo", GRPC: true, Listeners: []string{"gw/grpc"},
			Rules: []Rule{
				{Name: "say", Matches: exact("/echo.Echo/Say"), Backends: []BackendRef{{Backend: "grpc", Weight: 1}}},
				{Name: "slow", Matches: exact("/echo.Echo/Slow"), Backends: []BackendRef{{Backend: "grpc", Weight: 1}}, Timeouts: Timeouts{Request: 2 * time.Second}},
				{Matches: prefix("/echo.Echo"), Backends: []BackendRef{{Backend: "grpc", Weight: 1}}},
				{Name: "down", Matches: prefix("/down.Down"), Backends: []BackendRef{{Backend: "empty", Weight: 1}}},
				{Name: "invalid", Matches: prefix("/invalid.Invalid"), Backends: []BackendRef{{Backend: "", Weight: 1}}},
				{Name: "limited", Matches: prefix("/limited.Limited"), Backends: []BackendRef{{Backend: "grpc", Weight: 1}},
					RateLimits: []RateLimit{{Name: "grpc-test", Rate: 0.001, Burst: 1}}},
			},
		}},
		Backends: []Backend{
			{Spec: upstream.Spec{Name: "grpc", Endpoints: []upstream.Endpoint{{Address: addr}}}, Protocol: BackendH2C},
			{Spec: upstream.Spec{Name: "empty", Endpoints: []upstream.Endpoint{}}, Protocol: BackendH2C},
		},
	}
}

// TestGRPCGatewayAnswers checks that the answers the gateway gives itself
// to gRPC calls are trailers-only gRPC responses (HTTP 200, grpc-status,
// grpc-message), with the status each reason calls for, while a request
// that is not gRPC still gets an HTTP answer.
func TestGRPCGatewayAnswers(t *testing.T) {
	be, _ := grpcBackend(t)
	p := newTestProxy(t, Options{})
	if err := p.Apply(grpcConfig(addrOf(be))); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/grpc")
	c := h2cClient(t)

	ok := grpcUnary(t, c, base+"/echo.Echo/Say", "hi")
	if ok.httpStatus != 200 || ok.status != "0" || len(ok.messages) != 1 || ok.messages[0] != "echo:hi" {
		t.Fatalf("Say: %+v", ok)
	}
	backendErr := grpcUnary(t, c, base+"/echo.Echo/Missing", "")
	if backendErr.status != "5" || backendErr.message != "no such thing" {
		t.Fatalf("Missing: the backend's status must pass through: %+v", backendErr)
	}

	grpcUnary(t, c, base+"/limited.Limited/Call", "") // takes the one token
	for _, tc := range []struct {
		path, status, message string
	}{
		{"/other.Other/Call", "12", "no route"},              // UNIMPLEMENTED
		{"/down.Down/Call", "14", "no healthy upstream"},     // UNAVAILABLE
		{"/invalid.Invalid/Call", "14", "no valid backend"},  // UNAVAILABLE
		{"/limited.Limited/Call", "8", "rate limited"},       // RESOURCE_EXHAUSTED
		{"/echo.Echo/Slow", "4", "upstream request timeout"}, // DEADLINE_EXCEEDED
	} {
		r := grpcUnary(t, c, base+tc.path, "x")
		if r.httpStatus != http.StatusOK || r.contentType != "application/grpc" || r.status != tc.status || r.message != tc.message || len(r.messages) != 0 {
			t.Errorf("%s: got HTTP %d %q grpc-status %q %q, %d messages; want HTTP 200 application/grpc, grpc-status %s %q and no message",
				tc.path, r.httpStatus, r.contentType, r.status, r.message, len(r.messages), tc.status, tc.message)
		}
	}

	// A request that is not gRPC gets the HTTP answer.
	code, body, h := get(t, http.DefaultClient, base+"/other.Other/Call")
	if code != http.StatusNotFound || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") || body != "no route\n" {
		t.Errorf("plain GET: %d %q %q", code, h.Get("Content-Type"), body)
	}
}

// TestGRPCTimeout checks that grpc-timeout bounds a call, within the
// route's request timeout: a shorter grpc-timeout ends the call with
// DEADLINE_EXCEEDED at its expiry, a longer one leaves the route's
// timeout in charge; the header reaches the backend.
func TestGRPCTimeout(t *testing.T) {
	be, seen := grpcBackend(t)
	p := newTestProxy(t, Options{})
	if err := p.Apply(grpcConfig(addrOf(be))); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/grpc")
	c := h2cClient(t)

	short := grpcUnary(t, c, base+"/echo.Echo/Slow", "", "Grpc-Timeout", "200m")
	if short.status != "4" || short.elapsed > 1500*time.Millisecond {
		t.Errorf("grpc-timeout 200m under a 2s route timeout: grpc-status %q after %v; want 4 before the route's 2s", short.status, short.elapsed)
	}
	long := grpcUnary(t, c, base+"/echo.Echo/Slow", "", "Grpc-Timeout", "1H")
	if long.status != "4" || long.elapsed < 1900*time.Millisecond || long.elapsed > 4500*time.Millisecond {
		t.Errorf("grpc-timeout 1H over a 2s route timeout: grpc-status %q after %v; want 4 after about 2s", long.status, long.elapsed)
	}
	unbounded := grpcUnary(t, c, base+"/echo.Echo/Slow", "", "Grpc-Timeout", "300m")
	if unbounded.status != "4" || unbounded.elapsed > 2500*time.Millisecond {
		t.Errorf("grpc-timeout 300m on a rule without timeouts: %q after %v", unbounded.status, unbounded.elapsed)
	}
	if got := seen(); len(got) < 1 || got[0] != "200m" {
		t.Errorf("the backend saw grpc-timeout %q, want 200m first", got)
	}

	// The deadline passes while the response streams: the call ends with
	// DEADLINE_EXCEEDED in the trailers after the message already sent.
	mid := grpcUnary(t, c, base+"/echo.Echo/Stall", "", "Grpc-Timeout", "300m")
	if mid.httpStatus != 200 || len(mid.messages) != 1 || mid.messages[0] != "first" || mid.status != "4" {
		t.Errorf("deadline mid-stream: %+v; want the first message, then grpc-status 4", mid)
	}
}

// TestParseGRPCTimeout covers the units and the malformed values of
// grpc-timeout.
func TestParseGRPCTimeout(t *testing.T) {
	for v, want := range map[string]time.Duration{
		"1H": time.Hour, "2M": 2 * time.Minute, "3S": 3 * time.Second, "4m": 4 * time.Millisecond,
		"5u": 5 * time.Microsecond, "6n": 6, "99999999H": maxGRPCTimeout, "0m": 0,
	} {
		if got, ok := parseGRPCTimeout(v); !ok || got != want {
			t.Errorf("%q: %v %v, want %v", v, got, ok, want)
		}
	}
	for _, v := range []string{"", "m", "1", "1s", "123456789m", "-1m", "+1m", "1.5S"} {
		if got, ok := parseGRPCTimeout(v); ok {
			t.Errorf("%q: accepted as %v", v, got)
		}
	}
}

// TestGRPCMetricsAndAccessLog checks that gRPC calls are counted by
// route, rule and gRPC status (the backend's and the gateway's own), and
// logged with their service, method and status.
func TestGRPCMetricsAndAccessLog(t *testing.T) {
	be, _ := grpcBackend(t)
	var buf syncBuffer
	p := newTestProxy(t, Options{AccessLog: AccessLog{Logger: slog.New(slog.NewJSONHandler(&buf, nil))}})
	if err := p.Apply(grpcConfig(addrOf(be))); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/grpc")
	c := h2cClient(t)
	grpcUnary(t, c, base+"/echo.Echo/Say", "a")
	grpcUnary(t, c, base+"/echo.Echo/Say", "b")
	grpcUnary(t, c, base+"/echo.Echo/Missing", "")
	grpcUnary(t, c, base+"/down.Down/Call", "")
	grpcUnary(t, c, base+"/nothing.Here/Call", "")
	for _, tc := range []struct {
		route, rule, status string
		want                float64
	}{
		{"default/echo", "say", "OK", 2},
		{"default/echo", "2", "NOT_FOUND", 1},
		{"default/echo", "down", "UNAVAILABLE", 1},
		{"", "", "UNIMPLEMENTED", 1},
	} {
		got, _ := metricValue(t, p, "rauta_grpc_responses_total", map[string]string{"route": tc.route, "rule": tc.rule, "grpc_status": tc.status})
		if got != tc.want {
			t.Errorf("rauta_grpc_responses_total{route=%q,rule=%q,grpc_status=%q} = %v, want %v", tc.route, tc.rule, tc.status, got, tc.want)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(buf.String(), "\n") < 5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	logs := buf.String()
	for _, want := range []string{
		`"grpc_service":"echo.Echo","grpc_method":"Missing","grpc_status":5,"grpc_status_name":"NOT_FOUND"`,
		`"reason":"no_healthy_endpoint","grpc_service":"down.Down","grpc_method":"Call","grpc_status":14,"grpc_status_name":"UNAVAILABLE"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("access log lacks %s:\n%s", want, logs)
		}
	}
}

// TestGRPCBidiStreaming passes a bidirectional stream through: each
// message the client sends is answered by the backend before the client
// sends the next, so neither side's stream is buffered by the gateway.
func TestGRPCBidiStreaming(t *testing.T) {
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		for {
			m, err := readGRPCFrame(r.Body)
			if err != nil {
				break
			}
			w.Write(grpcFrame("re:" + m))
			w.(http.Flusher).Flush()
		}
		w.Header().Set("Grpc-Status", "0")
	}))
	be.Config.Protocols = new(http.Protocols)
	be.Config.Protocols.SetUnencryptedHTTP2(true)
	be.Start()
	t.Cleanup(be.Close)
	p := newTestProxy(t, Options{})
	if err := p.Apply(grpcConfig(addrOf(be))); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, baseURL(t, p, "gw/grpc")+"/echo.Echo/Chat", pr)
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	// The response headers reach the client before any message: the
	// gateway does not wait for the body to send them.
	resp, err := h2cClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for i := range 5 {
		if _, err := pw.Write(grpcFrame("m" + string(rune('0'+i)))); err != nil {
			t.Fatal(err)
		}
		m, err := readGRPCFrame(resp.Body)
		if err != nil || m != "re:m"+string(rune('0'+i)) {
			t.Fatalf("message %d: %q %v", i, m, err)
		}
	}
	pw.Close()
	if _, err := readGRPCFrame(resp.Body); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last message: %v, want EOF", err)
	}
	if s := resp.Trailer.Get("Grpc-Status"); s != "0" {
		t.Fatalf("grpc-status %q", s)
	}
}
