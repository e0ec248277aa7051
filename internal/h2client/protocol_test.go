package h2client

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestMalformedResponses: each response that breaks HTTP/2's rules fails
// its request with ErrMalformedResponse and resets its stream, and the
// connection goes on serving the next request.
func TestMalformedResponses(t *testing.T) {
	cases := []struct {
		name  string
		reply func(rc *rawConn, id uint32)
		// inBody: the failure shows when the body is read.
		inBody bool
		code   http2.ErrCode
	}{
		{"no status", func(rc *rawConn, id uint32) { rc.headers(id, true, "content-type", "text/plain") }, false, http2.ErrCodeProtocol},
		{"two-digit status", func(rc *rawConn, id uint32) { rc.headers(id, true, ":status", "20") }, false, http2.ErrCodeProtocol},
		{"request pseudo-field", func(rc *rawConn, id uint32) { rc.headers(id, true, ":status", "200", ":path", "/") }, false, http2.ErrCodeProtocol},
		{"upper-case name", func(rc *rawConn, id uint32) { rc.headers(id, true, ":status", "200", "X-Bad", "1") }, false, http2.ErrCodeProtocol},
		{"connection-specific field", func(rc *rawConn, id uint32) { rc.headers(id, true, ":status", "200", "connection", "close") }, false, http2.ErrCodeProtocol},
		{"differing content-lengths", func(rc *rawConn, id uint32) {
			rc.headers(id, true, ":status", "200", "content-length", "1", "content-length", "2")
		}, false, http2.ErrCodeProtocol},
		{"101 in HTTP/2", func(rc *rawConn, id uint32) { rc.headers(id, false, ":status", "101") }, false, http2.ErrCodeProtocol},
		{"DATA over content-length", func(rc *rawConn, id uint32) {
			rc.headers(id, false, ":status", "200", "content-length", "2")
			rc.fr.WriteData(id, true, []byte("abc"))
		}, true, http2.ErrCodeProtocol},
		{"DATA under content-length", func(rc *rawConn, id uint32) {
			rc.headers(id, false, ":status", "200", "content-length", "5")
			rc.fr.WriteData(id, true, []byte("abc"))
		}, true, http2.ErrCodeProtocol},
		{"trailers without END_STREAM", func(rc *rawConn, id uint32) {
			rc.headers(id, false, ":status", "200")
			rc.fr.WriteData(id, false, []byte("abc"))
			rc.headers(id, false, "grpc-status", "0")
		}, true, http2.ErrCodeProtocol},
		{"pseudo-field in trailers", func(rc *rawConn, id uint32) {
			rc.headers(id, false, ":status", "200")
			rc.headers(id, true, ":status", "200")
		}, true, http2.ErrCodeProtocol},
		{"DATA past the stream window", func(rc *rawConn, id uint32) {
			rc.headers(id, false, ":status", "200")
			rc.fr.WriteData(id, false, make([]byte, 16384))
			rc.fr.WriteData(id, false, make([]byte, 16384))
		}, true, http2.ErrCodeFlowControl},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resets := make(chan http2.ErrCode, 1)
			srv := newRawServer(t, func(rc *rawConn) {
				hf := rc.handshake()
				if hf == nil {
					return
				}
				tc.reply(rc, hf.StreamID)
				rst := rc.waitFrame(func(f http2.Frame) bool { _, ok := f.(*http2.RSTStreamFrame); return ok })
				if rst != nil {
					resets <- rst.(*http2.RSTStreamFrame).ErrCode
				}
				// The next request on the same connection is served.
				hf = rc.nextHeaders()
				if hf == nil {
					return
				}
				rc.headers(hf.StreamID, false, ":status", "200")
				rc.fr.WriteData(hf.StreamID, true, []byte("ok"))
				io.Copy(io.Discard, rc.nc)
			})
			c := dial(t, srv.addr(), Config{StreamWindow: 16384})
			resp, err := c.RoundTrip(newRequest(t, "GET", "http://"+srv.addr()+"/", nil))
			if tc.inBody {
				if err != nil {
					t.Fatalf("RoundTrip: %v", err)
				}
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if !errors.Is(err, ErrMalformedResponse) {
				t.Fatalf("err = %v, want ErrMalformedResponse", err)
			}
			select {
			case code := <-resets:
				if code != tc.code {
					t.Errorf("stream reset with %v, want %v", code, tc.code)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no RST_STREAM")
			}
			if _, body := get(t, c, newRequest(t, "GET", "http://"+srv.addr()+"/", nil)); body != "ok" {
				t.Fatalf("next request: %q", body)
			}
		})
	}
}

// TestNotProcessed: REFUSED_STREAM, and a stream above a GOAWAY's last
// stream ID, fail with errors that say the server did not process them;
// a stream the server reset otherwise, or one below the GOAWAY, does not.
func TestNotProcessed(t *testing.T) {
	srv := newRawServer(t, func(rc *rawConn) {
		hf := rc.handshake()
		if hf == nil {
			return
		}
		switch hf.PseudoValue("path") {
		case "/refused":
			rc.fr.WriteRSTStream(hf.StreamID, http2.ErrCodeRefusedStream)
		case "/reset":
			rc.fr.WriteRSTStream(hf.StreamID, http2.ErrCodeInternal)
		case "/goaway":
			// Two streams: the first is kept, the second refused by the
			// GOAWAY; the first then completes.
			second := rc.nextHeaders()
			rc.fr.WriteGoAway(hf.StreamID, http2.ErrCodeNo, nil)
			_ = second
			rc.headers(hf.StreamID, true, ":status", "204")
		}
		io.Copy(io.Discard, rc.nc)
	})
	for path, want := range map[string]bool{"/refused": true, "/reset": false} {
		c := dial(t, srv.addr(), Config{})
		_, err := c.RoundTrip(newRequest(t, "GET", "http://"+srv.addr()+path, nil))
		if err == nil || NotProcessed(err) != want {
			t.Errorf("%s: err = %v, NotProcessed %v, want %v", path, err, NotProcessed(err), want)
		}
	}

	c := dial(t, srv.addr(), Config{})
	var wg sync.WaitGroup
	var first, second error
	var firstStatus int
	wg.Add(1)
	go func() {
		defer wg.Done()
		resp, err := c.RoundTrip(newRequest(t, "GET", "http://"+srv.addr()+"/goaway", nil))
		first = err
		if err == nil {
			firstStatus = resp.StatusCode
		}
	}()
	for c.Streams() == 0 {
		time.Sleep(time.Millisecond)
	}
	_, second = c.RoundTrip(newRequest(t, "GET", "http://"+srv.addr()+"/second", nil))
	wg.Wait()
	if first != nil || firstStatus != 204 {
		t.Errorf("stream below the GOAWAY: %d, %v", firstStatus, first)
	}
	if !NotProcessed(second) {
		t.Errorf("stream above the GOAWAY: %v, want NotProcessed", second)
	}
	if c.Reserve() {
		t.Error("a connection going away took a new stream")
	}
}

// TestMaxConcurrentStreams: Reserve refuses a stream beyond the server's
// SETTINGS_MAX_CONCURRENT_STREAMS, and accepts again once one ends.
func TestMaxConcurrentStreams(t *testing.T) {
	release := make(chan struct{})
	srv := newRawServer(t, func(rc *rawConn) {
		hf := rc.handshake(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 1})
		if hf == nil {
			return
		}
		<-release
		rc.headers(hf.StreamID, true, ":status", "204")
		io.Copy(io.Discard, rc.nc)
	})
	c := dial(t, srv.addr(), Config{})
	// The server's SETTINGS arrive before its answer to the first request.
	done := make(chan error, 1)
	go func() {
		_, err := c.RoundTrip(newRequest(t, "GET", "http://"+srv.addr()+"/", nil))
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for c.Streams() == 0 || c.Reserve() {
		if time.Now().After(deadline) {
			t.Fatal("Reserve kept accepting beyond the server's limit of 1")
		}
		c.release()
		time.Sleep(time.Millisecond)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !c.Reserve() {
		t.Fatal("Reserve refused after the stream ended")
	}
}

// TestPingTimeoutClosesConnection: a server that stops answering is found
// by the health check, and its streams fail.
func TestPingTimeoutClosesConnection(t *testing.T) {
	srv := newRawServer(t, func(rc *rawConn) {
		if rc.handshake() == nil {
			return
		}
		// Read on, answer nothing (no PING ack).
		io.Copy(io.Discard, rc.nc)
	})
	c := dial(t, srv.addr(), Config{ReadIdleTimeout: 50 * time.Millisecond, PingTimeout: 50 * time.Millisecond})
	_, err := c.RoundTrip(newRequest(t, "GET", "http://"+srv.addr()+"/", nil))
	if !errors.Is(err, ErrConnClosed) || !strings.Contains(err.Error(), "PING") {
		t.Fatalf("err = %v, want the PING timeout", err)
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("connection not closed")
	}
}

// TestIdleTimeout closes a connection without streams, with GOAWAY.
func TestIdleTimeout(t *testing.T) {
	goAway := make(chan http2.ErrCode, 1)
	srv := newRawServer(t, func(rc *rawConn) {
		rc.fr.WriteSettings()
		if f := rc.waitFrame(func(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok }); f != nil {
			goAway <- f.(*http2.GoAwayFrame).ErrCode
		}
	})
	c := dial(t, srv.addr(), Config{IdleTimeout: 50 * time.Millisecond})
	select {
	case code := <-goAway:
		if code != http2.ErrCodeNo {
			t.Errorf("GOAWAY %v", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("idle connection not closed")
	}
	<-c.Done()
	if c.Usable() {
		t.Error("closed connection usable")
	}
}

// TestInformational: 103 goes to Got1xxResponse; 100 Continue releases a
// body held by Expect.
func TestInformational(t *testing.T) {
	srv := newRawServer(t, func(rc *rawConn) {
		hf := rc.handshake()
		if hf == nil {
			return
		}
		rc.headers(hf.StreamID, false, ":status", "103", "link", "</a.css>; rel=preload")
		rc.headers(hf.StreamID, false, ":status", "100")
		var body []byte
		rc.waitFrame(func(f http2.Frame) bool {
			if d, ok := f.(*http2.DataFrame); ok {
				body = append(body, d.Data()...)
				return d.StreamEnded()
			}
			return false
		})
		rc.headers(hf.StreamID, false, ":status", "200")
		rc.fr.WriteData(hf.StreamID, true, body)
		io.Copy(io.Discard, rc.nc)
	})
	c := dial(t, srv.addr(), Config{ExpectContinueTimeout: time.Minute})
	var got []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		got = append(got, http.StatusText(code)+" "+h.Get("Link"))
		return nil
	}}
	req := newRequest(t, "POST", "http://"+srv.addr()+"/", strings.NewReader("payload"))
	req.Header.Set("Expect", "100-continue")
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	resp, body := get(t, c, req)
	if resp.StatusCode != 200 || body != "payload" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if len(got) != 2 || got[0] != "Early Hints </a.css>; rel=preload" || got[1] != "Continue " {
		t.Errorf("1xx seen: %q", got)
	}
}

// TestInvalidRequestNotSent: a request whose fields could not be sent is
// refused before anything reaches the server.
func TestInvalidRequestNotSent(t *testing.T) {
	s := newH2CServer(t, http.HandlerFunc(echo))
	c := dial(t, s.URL, Config{})
	for name, mod := range map[string]func(*http.Request){
		"bad name":     func(r *http.Request) { r.Header["Bad Name"] = []string{"x"} },
		"newline":      func(r *http.Request) { r.Header.Set("X-Split", "a\r\nb: c") },
		"space in URL": func(r *http.Request) { r.URL.RawQuery = "a b" },
		"bad host":     func(r *http.Request) { r.Host = "a b" },
	} {
		req := newRequest(t, "GET", s.URL+"/", nil)
		mod(req)
		if _, err := c.RoundTrip(req); !NotProcessed(err) {
			t.Errorf("%s: err = %v, want a refusal before sending", name, err)
		}
	}
	if _, body := get(t, c, newRequest(t, "GET", s.URL+"/ok", nil)); !strings.HasPrefix(body, "GET ") {
		t.Fatalf("after refusals: %q", body)
	}
}

// TestCredentialsNeverIndexed: credentials go as never-indexed literals,
// other fields may enter the dynamic table.
func TestCredentialsNeverIndexed(t *testing.T) {
	sensitive := make(chan map[string]bool, 1)
	srv := newRawServer(t, func(rc *rawConn) {
		hf := rc.handshake()
		if hf == nil {
			return
		}
		got := map[string]bool{}
		for _, f := range hf.RegularFields() {
			got[f.Name] = f.Sensitive
		}
		sensitive <- got
		rc.headers(hf.StreamID, true, ":status", "204")
		io.Copy(io.Discard, rc.nc)
	})
	c := dial(t, srv.addr(), Config{})
	req := newRequest(t, "GET", "http://"+srv.addr()+"/", nil)
	req.Header.Set("Authorization", "Bearer secret")
	req.Header.Set("Cookie", "session=s3cr3t")
	req.Header.Set("Accept", "*/*")
	get(t, c, req)
	want := map[string]bool{"authorization": true, "cookie": true, "accept": false}
	got := <-sensitive
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: never-indexed %v, want %v", name, got[name], w)
		}
	}
}
