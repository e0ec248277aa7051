package h2client

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// serverFrames encodes frames as a server would send them after its
// SETTINGS: a response on stream 1 built by f.
func serverFrames(f func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer)) []byte {
	var out, hb bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	enc := hpack.NewEncoder(&hb)
	f(fr, enc, &hb)
	return out.Bytes()
}

func block(enc *hpack.Encoder, hb *bytes.Buffer, kv ...string) []byte {
	hb.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return bytes.Clone(hb.Bytes())
}

// FuzzServerFrames feeds arbitrary bytes, as the server's frames after its
// SETTINGS, to a connection with one request in flight. Whatever they
// are, the request must end (a response or an error, its body read to an
// end or an error) once the server closes, with no panic and no hang; a
// body delivered whole must not exceed the response's content-length.
func FuzzServerFrames(f *testing.F) {
	f.Add(serverFrames(func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(enc, hb, ":status", "200", "content-length", "2"), EndHeaders: true})
		fr.WriteData(1, true, []byte("ok"))
	}))
	f.Add(serverFrames(func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(enc, hb, ":status", "103", "link", "</x>"), EndHeaders: true})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(enc, hb, ":status", "200", "trailer", "grpc-status"), EndHeaders: true})
		fr.WriteData(1, false, []byte("abc"))
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(enc, hb, "grpc-status", "0"), EndHeaders: true, EndStream: true})
	}))
	f.Add(serverFrames(func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
		blk := block(enc, hb, ":status", "200", "x-long", string(bytes.Repeat([]byte("v"), 100)))
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk[:10]})
		fr.WriteContinuation(1, true, blk[10:])
		fr.WriteWindowUpdate(0, 1000)
		fr.WritePing(false, [8]byte{1})
		fr.WriteDataPadded(1, true, []byte("padded"), make([]byte, 20))
	}))
	f.Add(serverFrames(func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
		fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
		fr.WriteRSTStream(1, http2.ErrCodeRefusedStream)
		fr.WriteGoAway(1, http2.ErrCodeEnhanceYourCalm, []byte("calm"))
	}))
	f.Fuzz(func(t *testing.T, frames []byte) {
		cside, sside := net.Pipe()
		go io.Copy(io.Discard, sside)
		done := make(chan struct{})
		go func() {
			defer close(done)
			var pre bytes.Buffer
			http2.NewFramer(&pre, nil).WriteSettings()
			sside.Write(pre.Bytes())
			sside.Write(frames)
			time.Sleep(time.Millisecond)
			sside.Close()
		}()
		c, err := NewConn(cside, Config{StreamWindow: 1 << 16, ConnWindow: 1 << 16})
		if err != nil {
			t.Skip()
		}
		defer c.Close()
		req, _ := http.NewRequest("POST", "http://backend.test/", bytes.NewReader([]byte("request body")))
		result := make(chan error, 1)
		go func() {
			resp, err := c.RoundTrip(req)
			if err != nil {
				result <- err
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.ContentLength >= 0 && int64(len(b)) > resp.ContentLength {
				err = errors.New("body longer than content-length delivered whole")
				t.Error(err)
			}
			result <- err
		}()
		select {
		case <-result:
		case <-time.After(10 * time.Second):
			t.Fatal("request did not end after the server closed")
		}
		<-done
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("reading goroutine did not end")
		}
	})
}
