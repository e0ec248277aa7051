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

// TestControlFloods sends WINDOW_UPDATE, PRIORITY and empty DATA frames
// past their budgets.
func TestControlFloods(t *testing.T) {
	tests := []struct {
		limit Limit
		send  func(rc *rawConn, i int) error
	}{
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

// floodUnread sends frames (a thousand per write, made by frame, after
// the preface, SETTINGS and first) to the server without reading its
// answers, until limit l is counted; then it reads what the server sent,
// which must end with GOAWAY ENHANCE_YOUR_CALM, and checks that another
// connection is served. The connection is a net.Pipe, which buffers
// nothing: the server's writer is held in Write from its first round on,
// whatever the kernel's socket buffers (which on a loaded machine made a
// loopback flood stall in retransmissions instead).
func floodUnread(t *testing.T, ts *testServer, l Limit, first, frame func(fr *http2.Framer, i int)) {
	t.Helper()
	c, sc := net.Pipe()
	defer c.Close()
	ts.wg.Go(func() { ts.srv.ServeConn(sc, nil) })
	c.SetDeadline(time.Now().Add(60 * time.Second))
	var batch bytes.Buffer
	fr := http2.NewFramer(&batch, nil)
	batch.WriteString(http2.ClientPreface)
	fr.WriteSettings()
	if first != nil {
		first(fr, 0)
	}
	prelude := bytes.Clone(batch.Bytes())
	batch.Reset()
	for i := range 1000 {
		frame(fr, i)
	}
	go func() {
		if _, err := c.Write(prelude); err != nil {
			return
		}
		for i := 0; i < 5000 && ts.hits(l) == 0; i++ {
			if _, err := c.Write(batch.Bytes()); err != nil {
				return
			}
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for ts.hits(l) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := ts.hits(l); n != 1 {
		t.Fatalf("%v counted %d times, want 1", l, n)
	}
	rc := &rawConn{t: t, c: c, fr: http2.NewFramer(c, c), dec: hpack.NewDecoder(4096, nil)}
	rc.fr.SetMaxReadFrameSize(1 << 20)
	if ev := rc.await(0); !ev.goAway || ev.code != http2.ErrCodeEnhanceYourCalm {
		t.Errorf("got %+v, want GOAWAY ENHANCE_YOUR_CALM", ev)
	}
	for _, other := range Limits() {
		if n := ts.hits(other); other != l && n != 0 {
			t.Errorf("%v counted %d times, want 0", other, n)
		}
	}
	ts.checkServes(t)
}

// TestUnreadAcks sends PING and SETTINGS frames without reading the
// acknowledgements: once MaxQueuedControlFrames of them wait to be
// written, the server cuts the client off, and serves others.
func TestUnreadAcks(t *testing.T) {
	t.Run("ping", func(t *testing.T) {
		ts := startServer(t, nil, blockingHandler)
		floodUnread(t, ts, PingFlood, nil, func(fr *http2.Framer, i int) { fr.WritePing(false, [8]byte{byte(i)}) })
	})
	t.Run("settings", func(t *testing.T) {
		ts := startServer(t, nil, blockingHandler)
		floodUnread(t, ts, SettingsFlood, nil, func(fr *http2.Framer, i int) {
			fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535 + uint32(i)})
		})
	})
	t.Run("small queue", func(t *testing.T) {
		ts := startServer(t, &Server{MaxQueuedControlFrames: 10}, blockingHandler)
		floodUnread(t, ts, PingFlood, nil, func(fr *http2.Framer, i int) { fr.WritePing(false, [8]byte{byte(i)}) })
	})
}

// TestUnreadResets sends DATA on a stream whose request ended, without
// reading the RST_STREAM STREAM_CLOSED answers: ControlQueue.
func TestUnreadResets(t *testing.T) {
	ts := startServer(t, &Server{EmptyFramesPerSecond: -1}, okHandler)
	rc := &rawConn{t: t}
	rc.enc = hpack.NewEncoder(&rc.hbuf)
	open := func(fr *http2.Framer, _ int) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: rc.block(get("/")...), EndHeaders: true, EndStream: true})
	}
	floodUnread(t, ts, ControlQueue, open, func(fr *http2.Framer, i int) { fr.WriteData(1, false, []byte("x")) })
}

// TestFastAcksRead pings, and sends SETTINGS, far faster than any rate a
// limit per second would allow (tens of thousands a second), reading every
// acknowledgement and keeping at most a few hundred frames unanswered: the
// client is never cut off, and its requests are answered.
func TestFastAcksRead(t *testing.T) {
	ts := startServer(t, nil, okHandler)
	rc := dialRaw(t, ts.addr)
	const n, window = 20000, 300
	// credits holds a token per frame the client may still have
	// unanswered; each acknowledgement read gives one back.
	credits := make(chan struct{}, window)
	for range window {
		credits <- struct{}{}
	}
	sent := make(chan error, 1)
	go func() {
		var batch bytes.Buffer
		fr := http2.NewFramer(&batch, nil)
		for i := range n {
			<-credits
			if i%10 == 0 {
				fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535 + uint32(i)})
			} else {
				fr.WritePing(false, [8]byte{byte(i), byte(i >> 8)})
			}
			if batch.Len() > 1500 || len(credits) == 0 {
				if _, err := rc.c.Write(batch.Bytes()); err != nil {
					sent <- err
					return
				}
				batch.Reset()
			}
		}
		_, err := rc.c.Write(batch.Bytes())
		sent <- err
	}()
	start := time.Now()
	// The first SETTINGS acknowledgement answers dialRaw's.
	var pings, settings int
	for pings+settings < n+1 {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %d PING and %d SETTINGS acknowledgements: %v", pings, settings, err)
		}
		switch f := f.(type) {
		case *http2.PingFrame:
			if f.IsAck() {
				pings++
				credits <- struct{}{}
			}
		case *http2.SettingsFrame:
			if f.IsAck() {
				if settings > 0 {
					credits <- struct{}{}
				}
				settings++
			}
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v after %d PING and %d SETTINGS acknowledgements", f.ErrCode, pings, settings)
		}
	}
	if pings != n-n/10 || settings != n/10+1 {
		t.Errorf("%d PING and %d SETTINGS acknowledgements, want %d and %d", pings, settings, n-n/10, n/10+1)
	}
	t.Logf("%d frames answered in %v", n, time.Since(start))
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	rc.request(1, true, get("/")...)
	if ev := rc.await(1); ev.status != 200 {
		t.Errorf("request after the pings: %+v", ev)
	}
	for _, l := range Limits() {
		if n := ts.hits(l); n != 0 {
			t.Errorf("%v counted %d times, want 0", l, n)
		}
	}
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

// TestSmallWindowUpdates gives back the connection window in pieces of
// one DATA frame each, one frame behind, as grpc-go gives back each
// message: these are free however many, while window updates that give
// back nothing still spend WindowUpdatesPerSecond.
func TestSmallWindowUpdates(t *testing.T) {
	const chunks, size = 2000, 100
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := bytes.Repeat([]byte("g"), size)
		for range chunks {
			w.Write(chunk)
			w.(http.Flusher).Flush()
		}
	})
	ts := startServer(t, &Server{WindowUpdatesPerSecond: 10}, h)
	rc := dialRaw(t, ts.addr)
	// A stream window of one chunk: every DATA frame carries one.
	rc.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: size})
	rc.request(1, true, get("/")...)
	var got, frames, behind int
	for done := false; !done; {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v after %d bytes", f.ErrCode, got)
		case *http2.RSTStreamFrame:
			t.Fatalf("RST_STREAM %v after %d bytes", f.ErrCode, got)
		case *http2.DataFrame:
			n := len(f.Data())
			got += n
			done = f.StreamEnded()
			if n == 0 {
				continue
			}
			frames++
			if n > size {
				t.Fatalf("a DATA frame of %d bytes, over the stream window of %d", n, size)
			}
			if !done {
				rc.fr.WriteWindowUpdate(1, uint32(n))
			}
			if behind > 0 {
				rc.fr.WriteWindowUpdate(0, uint32(behind))
			}
			behind = n
		}
	}
	if got != chunks*size || frames != chunks {
		t.Errorf("got %d bytes in %d DATA frames, want %d in %d", got, frames, chunks*size, chunks)
	}
	if n := ts.hits(WindowUpdateFlood); n != 0 {
		t.Fatalf("WindowUpdateFlood counted %d times, want 0", n)
	}
	// Small updates beyond the DATA frames written are a flood.
	for i := range 100 {
		if rc.fr.WriteWindowUpdate(0, 1) != nil {
			t.Fatalf("write %d failed", i)
		}
	}
	expectGoAway(t, ts, rc, http2.ErrCodeEnhanceYourCalm, WindowUpdateFlood)
}

// TestSettingsInitialWindowValues sends SETTINGS frames with several
// SETTINGS_INITIAL_WINDOW_SIZE values, applied in one pass per frame: the
// last value is the stream window, and a larger one before it that would
// overflow a window is still a FLOW_CONTROL_ERROR.
func TestSettingsInitialWindowValues(t *testing.T) {
	const size = 1000
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Write(bytes.Repeat([]byte("w"), size))
		case "/other":
			io.WriteString(w, "ok")
		default:
			<-r.Context().Done()
		}
	})
	ts := startServer(t, nil, h)
	rc := dialRaw(t, ts.addr)
	rc.fr.WriteSettings(
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 5000},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 100},
	)
	rc.request(1, true, get("/big")...)
	got := 0
	for done := false; !done; {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
		if d, ok := f.(*http2.DataFrame); ok && d.StreamID == 1 {
			got += len(d.Data())
			done = d.StreamEnded()
			if got > 100 && got-len(d.Data()) < 100 {
				t.Fatalf("%d bytes before the stream window was given back, want 100 (the last value)", got)
			}
			if got == 100 {
				rc.fr.WriteWindowUpdate(1, size-100)
			}
		}
	}
	if got != size {
		t.Fatalf("got %d bytes, want %d", got, size)
	}

	// A stream with a window one over its initial size; a frame that
	// raises the initial size to the largest allowed, then back.
	rc.request(3, true, get("/")...)
	rc.fr.WriteWindowUpdate(3, 1)
	rc.fr.WriteSettings(
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 100},
	)
	if ev := rc.await(0); !ev.goAway || ev.code != http2.ErrCodeFlowControl {
		t.Errorf("got %+v, want GOAWAY FLOW_CONTROL_ERROR", ev)
	}
	ts.checkServes(t)
}
