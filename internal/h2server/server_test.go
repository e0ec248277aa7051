package h2server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestServeBasics serves requests through x/net's client: status, headers,
// body, a computed content-length, trailers, and a request's trailers.
func TestServeBasics(t *testing.T) {
	ts := startServer(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hello":
			w.Header().Set("X-Proto", r.Proto)
			w.Header().Set("Connection", "close") // connection-specific: dropped
			io.WriteString(w, "hello "+r.Host+" "+r.Header.Get("Cookie"))
		case "/trailers":
			w.Header().Set("Trailer", "Grpc-Status")
			w.WriteHeader(200)
			io.WriteString(w, "body")
			w.(http.Flusher).Flush()
			w.Header().Set("Grpc-Status", "0")
			w.Header().Set(http.TrailerPrefix+"X-Late", "yes")
		case "/echo":
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			io.WriteString(w, string(b)+" "+r.Trailer.Get("X-Sum"))
		}
	}))
	c := ts.client()

	req, _ := http.NewRequest("GET", ts.url("/hello"), nil)
	req.Header.Add("Cookie", "a=1")
	req.Header.Add("Cookie", "b=2")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := "hello " + ts.addr + " a=1; b=2"
	if string(b) != want || resp.Header.Get("X-Proto") != "HTTP/2.0" || resp.ContentLength != int64(len(want)) {
		t.Errorf("GET /hello = %q, X-Proto %q, length %d; want %q, HTTP/2.0, %d", b, resp.Header.Get("X-Proto"), resp.ContentLength, want, len(want))
	}
	if resp.Header.Get("Connection") != "" || resp.Header.Get("Date") == "" {
		t.Errorf("headers %v: want no Connection, a Date", resp.Header)
	}

	resp, err = c.Get(ts.url("/trailers"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "body" || resp.Trailer.Get("Grpc-Status") != "0" || resp.Trailer.Get("X-Late") != "yes" {
		t.Errorf("GET /trailers = %q, trailers %v", b, resp.Trailer)
	}

	pr, pw := io.Pipe()
	req, _ = http.NewRequest("POST", ts.url("/echo"), pr)
	req.Trailer = http.Header{"X-Sum": nil}
	go func() {
		io.WriteString(pw, "up")
		req.Trailer.Set("X-Sum", "42")
		pw.Close()
	}()
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "up 42" {
		t.Errorf("POST /echo = %q, want %q", b, "up 42")
	}
}

// TestLargeTransfers moves 16 MiB each way through the flow control
// windows, on several streams at once.
func TestLargeTransfers(t *testing.T) {
	const size = 16 << 20
	payload := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	sum := sha256.Sum256(payload)
	ts := startServer(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			h := sha256.New()
			n, err := io.Copy(h, r.Body)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			io.WriteString(w, strconv.FormatInt(n, 10)+" "+string(h.Sum(nil)))
			return
		}
		for b := payload; len(b) > 0; b = b[min(len(b), 100000):] {
			w.Write(b[:min(len(b), 100000)])
		}
	}))
	c := ts.client()
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			resp, err := c.Get(ts.url("/down"))
			if err != nil {
				t.Error(err)
				return
			}
			h := sha256.New()
			n, err := io.Copy(h, resp.Body)
			resp.Body.Close()
			if err != nil || n != size || !bytes.Equal(h.Sum(nil), sum[:]) {
				t.Errorf("download %d: %d bytes, %v, digest match %v", i, n, err, bytes.Equal(h.Sum(nil), sum[:]))
			}
		})
		wg.Go(func() {
			resp, err := c.Post(ts.url("/up"), "application/octet-stream", bytes.NewReader(payload))
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := strconv.Itoa(size) + " " + string(sum[:]); string(b) != want {
				t.Errorf("upload %d: answer %q", i, b)
			}
		})
	}
	wg.Wait()
	for _, l := range Limits() {
		if n := ts.hits(l); n > 0 {
			t.Errorf("limit %v enforced %d times", l, n)
		}
	}
}

// TestInformational sends 103 Early Hints and a 100 Continue before the
// final response.
func TestInformational(t *testing.T) {
	ts := startServer(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}))
	var codes []int
	var mu sync.Mutex
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		mu.Lock()
		codes = append(codes, code)
		mu.Unlock()
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "PUT", ts.url("/"), strings.NewReader("payload"))
	req.Header.Set("Expect", "100-continue")
	resp, err := ts.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if string(b) != "payload" || len(codes) == 0 || codes[0] != http.StatusEarlyHints {
		t.Errorf("body %q, 1xx %v; want payload, 103 first", b, codes)
	}
}

// TestRequestBodyFailures checks that a body the client resets, or whose
// DATA exceed its content-length, fails the handler's reads (so a proxy
// aborts its upstream request) and cancels the request's context.
func TestRequestBodyFailures(t *testing.T) {
	type result struct {
		path string
		err  error
		ctx  bool
	}
	results := make(chan result, 4)
	ts := startServer(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		if r.URL.Path == "/short" {
			// The stream is not reset: the handler's answer goes out.
			results <- result{r.URL.Path, err, r.Context().Err() != nil}
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		results <- result{r.URL.Path, err, r.Context().Err() != nil}
	}))
	rc := dialRaw(t, ts.addr)
	rc.request(1, false, append(get("/reset"), "content-length", "10")...)
	rc.fr.WriteData(1, false, []byte("abc"))
	rc.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	rc.request(3, false, append(get("/long"), "content-length", "2")...)
	rc.fr.WriteData(3, true, []byte("abc"))
	if ev := rc.await(3); !ev.rst || ev.code != http2.ErrCodeProtocol {
		t.Errorf("stream 3 with a body longer than its content-length: %+v, want RST_STREAM PROTOCOL_ERROR", ev)
	}
	rc.request(5, false, append(get("/short"), "content-length", "5")...)
	rc.fr.WriteData(5, true, []byte("abc"))
	if ev := rc.await(5); ev.status != http.StatusBadRequest {
		t.Errorf("stream 5 with a body shorter than its content-length: %+v, want the handler's 400", ev)
	}
	got := map[string]result{}
	for range 3 {
		select {
		case r := <-results:
			got[r.path] = r
		case <-time.After(10 * time.Second):
			t.Fatalf("handlers did not finish: %v", got)
		}
	}
	var se http2.StreamError
	if r := got["/reset"]; !errors.As(r.err, &se) || se.Code != http2.ErrCodeCancel || !r.ctx {
		t.Errorf("reset body: read error %v, context cancelled %v; want a StreamError CANCEL, cancelled", r.err, r.ctx)
	}
	if r := got["/long"]; !errors.Is(r.err, errBodyLength) || !r.ctx {
		t.Errorf("/long: read error %v, context cancelled %v; want errBodyLength, cancelled", r.err, r.ctx)
	}
	if r := got["/short"]; !errors.Is(r.err, errBodyLength) || r.ctx {
		t.Errorf("/short: read error %v, context cancelled %v; want errBodyLength, not cancelled", r.err, r.ctx)
	}
}

// TestReadDeadline checks SetReadDeadline through http.ResponseController.
func TestReadDeadline(t *testing.T) {
	errs := make(chan error, 1)
	ts := startServer(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		_, err := io.ReadAll(r.Body)
		errs <- err
		w.WriteHeader(http.StatusRequestTimeout)
	}))
	rc := dialRaw(t, ts.addr)
	rc.request(1, false, get("/slow")...)
	rc.fr.WriteData(1, false, []byte("a"))
	if ev := rc.await(1); ev.status != http.StatusRequestTimeout {
		t.Errorf("got %+v, want 408", ev)
	}
	if err := <-errs; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read error %v, want os.ErrDeadlineExceeded", err)
	}
}

// TestMalformedRequests checks that requests RFC 9113 calls malformed are
// refused with RST_STREAM PROTOCOL_ERROR before any handler runs, and that
// the connection goes on serving.
func TestMalformedRequests(t *testing.T) {
	var called atomic.Int32
	ts := startServer(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ok" {
			called.Add(1)
		}
	}))
	base := func(extra ...string) []string { return append(get("/x"), extra...) }
	cases := map[string][]string{
		"two differing content-length": base("content-length", "1", "content-length", "2"),
		"content-length not digits":    base("content-length", "+1"),
		"space in :path":               {":method", "GET", ":scheme", "http", ":authority", "a", ":path", "/a b"},
		"non-ASCII :path":              {":method", "GET", ":scheme", "http", ":authority", "a", ":path", "/\xc3\xa9"},
		"fragment in :path":            {":method", "GET", ":scheme", "http", ":authority", "a", ":path", "/a#b"},
		"relative :path":               {":method", "GET", ":scheme", "http", ":authority", "a", ":path", "a"},
		"empty :path":                  {":method", "GET", ":scheme", "http", ":authority", "a", ":path", ""},
		"connection":                   base("connection", "keep-alive"),
		"keep-alive":                   base("keep-alive", "5"),
		"transfer-encoding":            base("transfer-encoding", "chunked"),
		"upgrade":                      base("upgrade", "websocket"),
		"te gzip":                      base("te", "gzip"),
		"upper-case name":              base("X-Upper", "1"),
		"invalid value":                base("x-a", "a\x00b"),
		"pseudo after regular":         {":method", "GET", ":scheme", "http", "x-a", "1", ":path", "/"},
		"unknown pseudo":               base(":foo", "1"),
		":protocol":                    base(":protocol", "websocket"),
		"duplicate :method":            append([]string{":method", "GET"}, base()...),
		"missing :scheme":              {":method", "GET", ":authority", "a", ":path", "/"},
		"scheme ftp":                   {":method", "GET", ":scheme", "ftp", ":authority", "a", ":path", "/"},
		"method not a token":           {":method", "G T", ":scheme", "http", ":authority", "a", ":path", "/"},
		"CONNECT with :path":           {":method", "CONNECT", ":authority", "a:443", ":path", "/"},
		"host differs from authority":  base("host", "other"),
		"userinfo in authority":        {":method", "GET", ":scheme", "http", ":authority", "u@a", ":path", "/"},
		"status in a request":          base(":status", "200"),
	}
	rc := dialRaw(t, ts.addr)
	id := uint32(1)
	for name, fields := range cases {
		rc.request(id, true, fields...)
		if ev := rc.await(id); !ev.rst || ev.code != http2.ErrCodeProtocol {
			t.Errorf("%s: %+v, want RST_STREAM PROTOCOL_ERROR", name, ev)
		}
		id += 2
	}
	rc.request(id, true, get("/ok")...)
	if ev := rc.await(id); ev.status != 200 {
		t.Errorf("a valid request after the malformed ones: %+v", ev)
	}
	if n := called.Load(); n != 0 {
		t.Errorf("handler called %d times for malformed requests", n)
	}
}

// TestWriterBatches counts the writes of a connection serving many
// streams at once: the frames of all streams ready in a round leave in one
// write, so there are far fewer writes than responses.
func TestWriterBatches(t *testing.T) {
	const streams = 100
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(streams)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Done()
		<-release
		io.WriteString(w, "response body of some length")
	}), ErrorLog: quietLogger()}
	client, server := net.Pipe()
	cw := &countingConn{Conn: server}
	go s.ServeConn(cw, nil)
	t.Cleanup(func() { client.Close(); s.Close() })
	rc := &rawConn{t: t, c: client, fr: http2.NewFramer(client, client)}
	rc.enc = newEncoder(&rc.hbuf)
	rc.dec = newDecoder()
	go func() {
		io.WriteString(client, http2.ClientPreface)
		rc.fr.WriteSettings()
		for i := range streams {
			rc.request(uint32(2*i+1), true, get("/"+strconv.Itoa(i))...)
		}
	}()
	done := make(chan int)
	go func() {
		ended := 0
		for ended < streams {
			f, err := rc.fr.ReadFrame()
			if err != nil {
				break
			}
			switch f := f.(type) {
			case *http2.HeadersFrame:
				rc.dec.DecodeFull(f.HeaderBlockFragment())
				if f.StreamEnded() {
					ended++
				}
			case *http2.DataFrame:
				if f.StreamEnded() {
					ended++
				}
			}
		}
		done <- ended
	}()
	started.Wait()
	before := cw.writes.Load()
	close(release)
	if n := <-done; n != streams {
		t.Fatalf("%d of %d responses ended", n, streams)
	}
	writes := cw.writes.Load() - before
	t.Logf("%d responses (%d frames) in %d writes", streams, 2*streams, writes)
	if writes > streams/4 {
		t.Errorf("%d writes for %d responses released together; want batching (at most %d)", writes, streams, streams/4)
	}
}

// countingConn counts Write calls.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestShutdownTwoPhase checks the graceful close of RFC 9113 section
// 6.8: a first GOAWAY with the largest stream identifier and a PING; a
// stream the client opens before acknowledging the PING is still served;
// the acknowledgement brings the last GOAWAY, naming that stream; a stream
// opened after it is ignored; the streams in flight finish, then the
// connection closes and Shutdown returns. A client that never acknowledges
// gets the last GOAWAY anyway.
func TestShutdownTwoPhase(t *testing.T) {
	release := make(chan struct{})
	started := make(chan string, 4)
	ts := startServer(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- r.URL.Path
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, "finished "+r.URL.Path)
	}))
	rc := dialRaw(t, ts.addr)
	rc.request(1, true, get("/slow")...)
	<-started
	shut := make(chan error, 1)
	go func() { shut <- ts.srv.Shutdown(context.Background()) }()

	// nextControl reads frames until a GOAWAY or a PING, failing on
	// anything for a stream.
	nextControl := func() http2.Frame {
		t.Helper()
		for {
			f, err := rc.fr.ReadFrame()
			if err != nil {
				t.Fatalf("reading: %v", err)
			}
			switch f := f.(type) {
			case *http2.GoAwayFrame:
				return f
			case *http2.PingFrame:
				if !f.IsAck() {
					return f
				}
			case *http2.HeadersFrame, *http2.DataFrame, *http2.RSTStreamFrame:
				t.Fatalf("stream %d answered before its time: %v", f.Header().StreamID, f)
			}
		}
	}
	first, ok := nextControl().(*http2.GoAwayFrame)
	if !ok || first.ErrCode != http2.ErrCodeNo || first.LastStreamID != 1<<31-1 {
		t.Fatalf("first frame of the close: %v, want GOAWAY NO_ERROR with the largest stream id", first)
	}
	ping, ok := nextControl().(*http2.PingFrame)
	if !ok {
		t.Fatal("no PING after the first GOAWAY")
	}
	// A stream opened before the client read the GOAWAY is served.
	rc.request(3, true, get("/raced")...)
	if ev := rc.await(3); ev.status != 200 || string(ev.body) != "finished /raced" {
		t.Fatalf("stream opened between the GOAWAYs: %+v", ev)
	}
	<-started
	rc.fr.WritePing(true, ping.Data)
	last, ok := nextControl().(*http2.GoAwayFrame)
	if !ok || last.ErrCode != http2.ErrCodeNo || last.LastStreamID != 3 {
		t.Fatalf("after the PING's acknowledgement: %v, want GOAWAY NO_ERROR last stream 3", last)
	}
	rc.request(5, true, get("/late")...) // past the last GOAWAY: ignored
	close(release)
	if ev := rc.await(1); string(ev.body) != "finished /slow" {
		t.Errorf("stream in flight: %+v", ev)
	}
	for {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			break // closed
		}
		if id := f.Header().StreamID; id == 5 {
			t.Errorf("stream 5, opened after the last GOAWAY, got %v", f)
		}
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	select {
	case p := <-started:
		t.Errorf("handler ran for %s after the last GOAWAY", p)
	default:
	}

	t.Run("no acknowledgement", func(t *testing.T) {
		ts := startServer(t, nil, okHandler)
		rc := dialRaw(t, ts.addr)
		rc.request(1, true, get("/")...)
		if ev := rc.await(1); ev.status != 200 {
			t.Fatalf("request: %+v", ev)
		}
		go ts.srv.Shutdown(context.Background())
		var goAways []uint32
		for {
			f, err := rc.fr.ReadFrame()
			if err != nil {
				break
			}
			if g, ok := f.(*http2.GoAwayFrame); ok {
				goAways = append(goAways, g.LastStreamID)
			}
		}
		if !slices.Equal(goAways, []uint32{1<<31 - 1, 1}) {
			t.Errorf("GOAWAY last streams %v, want [%d 1]", goAways, uint32(1<<31-1))
		}
	})
}

// TestHandlerPanics checks that a panicking handler resets its stream
// with INTERNAL_ERROR and the connection serves on.
func TestHandlerPanics(t *testing.T) {
	ts := startServer(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic(http.ErrAbortHandler)
		}
	}))
	rc := dialRaw(t, ts.addr)
	rc.request(1, true, get("/panic")...)
	if ev := rc.await(1); !ev.rst || ev.code != http2.ErrCodeInternal {
		t.Errorf("panicking handler: %+v, want RST_STREAM INTERNAL_ERROR", ev)
	}
	rc.request(3, true, get("/fine")...)
	if ev := rc.await(3); ev.status != 200 {
		t.Errorf("next stream: %+v", ev)
	}
}

// TestUniqueFieldsNeverIndexed checks that the fields named in
// UniqueFields go out as never-indexed literals, response after response,
// and the others are indexed (sent again as an index).
func TestUniqueFieldsNeverIndexed(t *testing.T) {
	var n atomic.Int64
	ts := startServer(t, &Server{UniqueFields: []string{"x-request-id"}}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "id-"+strconv.FormatInt(n.Add(1), 10))
		w.Header().Set("X-Same", "same")
		io.WriteString(w, "ok")
	}))
	rc := dialRaw(t, ts.addr)
	var sizes []int
	for id := uint32(1); id <= 5; id += 2 {
		rc.request(id, true, get("/")...)
		ev := rc.await(id)
		if ev.status != 200 {
			t.Fatalf("stream %d: %+v", id, ev)
		}
		sensitive := map[string]bool{}
		for _, f := range ev.headers {
			sensitive[f.Name] = f.Sensitive
		}
		if !sensitive["x-request-id"] || sensitive["x-same"] {
			t.Errorf("stream %d: never-indexed fields %v; want x-request-id only", id, sensitive)
		}
		sizes = append(sizes, len(rc.lastBlock))
	}
	if sizes[2] > sizes[0]-len("same") {
		t.Errorf("header block sizes %v: the repeated fields are not sent as indexes", sizes)
	}
}
