package h2client

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// echo answers with the method, authority, path, TE and body it got, and
// trailers (declared and undeclared) when the request carried some.
func echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	w.Header().Set("Trailer", "X-Sum")
	w.Header().Set("X-Proto", r.Proto)
	fmt.Fprintf(w, "%s %s %s te=%s cl=%d %s", r.Method, r.Host, r.URL.RequestURI(), r.Header.Get("Te"), r.ContentLength, body)
	w.Header().Set("X-Sum", fmt.Sprint(len(body)))
	if v := r.Trailer.Get("X-Req-Trailer"); v != "" {
		w.Header().Set(http.TrailerPrefix+"X-Echo-Trailer", v)
	}
}

func TestRoundTrip(t *testing.T) {
	s := newH2CServer(t, http.HandlerFunc(echo))
	c := dial(t, s.URL, Config{})
	req := newRequest(t, "GET", s.URL+"/a/b?q=1", nil)
	req.Host = "example.test"
	req.Header.Set("Te", "trailers, deflate")
	req.Header.Set("Connection", "keep-alive")
	resp, body := get(t, c, req)
	if want := "GET example.test /a/b?q=1 te=trailers cl=0 "; body != want || resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("got %d %s %q, want %q", resp.StatusCode, resp.Proto, body, want)
	}
	if diff := cmp.Diff(http.Header{"X-Sum": {"0"}}, resp.Trailer); diff != "" {
		t.Errorf("trailer (-want +got):\n%s", diff)
	}

	req = newRequest(t, "POST", s.URL+"/post", strings.NewReader("hello"))
	req.Trailer = http.Header{"X-Req-Trailer": nil}
	req.ContentLength = -1
	pr, pw := io.Pipe()
	req.Body = pr
	go func() {
		io.WriteString(pw, "hello")
		req.Trailer.Set("X-Req-Trailer", "t1")
		pw.Close()
	}()
	resp, body = get(t, c, req)
	if want := "POST 127.0.0.1:" + strings.Split(s.URL, ":")[2] + " /post te= cl=-1 hello"; body != want {
		t.Fatalf("got %q, want %q", body, want)
	}
	if diff := cmp.Diff(http.Header{"X-Sum": {"5"}, "X-Echo-Trailer": {"t1"}}, resp.Trailer); diff != "" {
		t.Errorf("trailer (-want +got):\n%s", diff)
	}
	if c.Streams() != 0 {
		t.Errorf("%d streams open after two exchanges", c.Streams())
	}
}

func TestConcurrentStreamsShareOneConnection(t *testing.T) {
	s := newH2CServer(t, http.HandlerFunc(echo))
	c := dial(t, s.URL, Config{})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := newRequest(t, "PUT", fmt.Sprintf("%s/%d", s.URL, i), strings.NewReader(strings.Repeat("x", i)))
			resp, err := c.RoundTrip(req)
			if err != nil {
				errs <- err
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || !strings.HasSuffix(string(b), fmt.Sprintf("/%d te= cl=%d %s", i, i, strings.Repeat("x", i))) {
				errs <- fmt.Errorf("stream %d: %q, %v", i, b, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestLargeBodiesBothWays sends and receives bodies many times the
// windows, with a reader slower than the server.
func TestLargeBodiesBothWays(t *testing.T) {
	s := newH2CServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
		w.Write(b)
	}))
	c := dial(t, s.URL, Config{StreamWindow: 64 << 10, ConnWindow: 128 << 10})
	payload := make([]byte, 3<<20)
	rand.Read(payload)
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.RoundTrip(newRequest(t, "POST", s.URL, bytes.NewReader(payload)))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
			if err != nil || !bytes.Equal(got, append(payload[:len(payload):len(payload)], payload...)) {
				t.Errorf("echo of %d bytes: got %d, %v", len(payload), len(got), err)
			}
		}()
	}
	wg.Wait()
}

// TestFullDuplex streams request and response at once, as a bidirectional
// gRPC call does: each line sent is answered before the next is written.
func TestFullDuplex(t *testing.T) {
	s := newH2CServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).EnableFullDuplex()
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		buf := make([]byte, 64)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				w.Write(bytes.ToUpper(buf[:n]))
				w.(http.Flusher).Flush()
			}
			if err != nil {
				return
			}
		}
	}))
	c := dial(t, s.URL, Config{})
	pr, pw := io.Pipe()
	req := newRequest(t, "POST", s.URL, nil)
	req.Body = pr
	req.ContentLength = -1
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64)
	for _, msg := range []string{"one", "two", "three"} {
		io.WriteString(pw, msg)
		n, err := io.ReadAtLeast(resp.Body, buf, len(msg))
		if err != nil || string(buf[:n]) != strings.ToUpper(msg) {
			t.Fatalf("after %q: %q, %v", msg, buf[:n], err)
		}
	}
	pw.Close()
	if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) != 0 {
		t.Fatalf("end: %q, %v", rest, err)
	}
}

// TestCancelResetsStream: cancelling the request's context resets the
// stream, which the server's handler sees, and fails the body read.
func TestCancelResetsStream(t *testing.T) {
	gone := make(chan struct{})
	s := newH2CServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/hang" {
			return
		}
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(gone)
	}))
	c := dial(t, s.URL, Config{})
	ctx, cancel := contextWithCancel()
	req := newRequest(t, "GET", s.URL+"/hang", nil).WithContext(ctx)
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("body read after cancel succeeded")
	}
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the server's handler did not see the reset")
	}
	// The connection still serves.
	if _, body := get(t, c, newRequest(t, "GET", s.URL, nil)); body != "" {
		t.Fatalf("second request: %q", body)
	}
}

func TestResponseHeaderTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	s := newH2CServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
	}))
	c := dial(t, s.URL, Config{ResponseHeaderTimeout: 50 * time.Millisecond})
	_, err := c.RoundTrip(newRequest(t, "GET", s.URL+"/slow", nil))
	if !errors.Is(err, ErrResponseHeaderTimeout) || NotProcessed(err) {
		t.Fatalf("err = %v, want ErrResponseHeaderTimeout (processed)", err)
	}
	get(t, c, newRequest(t, "GET", s.URL+"/fast", nil))
}

// TestEarlyBodyCloseReturnsWindow: responses abandoned after their first
// bytes give their share of the connection window back, so that later
// streams are not starved.
func TestEarlyBodyCloseReturnsWindow(t *testing.T) {
	big := bytes.Repeat([]byte("z"), 256<<10)
	s := newH2CServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(big)
	}))
	c := dial(t, s.URL, Config{StreamWindow: 256 << 10, ConnWindow: 512 << 10})
	for i := range 20 {
		resp, err := c.RoundTrip(newRequest(t, "GET", s.URL, nil))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		buf := make([]byte, 10)
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		time.Sleep(5 * time.Millisecond) // let the server fill the window
		resp.Body.Close()
	}
	ctx := ctxTimeout(t, 10*time.Second)
	resp, err := c.RoundTrip(newRequest(t, "GET", s.URL, nil).WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil || len(b) != len(big) {
		t.Fatalf("last response: %d bytes, %v", len(b), err)
	}
}
