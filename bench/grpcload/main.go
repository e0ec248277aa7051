// Command grpcload measures gRPC through rauta against the backend
// directly, on one machine: unary calls and bidirectional streams made
// by grpc-go clients to a grpc-go server, first straight to the server,
// then through an in-process rauta proxy serving a GRPC route to it over
// h2c. It prints calls (or messages) per second and latency quantiles for
// each, and the ratios.
//
//	go run . -duration 10s -concurrency 32
//
// It lives in a module of its own so that the gRPC module never enters
// rauta's go.mod.
//
// bench/compare (its grpc-unary and grpc-streaming cases) uses two more
// modes, so that the server, the proxy and the client are separate
// processes it can pin to CPUs and account for:
//
//	grpcload -serve 127.0.0.1:20001
//	grpcload -target 127.0.0.1:20002 -mode unary -duration 10s -concurrency 32
//
// -serve runs only the echo server (bench.Echo) until SIGTERM; -target
// measures one mode against one address, counting every call completed
// in -duration, and prints one line of key=value fields:
//
//	mode=unary target=127.0.0.1:20002 calls=N ops_s=X p50_ms=X p99_ms=X errors=N
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"

	"github.com/rauta/rauta/proxy"
	"github.com/rauta/rauta/router"
	"github.com/rauta/rauta/upstream"
)

// rawCodec passes messages as bytes: no protobuf, no generated code.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append((*(v.(*[]byte)))[:0], data...)
	return nil
}
func (rawCodec) Name() string { return "raw" }

// service is bench.Echo: Unary echoes its message, Stream echoes each
// message of a bidirectional stream.
var service = grpc.ServiceDesc{
	ServiceName: "bench.Echo",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Unary",
		Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var b []byte
			if err := dec(&b); err != nil {
				return nil, err
			}
			return &b, nil
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Stream",
		ServerStreams: true,
		ClientStreams: true,
		Handler: func(_ any, s grpc.ServerStream) error {
			var b []byte
			for {
				if err := s.RecvMsg(&b); err == io.EOF {
					return nil
				} else if err != nil {
					return err
				}
				if err := s.SendMsg(&b); err != nil {
					return err
				}
			}
		},
	}},
}

func main() {
	duration := flag.Duration("duration", 10*time.Second, "length of each measurement")
	conc := flag.Int("concurrency", 32, "concurrent calls (unary) or streams (streaming)")
	conns := flag.Int("connections", 4, "client connections, shared by the calls")
	size := flag.Int("size", 128, "message size in bytes")
	serve := flag.String("serve", "", "only run the echo server on this `address` until SIGTERM")
	target := flag.String("target", "", "only measure -mode against this `address` and print one line")
	mode := flag.String("mode", "unary", "with -target: unary or streaming")
	flag.Parse()
	var err error
	switch {
	case *serve != "" && *target != "":
		err = fmt.Errorf("serve, target: give one of them")
	case *serve != "":
		err = serveOnly(*serve)
	case *target != "":
		err = measureTarget(*target, *mode, *duration, *conc, *conns, *size)
	default:
		err = run(*duration, *conc, *conns, *size)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "grpcload:", err)
		os.Exit(1)
	}
}

// newServer returns the echo server, bench.Echo registered.
func newServer() *grpc.Server {
	srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}))
	srv.RegisterService(&service, nil)
	return srv
}

// serveOnly serves bench.Echo on addr until SIGTERM or SIGINT.
func serveOnly(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	srv := newServer()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Stop()
	}()
	fmt.Fprintf(os.Stderr, "grpcload: serving bench.Echo on %s\n", ln.Addr())
	return srv.Serve(ln)
}

// measureTarget measures one mode against addr, every call of the run
// counted, and prints the result as one line of key=value fields.
func measureTarget(addr, mode string, duration time.Duration, conc, conns, size int) error {
	if mode != "unary" && mode != "streaming" {
		return fmt.Errorf("mode: want unary or streaming, got %q", mode)
	}
	encoding.RegisterCodec(rawCodec{})
	r, err := measure(mode, addr, duration, 0, conc, conns, size)
	if err != nil {
		return fmt.Errorf("%s %s: %w", mode, addr, err)
	}
	fmt.Printf("mode=%s target=%s calls=%d ops_s=%.1f p50_ms=%.3f p99_ms=%.3f errors=%d\n", mode, addr, r.calls,
		r.ops, float64(r.p50)/float64(time.Millisecond), float64(r.p99)/float64(time.Millisecond), r.errors)
	return nil
}

func run(duration time.Duration, conc, conns, size int) error {
	encoding.RegisterCodec(rawCodec{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := newServer()
	go srv.Serve(ln)
	defer srv.Stop()

	p := proxy.New(proxy.Options{Logger: slog.New(slog.DiscardHandler)})
	defer p.Shutdown(context.Background())
	err = p.Apply(proxy.Config{
		Listeners: []proxy.Listener{{Name: "bench/grpc", Address: "127.0.0.1", Protocol: proxy.HTTP}},
		Routes: []proxy.Route{{Namespace: "bench", Name: "echo", GRPC: true, Listeners: []string{"bench/grpc"},
			Rules: []proxy.Rule{{
				Matches:  []router.Match{{Path: router.PathMatch{Type: router.PathPrefix, Value: "/bench.Echo"}}},
				Backends: []proxy.BackendRef{{Backend: "echo", Weight: 1}},
			}}}},
		Backends: []proxy.Backend{{Spec: upstream.Spec{Name: "echo", Endpoints: []upstream.Endpoint{{Address: ln.Addr().String()}}}, Protocol: proxy.BackendH2C}},
	})
	if err != nil {
		return err
	}
	gw, _ := p.Addr("bench/grpc")

	fmt.Printf("grpcload: %d concurrent, %d connections, %d-byte messages, %v per measurement\n\n", conc, conns, size, duration)
	fmt.Printf("%-10s %-7s %12s %10s %10s %10s\n", "mode", "target", "ops/s", "p50", "p99", "errors")
	type row struct{ ops, p50, p99 float64 }
	results := map[string]row{}
	for _, mode := range []string{"unary", "streaming"} {
		for _, target := range []struct{ name, addr string }{{"direct", ln.Addr().String()}, {"rauta", gw.String()}} {
			r, err := measure(mode, target.addr, duration, duration/10, conc, conns, size)
			if err != nil {
				reportLimits(p)
				return fmt.Errorf("%s %s: %w", mode, target.name, err)
			}
			results[mode+"/"+target.name] = row{r.ops, r.p50.Seconds(), r.p99.Seconds()}
			fmt.Printf("%-10s %-7s %12.0f %10v %10v %10d\n", mode, target.name, r.ops, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.errors)
		}
	}
	fmt.Println()
	reportLimits(p)
	for _, mode := range []string{"unary", "streaming"} {
		d, g := results[mode+"/direct"], results[mode+"/rauta"]
		fmt.Printf("%-10s rauta/direct: throughput %.2fx, p50 %.2fx, p99 %.2fx\n", mode, g.ops/d.ops, g.p50/d.p50, g.p99/d.p99)
	}
	return nil
}

type result struct {
	calls    int
	ops      float64
	p50, p99 time.Duration
	errors   int64
}

// measure runs conc workers for duration against addr, unary calls or
// messages on one bidirectional stream per worker, each waiting for its
// answer before the next. Calls started in the first skip of the run are
// not counted.
func measure(mode, addr string, duration, skip time.Duration, conc, conns, size int) (result, error) {
	var ccs []*grpc.ClientConn
	for range conns {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.CallContentSubtype("raw")))
		if err != nil {
			return result{}, err
		}
		defer cc.Close()
		ccs = append(ccs, cc)
	}
	msg := make([]byte, size)
	// A deadline would travel as grpc-timeout and end the last calls with
	// DEADLINE_EXCEEDED; the calls are cancelled instead.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(duration, cancel)
	var (
		mu     sync.Mutex
		lat    []time.Duration
		errs   atomic.Int64
		first  atomic.Pointer[error]
		wg     sync.WaitGroup
		warmed = time.Now().Add(skip)
	)
	for w := range conc {
		cc := ccs[w%len(ccs)]
		wg.Go(func() {
			var mine []time.Duration
			defer func() {
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
			note := func(start time.Time) {
				if !start.Before(warmed) {
					mine = append(mine, time.Since(start))
				}
			}
			if mode == "unary" {
				for ctx.Err() == nil {
					in, out := msg, []byte(nil)
					start := time.Now()
					if err := cc.Invoke(ctx, "/bench.Echo/Unary", &in, &out); err != nil {
						if ctx.Err() == nil {
							errs.Add(1)
							first.CompareAndSwap(nil, &err)
						}
						continue
					}
					note(start)
				}
				return
			}
			st, err := cc.NewStream(ctx, &service.Streams[0], "/bench.Echo/Stream")
			if err != nil {
				errs.Add(1)
				first.CompareAndSwap(nil, &err)
				return
			}
			for ctx.Err() == nil {
				in, out := msg, []byte(nil)
				start := time.Now()
				if err := st.SendMsg(&in); err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
						first.CompareAndSwap(nil, &err)
					}
					break
				}
				if err := st.RecvMsg(&out); err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
						first.CompareAndSwap(nil, &err)
					}
					break
				}
				note(start)
			}
		})
	}
	wg.Wait()
	if e := first.Load(); e != nil {
		fmt.Fprintf(os.Stderr, "grpcload: %s %s: first error: %v\n", mode, addr, *e)
	}
	if len(lat) == 0 {
		return result{}, fmt.Errorf("no call completed (%d errors)", errs.Load())
	}
	slices.Sort(lat)
	measured := duration - skip
	return result{
		calls:  len(lat),
		ops:    float64(len(lat)) / measured.Seconds(),
		p50:    lat[len(lat)/2],
		p99:    lat[len(lat)*99/100],
		errors: errs.Load(),
	}, nil
}

// reportLimits prints the HTTP/2 limits rauta's server enforced
// (rauta_http2_limits_total), which end client connections.
func reportLimits(p *proxy.Proxy) {
	mfs, err := p.Registry().Gather()
	if err != nil {
		return
	}
	for _, mf := range mfs {
		if mf.GetName() != "rauta_http2_limits_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				fmt.Printf("rauta_http2_limits_total{%s=%q} %v\n", l.GetName(), l.GetValue(), m.GetCounter().GetValue())
			}
		}
	}
}
