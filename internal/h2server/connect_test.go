package h2server

import (
	"io"
	"net/http"
	"testing"

	"golang.org/x/net/http2"
)

// connectWS is the header list of an extended CONNECT for a WebSocket.
func connectWS(path string, extra ...string) []string {
	return append([]string{":method", "CONNECT", ":protocol", "websocket", ":scheme", "http", ":authority", "test.local", ":path", path}, extra...)
}

// settingsOf reads frames until the server's first SETTINGS and returns
// its values.
func (rc *rawConn) settingsOf() map[http2.SettingID]uint32 {
	rc.t.Helper()
	for {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			rc.t.Fatalf("no SETTINGS: %v", err)
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			out := map[http2.SettingID]uint32{}
			sf.ForeachSetting(func(s http2.Setting) error { out[s.ID] = s.Val; return nil })
			return out
		}
	}
}

// TestExtendedConnect checks RFC 8441 on the server side: the setting is
// advertised only when enabled; an extended CONNECT reaches the handler
// as net/http presents it (CONNECT, :protocol in the header, the path in
// the URL); its 2xx answer goes out at Flush without a content-length;
// DATA flows both ways; the client's END_STREAM ends the body and the
// handler's return ends the stream; a handler that aborts resets the
// stream with CONNECT_ERROR; malformed extended CONNECTs are refused.
func TestExtendedConnect(t *testing.T) {
	t.Run("disabled", func(t *testing.T) {
		called := false
		ts := startServer(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true }))
		rc := dialRaw(t, ts.addr)
		if v, ok := rc.settingsOf()[http2.SettingEnableConnectProtocol]; ok {
			t.Errorf("SETTINGS_ENABLE_CONNECT_PROTOCOL = %d advertised; want it absent", v)
		}
		rc.request(1, false, connectWS("/chat")...)
		if ev := rc.await(1); !ev.rst || ev.code != http2.ErrCodeProtocol {
			t.Errorf("extended CONNECT not offered: %+v, want RST_STREAM PROTOCOL_ERROR", ev)
		}
		if called {
			t.Error("handler called")
		}
	})

	type seenReq struct {
		method, protocol, path, host string
	}
	seen := make(chan seenReq, 1)
	ts := startServer(t, &Server{EnableConnectProtocol: true}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/abort" {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		if r.Method != http.MethodConnect {
			io.WriteString(w, "plain")
			return
		}
		seen <- seenReq{r.Method, r.Header.Get(":protocol"), r.URL.Path, r.Host}
		w.Header().Set("Content-Length", "0") // dropped: a tunnel has no length
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		buf := make([]byte, 1024)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				w.Write(buf[:n])
				w.(http.Flusher).Flush()
			}
			if err != nil {
				io.WriteString(w, "bye")
				return
			}
		}
	}))
	rc := dialRaw(t, ts.addr)
	if v := rc.settingsOf()[http2.SettingEnableConnectProtocol]; v != 1 {
		t.Fatalf("SETTINGS_ENABLE_CONNECT_PROTOCOL = %d, want 1", v)
	}
	rc.request(1, false, connectWS("/chat", "sec-websocket-version", "13")...)
	got := <-seen
	if got != (seenReq{"CONNECT", "websocket", "/chat", "test.local"}) {
		t.Errorf("handler saw %+v", got)
	}
	// The 2xx goes out before any DATA, without a content-length.
	var status int
	for status == 0 {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if hf, ok := f.(*http2.HeadersFrame); ok && hf.StreamID == 1 {
			fields, err := rc.dec.DecodeFull(hf.HeaderBlockFragment())
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range fields {
				switch f.Name {
				case ":status":
					status = atoi(f.Value)
				case "content-length":
					t.Errorf("content-length %q in the answer to CONNECT", f.Value)
				}
			}
			if hf.StreamEnded() {
				t.Fatal("the tunnel's answer ended the stream")
			}
		}
	}
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	for _, msg := range []string{"hello", "again"} {
		rc.fr.WriteData(1, false, []byte(msg))
		var echo []byte
		for len(echo) < len(msg) {
			f, err := rc.fr.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if df, ok := f.(*http2.DataFrame); ok && df.StreamID == 1 {
				echo = append(echo, df.Data()...)
				if df.StreamEnded() {
					t.Fatal("stream ended early")
				}
			}
		}
		if string(echo) != msg {
			t.Errorf("echo %q, want %q", echo, msg)
		}
	}
	rc.fr.WriteData(1, true, nil) // the client's FIN
	if ev := rc.await(1); ev.rst || string(ev.body) != "bye" {
		t.Errorf("after END_STREAM: %+v, want the handler's last bytes and END_STREAM", ev)
	}

	rc.request(3, false, connectWS("/abort")...)
	if ev := rc.await(3); !ev.rst || ev.code != http2.ErrCodeConnect {
		t.Errorf("aborted tunnel: %+v, want RST_STREAM CONNECT_ERROR", ev)
	}

	bad := map[string][]string{
		":protocol on GET":   {":method", "GET", ":protocol", "websocket", ":scheme", "http", ":authority", "a", ":path", "/"},
		"no :path":           {":method", "CONNECT", ":protocol", "websocket", ":scheme", "http", ":authority", "a"},
		"no :scheme":         {":method", "CONNECT", ":protocol", "websocket", ":authority", "a", ":path", "/"},
		"no :authority":      {":method", "CONNECT", ":protocol", "websocket", ":scheme", "http", ":path", "/"},
		"empty :protocol":    {":method", "CONNECT", ":protocol", "", ":scheme", "http", ":authority", "a", ":path", "/"},
		"two :protocol":      {":method", "CONNECT", ":protocol", "websocket", ":protocol", "websocket", ":scheme", "http", ":authority", "a", ":path", "/"},
		"upgrade field also": connectWS("/", "upgrade", "websocket"),
	}
	id := uint32(5)
	for name, fields := range bad {
		rc.request(id, false, fields...)
		if ev := rc.await(id); !ev.rst || ev.code != http2.ErrCodeProtocol {
			t.Errorf("%s: %+v, want RST_STREAM PROTOCOL_ERROR", name, ev)
		}
		id += 2
	}
	rc.request(id, true, get("/plain")...)
	if ev := rc.await(id); ev.status != 200 || string(ev.body) != "plain" {
		t.Errorf("a request after the others: %+v", ev)
	}
}
