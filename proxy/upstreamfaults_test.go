package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rauta/rauta/upstream"
)

// TestUpstreamFailsDuringRequestBody has a backend reset its connection
// while the proxy is still sending it the request body. The body is the
// client's and is fine: the answer must be 502 (upstream_error), never the
// 400 of a malformed body, whatever the client's protocol and the server
// serving it.
func TestUpstreamFailsDuringRequestBody(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(func() { ln.Close() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Read the head and 1 KiB of the body, then reset.
				br := bufio.NewReader(c)
				tp := textproto.NewReader(br)
				tp.ReadLine()
				tp.ReadMIMEHeader()
				io.CopyN(io.Discard, br, 1<<10)
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}()
		}
	}()
	body := bytes.Repeat([]byte("x"), 4<<20)
	for _, server := range []ServerImpl{ServerRauta, ServerNetHTTP} {
		for _, h2 := range []bool{false, true} {
			name := server.String() + "/http1"
			if h2 {
				name = server.String() + "/h2c"
			}
			t.Run(name, func(t *testing.T) {
				p, logs := bodyFaultProxy(t, server, false, ln.Addr().String())
				c := clientOf(h2)
				for i := range 20 {
					path := "/up/" + strconv.Itoa(i)
					resp, err := c.Post(baseURL(t, p, "gw/http")+path, "application/octet-stream", bytes.NewReader(body))
					if err != nil {
						// The proxy may close the connection while the
						// client is still sending; that is no answer,
						// not a wrong one.
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusBadGateway {
						t.Errorf("POST %s: status %d, want 502; access log: %v", path, resp.StatusCode, logs.find(t, path))
					}
				}
			})
		}
	}
}

// TestNotSentRetryWithSpentBody has a backend reset a keep-alive
// connection once the proxy has pooled it. The next POST is written into
// that dead connection: the write fails before a byte reaches the
// backend, but the proxy has read the client's body to write it. The
// request must not be sent again with a body it no longer has: the client
// gets 502 (upstream_error), not the 400 of a malformed body, and no
// backend receives the request.
func TestNotSentRetryWithSpentBody(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var seen []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					b, err := io.ReadAll(req.Body)
					mu.Lock()
					seen = append(seen, req.URL.Path+" "+strconv.Quote(string(b))+" "+strconv.FormatBool(err == nil))
					mu.Unlock()
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
					if req.URL.Path == "/first" {
						// The connection dies once pooled.
						c.(*net.TCPConn).SetLinger(0)
						return
					}
				}
			}()
		}
	}()
	for _, server := range []ServerImpl{ServerRauta, ServerNetHTTP} {
		for _, h2 := range []bool{false, true} {
			t.Run(server.String()+"/"+clientProto(h2), func(t *testing.T) {
				mu.Lock()
				seen = nil
				mu.Unlock()
				p := newTestProxy(t, Options{Server: server})
				if err := p.Apply(simpleConfig(map[string][]string{"b": {ln.Addr().String()}},
					Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "b", Weight: 1}}})); err != nil {
					t.Fatal(err)
				}
				base := baseURL(t, p, "gw/http")
				c := clientOf(h2)
				if code, _, _ := get(t, c, base+"/first"); code != http.StatusOK {
					t.Fatalf("GET /first: %d", code)
				}
				time.Sleep(100 * time.Millisecond) // the reset arrives
				resp, err := c.Post(base+"/second", "text/plain", strings.NewReader("hello"))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				time.Sleep(100 * time.Millisecond)
				mu.Lock()
				defer mu.Unlock()
				for _, s := range seen {
					if strings.HasPrefix(s, "/second ") && s != `/second "hello" true` {
						t.Errorf("the backend received %s", s)
					}
				}
				if resp.StatusCode != http.StatusBadGateway && resp.StatusCode != http.StatusOK {
					t.Errorf("POST /second: status %d, want 502 (or 200 if sent whole); the backend saw %q", resp.StatusCode, seen)
				}
			})
		}
	}
}

func clientProto(h2 bool) string {
	if h2 {
		return "h2c"
	}
	return "http1"
}

// clientOf returns an HTTP/1.1 client, or an h2c one with prior knowledge.
func clientOf(h2 bool) *http.Client {
	tr := &http.Transport{}
	tr.Protocols = new(http.Protocols)
	if h2 {
		tr.Protocols.SetUnencryptedHTTP2(true)
	} else {
		tr.Protocols.SetHTTP1(true)
	}
	return &http.Client{Transport: tr}
}

// TestNotSentRetryKeepsBody balances POST requests over an endpoint that
// refuses connections and one that answers. A refused dial sends nothing
// and reads nothing of the body, so the request goes to the other
// endpoint with its body whole, whatever the client's protocol: every
// request succeeds, and the backend receives every body whole.
func TestNotSentRetryKeepsBody(t *testing.T) {
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := refused.Addr().String()
	refused.Close()
	backend := newBodyFaultBackend(t)
	body := strings.Repeat("b", 100<<10)
	for _, server := range []ServerImpl{ServerRauta, ServerNetHTTP} {
		for _, h2 := range []bool{false, true} {
			t.Run(server.String()+"/"+clientProto(h2), func(t *testing.T) {
				p := newTestProxy(t, Options{Server: server})
				cfg := simpleConfig(map[string][]string{"b": {dead, backend.addr}},
					Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "b", Weight: 1}}})
				cfg.Backends[0].CircuitBreaker = &upstream.CircuitBreaker{Disabled: true}
				if err := p.Apply(cfg); err != nil {
					t.Fatal(err)
				}
				c := clientOf(h2)
				prefix := "/" + server.String() + "/" + clientProto(h2) + "/"
				for i := range 10 {
					path := prefix + strconv.Itoa(i)
					resp, err := c.Post(baseURL(t, p, "gw/http")+path, "text/plain", strings.NewReader(body))
					if err != nil {
						t.Fatalf("POST %s: %v", path, err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK || string(b) != "whole" {
						t.Errorf("POST %s: %d %q, want 200 \"whole\"", path, resp.StatusCode, b)
					}
					if whole, broken := backend.seen(path); whole != 1 || broken != 0 {
						t.Errorf("POST %s: the backend received %d whole and %d broken bodies, want 1 whole", path, whole, broken)
					}
				}
			})
		}
	}
}
