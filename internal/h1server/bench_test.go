package h1server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// body64 is the benchmark handler's response body.
var body64 = bytes.Repeat([]byte("x"), 64)

// benchHandler writes a 64-byte body, with Content-Type set so that
// net/http does not sniff.
var benchHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/__cpu" {
		io.WriteString(w, strconv.FormatInt(cpuTime().Nanoseconds(), 10))
		return
	}
	w.Header()["Content-Type"] = textPlain
	w.Write(body64)
})

var textPlain = []string{"text/plain"}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchClient is a keep-alive HTTP/1.1 client that allocates nothing per
// request: it writes a fixed request and reads a response with a
// Content-Length into a fixed buffer.
type benchClient struct {
	nc         net.Conn
	req        []byte
	buf        []byte
	start, end int
	last       []byte // the last response's body
}

func newBenchClient(tb testing.TB, addr, path string) *benchClient {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	return &benchClient{
		nc:  nc,
		req: []byte("GET " + path + " HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"),
		buf: make([]byte, 16<<10),
	}
}

var (
	crlfcrlf = []byte("\r\n\r\n")
	clField  = []byte("\r\nContent-Length: ")
)

func (c *benchClient) do() error {
	if _, err := c.nc.Write(c.req); err != nil {
		return err
	}
	for {
		if head, total, ok := c.response(); ok {
			c.last = c.buf[c.start+head : c.start+total]
			c.start += total
			if c.start == c.end {
				c.start, c.end = 0, 0
			}
			return nil
		}
		if c.end == len(c.buf) {
			c.end = copy(c.buf, c.buf[c.start:c.end])
			c.start = 0
		}
		n, err := c.nc.Read(c.buf[c.end:])
		if err != nil {
			return err
		}
		c.end += n
	}
}

// response reports the head length and total length of the complete
// response at the start of the buffer, if there is one.
func (c *benchClient) response() (head, total int, ok bool) {
	data := c.buf[c.start:c.end]
	h := bytes.Index(data, crlfcrlf)
	if h < 0 {
		return 0, 0, false
	}
	i := bytes.Index(data[:h+2], clField)
	if i < 0 {
		return 0, 0, false
	}
	n := 0
	for _, d := range data[i+len(clField):] {
		if d < '0' || d > '9' {
			break
		}
		n = n*10 + int(d-'0')
	}
	if len(data) < h+4+n {
		return 0, 0, false
	}
	return h + 4, h + 4 + n, true
}

// benchServers starts the server of each kind.
func benchServers(b *testing.B) []struct {
	name string
	addr string
} {
	ours := startOurs(b, benchHandler, testConfig{})
	theirs := startNetHTTP(b, benchHandler, testConfig{})
	return []struct {
		name string
		addr string
	}{{"h1server", ours.addr}, {"net-http", theirs.addr}}
}

// BenchmarkServe is one keep-alive connection doing requests one after
// another: ns/op is the round trip; allocs/op are the server's (the
// client allocates nothing); cpu-ns/op is the CPU time of the whole
// process (client included) per request.
func BenchmarkServe(b *testing.B) {
	for _, s := range benchServers(b) {
		b.Run(s.name, func(b *testing.B) {
			c := newBenchClient(b, s.addr, "/")
			defer c.nc.Close()
			if err := c.do(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				if err := c.do(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
			if !bytes.Equal(c.last, body64) {
				b.Fatalf("body %q", c.last)
			}
		})
	}
}

// BenchmarkServeParallel is 16 keep-alive connections at once.
func BenchmarkServeParallel(b *testing.B) {
	for _, s := range benchServers(b) {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(8)
			cpu0 := cpuTime()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				c := newBenchClient(b, s.addr, "/")
				defer c.nc.Close()
				for pb.Next() {
					if err := c.do(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkServerCPU runs each server in a child process limited to one
// thread of Go code (GOMAXPROCS=1) and configured with the proxy's
// default timeouts, and measures that process's CPU time per request
// (server-cpu-ns/op), the figure that matters for a proxy, while 16
// keep-alive connections load it.
func BenchmarkServerCPU(b *testing.B) {
	for _, kind := range []string{"h1server", "net-http"} {
		b.Run(kind, func(b *testing.B) {
			addr, stop := startChild(b, kind)
			defer stop()
			cpu := func() time.Duration {
				c := newBenchClient(b, addr, "/__cpu")
				defer c.nc.Close()
				if err := c.do(); err != nil {
					b.Fatal(err)
				}
				n, _ := strconv.ParseInt(string(c.last), 10, 64)
				return time.Duration(n)
			}
			const conns = 16
			clients := make([]*benchClient, conns)
			for i := range clients {
				clients[i] = newBenchClient(b, addr, "/")
				defer clients[i].nc.Close()
			}
			b.ResetTimer()
			cpu0 := cpu()
			var wg sync.WaitGroup
			for i, c := range clients {
				n := b.N / conns
				if i < b.N%conns {
					n++
				}
				wg.Go(func() {
					for range n {
						if err := c.do(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			cpu1 := cpu()
			b.StopTimer()
			b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(b.N), "server-cpu-ns/op")
		})
	}
}

const childEnv = "H1SERVER_BENCH_CHILD"

// startChild starts this test binary as a server of the given kind and
// returns its address.
func startChild(b *testing.B, kind string) (string, func()) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+kind, "GOMAXPROCS=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "addr ") {
		cmd.Process.Kill()
		cmd.Wait()
		b.Fatalf("child: %q %v", line, err)
	}
	return strings.TrimSpace(strings.TrimPrefix(line, "addr ")), func() {
		stdin.Close()
		cmd.Wait()
	}
}

// TestBenchChild is the server process of BenchmarkServerCPU; it does
// nothing in a normal test run.
func TestBenchChild(t *testing.T) {
	kind := os.Getenv(childEnv)
	if kind == "" {
		t.Skip("only run as BenchmarkServerCPU's child")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var srv interface{ Close() error }
	switch kind {
	// The proxy's default timeouts, which cost deadline updates per
	// request in both servers.
	case "h1server":
		s := &Server{Handler: benchHandler, ErrorLog: quietLogger(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
		go s.Serve(ln)
		srv = s
	case "net-http":
		s := &http.Server{Handler: benchHandler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
		go s.Serve(ln)
		srv = s
	default:
		t.Fatalf("unknown kind %q", kind)
	}
	fmt.Printf("addr %s\n", ln.Addr())
	io.Copy(io.Discard, os.Stdin) // until the parent closes it
	srv.Close()
}

// TestServeAllocs checks the server's allocations per request on the
// benchmark's path: the head string, the request, and its context with
// its cancel function.
func TestServeAllocs(t *testing.T) {
	ts := startOurs(t, benchHandler, testConfig{})
	c := newBenchClient(t, ts.addr, "/")
	defer c.nc.Close()
	for range 10 {
		if err := c.do(); err != nil {
			t.Fatal(err)
		}
	}
	if n := testing.AllocsPerRun(200, func() {
		if err := c.do(); err != nil {
			t.Fatal(err)
		}
	}); n > 4 {
		t.Errorf("%v allocations per request, want at most 4", n)
	}
}

func TestBenchClient(t *testing.T) {
	ts := startOurs(t, benchHandler, testConfig{})
	c := newBenchClient(t, ts.addr, "/")
	defer c.nc.Close()
	for range 3 {
		if err := c.do(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c.last, body64) {
			t.Fatalf("body %q", c.last)
		}
	}
	c.nc.Close()
	if err := c.do(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("after close: %v", err)
	}
}
