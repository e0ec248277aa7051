package h2server

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// blockingHandler answers "/other" at once and holds other requests
// until their context ends (or, for "/stubborn", for a while regardless).
var blockingHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/other":
		io.WriteString(w, "ok")
	case "/stubborn":
		time.Sleep(2 * time.Second)
	default:
		<-r.Context().Done()
	}
})

// expectGoAway reads until GOAWAY and checks its code, the limit's count,
// and that another connection is still served.
func expectGoAway(t *testing.T, ts *testServer, rc *rawConn, code http2.ErrCode, l Limit) {
	t.Helper()
	ev := rc.await(0)
	if !ev.goAway || ev.code != code {
		t.Errorf("got %+v, want GOAWAY %v", ev, code)
	}
	if ev := rc.await(0); !ev.closed {
		t.Errorf("after GOAWAY: %+v, want the connection closed", ev)
	}
	if n := ts.hits(l); n != 1 {
		t.Errorf("limit %v counted %d times, want 1", l, n)
	}
	ts.checkServes(t)
}

// TestRapidReset opens and resets streams in a loop (CVE-2023-44487).
func TestRapidReset(t *testing.T) {
	ts := startServer(t, &Server{ResetsPerSecond: 20}, blockingHandler)
	rc := dialRaw(t, ts.addr)
	go func() {
		for id := uint32(1); id < 2000; id += 2 {
			rc.request(id, false, get("/")...)
			if rc.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
				return
			}
		}
	}()
	expectGoAway(t, ts, rc, http2.ErrCodeEnhanceYourCalm, RapidReset)
}

// TestConcurrentStreams checks that streams past MaxConcurrentStreams are
// refused, counting handlers still running after their stream was reset.
func TestConcurrentStreams(t *testing.T) {
	ts := startServer(t, &Server{MaxConcurrentStreams: 2}, blockingHandler)
	rc := dialRaw(t, ts.addr)
	rc.request(1, false, get("/stubborn")...)
	rc.request(3, false, get("/stubborn")...)
	rc.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	rc.fr.WriteRSTStream(3, http2.ErrCodeCancel)
	// Both streams are closed, but their handlers still run.
	rc.request(5, true, get("/other")...)
	if ev := rc.await(5); !ev.rst || ev.code != http2.ErrCodeRefusedStream {
		t.Errorf("a third stream while two handlers run: %+v, want RST_STREAM REFUSED_STREAM", ev)
	}
	if n := ts.hits(ConcurrentStreams); n != 1 {
		t.Errorf("ConcurrentStreams counted %d times, want 1", n)
	}
	ts.checkServes(t)
}

// TestContinuationFlood sends a header block in ever more CONTINUATION
// frames (CVE-2024-27316).
func TestContinuationFlood(t *testing.T) {
	ts := startServer(t, nil, blockingHandler)
	rc := dialRaw(t, ts.addr)
	blk := rc.block(append(get("/"), "x-long", strings.Repeat("a", 60000))...)
	rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk[:100]})
	go func() {
		for rest := blk[100:]; len(rest) > 100; rest = rest[100:] {
			if rc.fr.WriteContinuation(1, false, rest[:100]) != nil {
				return
			}
		}
	}()
	expectGoAway(t, ts, rc, http2.ErrCodeEnhanceYourCalm, ContinuationFlood)
}

// TestHPACKBomb references a large dynamic table entry many times: a few
// hundred bytes that decode to more than four times MaxHeaderListSize.
func TestHPACKBomb(t *testing.T) {
	ts := startServer(t, &Server{MaxHeaderListSize: 16 << 10}, blockingHandler)
	rc := dialRaw(t, ts.addr)
	big := strings.Repeat("b", 4000)
	rc.request(1, true, append(get("/other"), "x-big", big)...)
	if ev := rc.await(1); ev.status != 200 {
		t.Fatalf("first request: %+v", ev)
	}
	fields := get("/other")
	for range 100 {
		fields = append(fields, "x-big", big)
	}
	blk := rc.block(fields...)
	if len(blk) > 5000 {
		t.Fatalf("the bomb takes %d bytes; the encoder did not index", len(blk))
	}
	rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: blk, EndHeaders: true, EndStream: true})
	expectGoAway(t, ts, rc, http2.ErrCodeEnhanceYourCalm, HPACKBomb)

	// One string longer than MaxHeaderListSize is refused as it is
	// decoded.
	ts.limits[HPACKBomb].Store(0)
	rc = dialRaw(t, ts.addr)
	rc.request(1, true, append(get("/other"), "x-huge", strings.Repeat("e", 20000))...)
	expectGoAway(t, ts, rc, http2.ErrCodeEnhanceYourCalm, HPACKBomb)
}

// TestHeaderListSize sends a header list over MaxHeaderListSize but not
// a bomb: that request alone is answered 431.
func TestHeaderListSize(t *testing.T) {
	ts := startServer(t, &Server{MaxHeaderListSize: 16 << 10}, okHandler)
	rc := dialRaw(t, ts.addr)
	rc.request(1, true, append(get("/"), "x-big", strings.Repeat("c", 10000), "x-big2", strings.Repeat("d", 10000))...)
	if ev := rc.await(1); ev.status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("got %+v, want 431", ev)
	}
	rc.request(3, true, get("/")...)
	if ev := rc.await(3); ev.status != 200 {
		t.Errorf("next request: %+v", ev)
	}
	if n := ts.hits(HeaderListSize); n != 1 {
		t.Errorf("HeaderListSize counted %d times", n)
	}
}

// TestControlFloods sends SETTINGS, PING, WINDOW_UPDATE, PRIORITY and
// empty DATA frames past their budgets.
func TestControlFloods(t *testing.T) {
	tests := []struct {
		limit Limit
		send  func(rc *rawConn, i int) error
	}{
		{SettingsFlood, func(rc *rawConn, i int) error { return rc.fr.WriteSettings() }},
		{PingFlood, func(rc *rawConn, i int) error { return rc.fr.WritePing(false, [8]byte{byte(i)}) }},
		{WindowUpdateFlood, func(rc *rawConn, i int) error { return rc.fr.WriteWindowUpdate(0, 1) }},
		{PriorityFlood, func(rc *rawConn, i int) error {
			return rc.fr.WritePriority(uint32(2*i+101), http2.PriorityParam{StreamDep: 0, Weight: 1})
		}},
		{EmptyFrameFlood, func(rc *rawConn, i int) error {
			if i == 0 {
				rc.request(1, false, get("/")...)
			}
			return rc.fr.WriteData(1, false, nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.limit.String(), func(t *testing.T) {
			ts := startServer(t, nil, blockingHandler)
			rc := dialRaw(t, ts.addr)
			go func() {
				for i := range 5000 {
					if tt.send(rc, i) != nil {
						return
					}
				}
			}()
			expectGoAway(t, ts, rc, http2.ErrCodeEnhanceYourCalm, tt.limit)
		})
	}
}

// TestUnreadAnswers sends PINGs without reading the acknowledgements: the
// server stops queueing them and cuts the client off.
func TestUnreadAnswers(t *testing.T) {
	ts := startServer(t, &Server{PingsPerSecond: -1}, blockingHandler)
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(4 << 10)
	c.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c, http2.ClientPreface)
	http2.NewFramer(c, nil).WriteSettings()
	// A thousand PINGs per write; the answers fill the socket buffers,
	// then the server's queue.
	var pings bytes.Buffer
	fr := http2.NewFramer(&pings, nil)
	for range 1000 {
		fr.WritePing(false, [8]byte{})
	}
	for i := 0; i < 5000 && ts.hits(ControlQueue) == 0; i++ {
		if _, err := c.Write(pings.Bytes()); err != nil {
			break
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for ts.hits(ControlQueue) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := ts.hits(ControlQueue); n != 1 {
		t.Fatalf("ControlQueue counted %d times, want 1", n)
	}
	ts.checkServes(t)
}

// TestTimeouts checks the handshake and idle timeouts.
func TestTimeouts(t *testing.T) {
	ts := startServer(t, &Server{HandshakeTimeout: 200 * time.Millisecond, IdleTimeout: 300 * time.Millisecond}, okHandler)

	// The preface, then nothing: GOAWAY PROTOCOL_ERROR.
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, http2.ClientPreface)
	rc := &rawConn{t: t, c: c, fr: http2.NewFramer(c, c), dec: hpack.NewDecoder(4096, nil)}
	if ev := rc.await(0); !ev.goAway || ev.code != http2.ErrCodeProtocol {
		t.Errorf("no SETTINGS: %+v, want GOAWAY PROTOCOL_ERROR", ev)
	}
	// Nothing at all: closed.
	c2, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, c2); err != nil {
		t.Errorf("no preface: %v, want the connection closed", err)
	}
	if n := ts.hits(HandshakeTimeoutLimit); n != 2 {
		t.Errorf("HandshakeTimeout counted %d times, want 2", n)
	}

	// A request, then idle: GOAWAY NO_ERROR after IdleTimeout.
	rc = dialRaw(t, ts.addr)
	rc.request(1, true, get("/")...)
	if ev := rc.await(1); ev.status != 200 {
		t.Fatalf("request: %+v", ev)
	}
	start := time.Now()
	if ev := rc.await(0); !ev.goAway || ev.code != http2.ErrCodeNo {
		t.Errorf("idle: %+v, want GOAWAY NO_ERROR", ev)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("idle GOAWAY after %v, want about 300ms", d)
	}
	if n := ts.hits(IdleTimeoutLimit); n != 1 {
		t.Errorf("IdleTimeout counted %d times, want 1", n)
	}
}
