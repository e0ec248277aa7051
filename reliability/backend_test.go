//go:build reliability

package reliability

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The load client's requests are GET or POST /<prefix>/<id>?size=N with
// X-Load-Id: <id>; a POST carries a body. The backends answer with a body
// of N bytes that starts with a line naming the request and the SHA-256 of
// the request body they received, and stamp the response with
//
//	X-Stamp:    the SHA-256 of the response body they send
//	X-Stamp-Id: the request's X-Load-Id
//
// so the client can tell an answer that is not the one a backend sent (a
// mismatch) and a success no backend gave (no stamp).
const (
	hdrID    = "X-Load-Id"
	hdrStamp = "X-Stamp"
	hdrSID   = "X-Stamp-Id"
	hdrEarly = "X-Early"
	maxSize  = 1 << 20
)

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// answerBody is the body a backend sends for r, whose request body had
// the digest reqSum ("empty" for none, "unread" when the backend answered
// without reading it).
func answerBody(r *http.Request, backend, reqSum string) []byte {
	size, _ := strconv.Atoi(r.URL.Query().Get("size"))
	size = min(max(size, 0), maxSize)
	id := r.Header.Get(hdrID)
	b := fmt.Appendf(nil, "id=%s method=%s req=%s backend=%s\n", id, r.Method, reqSum, backend)
	for i := 0; len(b) < size; i++ {
		b = append(b, byte('a'+(i*7+len(id))%26))
	}
	return b
}

// readAndSum reads r's body and returns its digest.
func readAndSum(r *http.Request) (string, error) {
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		return "", err
	}
	if n == 0 {
		return "empty", nil
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func stampHeaders(w http.ResponseWriter, r *http.Request, body []byte, chunked bool) {
	w.Header().Set(hdrStamp, sum(body))
	w.Header().Set(hdrSID, r.Header.Get(hdrID))
	w.Header().Set("Content-Type", "text/plain")
	if !chunked {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	}
}

// abortPrefix starts the X-Load-Id of uploads the client abandons
// halfway; abortedUploadsCompleted counts those a backend nevertheless
// received whole, which must never happen.
const abortPrefix = "abort-"

var abortedUploadsCompleted atomic.Int64

// stampHandler is a healthy backend. With ?chunked=1 it sends its body in
// three flushed parts without a Content-Length.
func stampHandler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			serveWebSocket(w, r)
			return
		}
		reqSum, err := readAndSum(r)
		if err != nil {
			// The request body did not arrive whole: there is nothing
			// to answer.
			panic(http.ErrAbortHandler)
		}
		if strings.HasPrefix(r.Header.Get(hdrID), abortPrefix) && reqSum != "empty" {
			abortedUploadsCompleted.Add(1)
		}
		body := answerBody(r, name, reqSum)
		chunked := r.URL.Query().Get("chunked") == "1"
		stampHeaders(w, r, body, chunked)
		if !chunked {
			w.Write(body)
			return
		}
		third := len(body) / 3
		for _, part := range [][]byte{body[:third], body[third : 2*third], body[2*third:]} {
			w.Write(part)
			http.NewResponseController(w).Flush()
		}
	})
}

// cutHandler stamps the body it means to send, sends half of it, and
// aborts: on HTTP/1.1 the connection is closed, on HTTP/2 the stream reset.
// With chunked it sends no Content-Length.
func cutHandler(chunked bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqSum, err := readAndSum(r)
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		body := answerBody(r, "cut", reqSum)
		stampHeaders(w, r, body, chunked)
		w.WriteHeader(http.StatusOK)
		w.Write(body[:len(body)/2])
		http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	})
}

// earlyHandler answers at once, before reading the request body, and says
// so in X-Early.
func earlyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqSum := "unread"
		if r.ContentLength == 0 {
			reqSum = "empty"
		}
		body := answerBody(r, "early", reqSum)
		stampHeaders(w, r, body, false)
		w.Header().Set(hdrEarly, "1")
		w.Write(body)
		http.NewResponseController(w).Flush()
	})
}

// server is a backend HTTP server on a loopback port.
type server struct {
	srv  *http.Server
	addr string
}

// startServer serves h on a new loopback port, over HTTP/1.1 or, with h2c,
// over HTTP/2 with prior knowledge only.
func startServer(t testing.TB, h http.Handler, h2c bool) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{srv: &http.Server{Handler: h, ErrorLog: discardLog()}, addr: ln.Addr().String()}
	if h2c {
		s.srv.Protocols = new(http.Protocols)
		s.srv.Protocols.SetUnencryptedHTTP2(true)
	}
	go s.srv.Serve(ln)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// rawBackend accepts connections on a loopback port and hands each to
// serve, for faults net/http will not commit.
type rawBackend struct {
	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func startRaw(t testing.TB, serve func(c net.Conn)) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &rawBackend{ln: ln, conns: map[net.Conn]bool{}}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns[c] = true
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				serve(c)
				c.Close()
				b.mu.Lock()
				delete(b.conns, c)
				b.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(b.close)
	return b
}

func (b *rawBackend) addr() string { return b.ln.Addr().String() }

func (b *rawBackend) close() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// readRequest reads one HTTP/1.1 request and its body from br.
func readRequest(br *bufio.Reader) (*http.Request, string, error) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, "", err
	}
	s, err := readAndSum(req)
	return req, s, err
}

// childBackendEnv makes the test binary a backend process (see TestMain).
const childBackendEnv = "RELIABILITY_CHILD_BACKEND"

// TestMain runs the test binary as a backend process when childBackendEnv
// is set: it serves stampHandler on a loopback port, prints the address,
// and runs until killed.
func TestMain(m *testing.M) {
	if os.Getenv(childBackendEnv) == "" {
		os.Exit(m.Run())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	(&http.Server{Handler: stampHandler("child"), ErrorLog: discardLog()}).Serve(ln)
}

// childBackend starts the test binary as a backend process and returns
// it with its address.
func childBackend(t testing.TB) (*exec.Cmd, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childBackendEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(l)
	}()
	select {
	case addr := <-line:
		if addr == "" {
			t.Fatal("child backend printed no address")
		}
		return cmd, addr
	case <-ctx.Done():
		t.Fatal("child backend did not start")
	}
	return nil, ""
}
