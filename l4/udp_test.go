package l4

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rauta/rauta/upstream"
)

// udpBackend is a UDP server on loopback answering every datagram with
// "name:payload", counting them.
type udpBackend struct {
	pc       net.PacketConn
	received atomic.Int64
}

func newUDPBackend(t *testing.T, name string, answer bool) *udpBackend {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &udpBackend{pc: pc}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, maxDatagram)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			b.received.Add(1)
			if answer {
				pc.WriteTo(fmt.Appendf(nil, "%s:%s", name, buf[:n]), from)
			}
		}
	}()
	return b
}

func (b *udpBackend) addr() string { return b.pc.LocalAddr().String() }

// newUDPRig is a rig whose ports are UDP sockets served by ServePacket;
// served receives what each ServePacket returned.
func newUDPRig(t *testing.T, opts Options, ports ...string) (*rig, chan error) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := &rig{t: t, f: New(opts), set: upstream.NewSet(upstream.Options{Logger: opts.Logger}), addrs: map[string]string{}}
	served := make(chan error, len(ports))
	for _, p := range ports {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		r.addrs[p] = pc.LocalAddr().String()
		go func() { served <- r.f.ServePacket(pc, p) }()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.f.Shutdown(ctx)
		r.set.Close()
	})
	return r, served
}

func udpConfig(refs ...BackendRef) Config {
	return Config{Listeners: []Listener{{Name: "l", Port: "udp", Protocol: UDP}}, Routes: []Route{route("r", "l", nil, refs...)}}
}

// udpClient is a client socket: one session per socket.
func udpClient(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// exchange sends payload and returns the answer, or "" when none comes
// within wait.
func exchange(t *testing.T, c net.Conn, payload string, wait time.Duration) string {
	t.Helper()
	if _, err := c.Write([]byte(payload)); err != nil {
		t.Fatalf("write: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, maxDatagram)
	n, err := c.Read(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

// TestUDPSessionsAndWeights: each client address is a session that stays
// on the backend its first datagram picked, backends share sessions by
// weight (none for weight zero, refused for an unknown backend), and
// datagrams and bytes are counted each way.
func TestUDPSessionsAndWeights(t *testing.T) {
	a, b, z := newUDPBackend(t, "a", true), newUDPBackend(t, "b", true), newUDPBackend(t, "z", true)
	r, _ := newUDPRig(t, Options{}, "udp")
	r.apply(udpConfig(BackendRef{Backend: "a", Weight: 1}, BackendRef{Backend: "b", Weight: 3},
		BackendRef{Backend: "z", Weight: 0}, BackendRef{Backend: "missing", Weight: 1}),
		spec("a", a.addr()), spec("b", b.addr()), spec("z", z.addr()))

	count := map[string]int{}
	const n = 400
	var answered int
	for i := range n {
		c := udpClient(t, r.addrs["udp"])
		got := ""
		// A session refused (the unknown backend's share) answers
		// nothing; wait for the counter rather than a timeout.
		refused := value(r.f.m.udpSessions.WithLabelValues("l", "ns/r", resultNoBackend))
		if _, err := c.Write([]byte("p")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool {
			return value(r.f.m.udpSessions.WithLabelValues("l", "ns/r", resultNoBackend)) > refused ||
				value(r.f.m.udpSessions.WithLabelValues("l", "ns/r", resultOpened)) > float64(answered)
		}, "datagram %d to open or be refused a session", i)
		if value(r.f.m.udpSessions.WithLabelValues("l", "ns/r", resultOpened)) > float64(answered) {
			answered++
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 64)
			k, err := c.Read(buf)
			if err != nil {
				t.Fatalf("session %d: %v", i, err)
			}
			got = strings.TrimSuffix(string(buf[:k]), ":p")
			// The session's next datagrams go to the same backend.
			for j := range 3 {
				if again := exchange(t, c, fmt.Sprint(j), 10*time.Second); again != fmt.Sprintf("%s:%d", got, j) {
					t.Fatalf("session on %s answered %q", got, again)
				}
			}
		}
		count[got]++
		// c stays open: a closed client's port could be taken again by
		// the next, whose datagram would join the open session.
	}
	// Shares 1/5, 3/5, 0 and 1/5 (refused); generous bounds.
	if count["a"] < 40 || count["a"] > 120 || count["b"] < 190 || count["b"] > 290 || count["z"] != 0 || count[""] < 40 || count[""] > 120 {
		t.Errorf("sessions by backend: %v", count)
	}
	if z.received.Load() != 0 {
		t.Errorf("the weight-zero backend received %d datagrams", z.received.Load())
	}
	up := value(r.f.m.udpDatagrams.WithLabelValues("l", "ns/r", "upstream"))
	down := value(r.f.m.udpDatagrams.WithLabelValues("l", "ns/r", "downstream"))
	if int(up) != 4*answered || int(down) != 4*answered {
		t.Errorf("datagrams: upstream %v, downstream %v, want %d each", up, down, 4*answered)
	}
	if ub, db := value(r.f.m.udpBytes.WithLabelValues("l", "ns/r", "upstream")), value(r.f.m.udpBytes.WithLabelValues("l", "ns/r", "downstream")); int(ub) != 4*answered || int(db) != 4*answered*3 {
		t.Errorf("bytes: upstream %v, downstream %v", ub, db)
	}
	if d := value(r.f.m.udpDropped.WithLabelValues("l", "ns/r", resultNoBackend)); int(d) != count[""] {
		t.Errorf("dropped invalid_backend %v, refused sessions %d", d, count[""])
	}
}

// TestUDPLargeDatagram: a datagram of 60000 bytes crosses both ways
// whole.
func TestUDPLargeDatagram(t *testing.T) {
	be := newUDPBackend(t, "a", true)
	r, _ := newUDPRig(t, Options{}, "udp")
	r.apply(udpConfig(ref("b")), spec("b", be.addr()))
	c := udpClient(t, r.addrs["udp"])
	payload := strings.Repeat("x", 60000)
	if got := exchange(t, c, payload, 10*time.Second); got != "a:"+payload {
		t.Fatalf("answer of %d bytes, want %d", len(got), len(payload)+2)
	}
}

// TestUDPIdleExpiry: a session without datagrams either way ends after
// the idle timeout and gives its socket back; one whose client keeps
// sending (to a backend that never answers) stays; the expired client's
// next datagram opens a new session.
func TestUDPIdleExpiry(t *testing.T) {
	echo := newUDPBackend(t, "a", true)
	sink := newUDPBackend(t, "s", false)
	r, _ := newUDPRig(t, Options{UDPIdleTimeout: 300 * time.Millisecond}, "udp", "sink")
	r.apply(Config{
		Listeners: []Listener{{Name: "l", Port: "udp", Protocol: UDP}, {Name: "ls", Port: "sink", Protocol: UDP}},
		Routes:    []Route{route("r", "l", nil, ref("b")), route("rs", "ls", nil, ref("s"))},
	}, spec("b", echo.addr()), spec("s", sink.addr()))

	quiet := udpClient(t, r.addrs["udp"])
	if got := exchange(t, quiet, "1", 10*time.Second); got != "a:1" {
		t.Fatalf("answer %q", got)
	}
	busy := udpClient(t, r.addrs["sink"])
	for i := range 12 { // 1.2s of one datagram every 100ms, one way
		if _, err := busy.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			waitFor(t, func() bool { return r.f.Sessions() == 2 }, "two sessions")
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitFor(t, func() bool { return value(r.f.m.udpEnds.WithLabelValues("l", "ns/r", endIdle)) == 1 }, "the quiet session to expire")
	if n := value(r.f.m.udpEnds.WithLabelValues("ls", "ns/rs", endIdle)); n != 0 {
		t.Errorf("the session whose client kept sending expired")
	}
	if n := value(r.f.m.udpSessions.WithLabelValues("ls", "ns/rs", resultOpened)); n != 1 {
		t.Errorf("busy client: %v sessions opened, want 1", n)
	}
	if got := sink.received.Load(); got != 12 {
		t.Errorf("sink received %d datagrams, want 12", got)
	}
	if got := exchange(t, quiet, "2", 10*time.Second); got != "a:2" {
		t.Fatalf("after expiry: answer %q", got)
	}
	if n := value(r.f.m.udpSessions.WithLabelValues("l", "ns/r", resultOpened)); n != 2 {
		t.Errorf("quiet client: %v sessions opened, want 2", n)
	}
	waitFor(t, func() bool { return r.f.Sessions() == 0 }, "every session to expire")
}

// TestUDPSessionCap: past MaxUDPSessions, a datagram from a new client
// address is dropped and counted, the sessions open keep working, and a
// session that ends makes room.
func TestUDPSessionCap(t *testing.T) {
	echo := newUDPBackend(t, "a", true)
	r, _ := newUDPRig(t, Options{MaxUDPSessions: 3, UDPIdleTimeout: time.Hour}, "udp")
	r.apply(udpConfig(ref("b")), spec("b", echo.addr()))

	var open []net.Conn
	for i := range 3 {
		c := udpClient(t, r.addrs["udp"])
		if got := exchange(t, c, "x", 10*time.Second); got != "a:x" {
			t.Fatalf("session %d: %q", i, got)
		}
		open = append(open, c)
	}
	// A flood of new source addresses: each is refused.
	for i := range 20 {
		c := udpClient(t, r.addrs["udp"])
		if _, err := c.Write([]byte("flood")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool {
			return value(r.f.m.udpSessions.WithLabelValues("l", "ns/r", resultSessionLimit)) == float64(i+1)
		}, "flood datagram %d to be refused", i)
	}
	if d := value(r.f.m.udpDropped.WithLabelValues("l", "ns/r", resultSessionLimit)); d != 20 {
		t.Errorf("dropped session_limit %v, want 20", d)
	}
	if got := echo.received.Load(); got != 3 {
		t.Errorf("backend received %d datagrams, want 3 (none of the flood)", got)
	}
	if got := exchange(t, open[1], "y", 10*time.Second); got != "a:y" {
		t.Errorf("an open session during the flood: %q", got)
	}
	if r.f.Sessions() != 3 {
		t.Errorf("sessions %d, want 3", r.f.Sessions())
	}
	// Removing the route ends the sessions; a new client is served
	// again once it is back.
	r.apply(Config{Listeners: []Listener{{Name: "l", Port: "udp", Protocol: UDP}}}, spec("b", echo.addr()))
	if n := value(r.f.m.udpEnds.WithLabelValues("l", "ns/r", endRouteRemoved)); n != 3 || r.f.Sessions() != 0 {
		t.Errorf("route removed: %v sessions ended, %d open", n, r.f.Sessions())
	}
	r.apply(udpConfig(ref("b")), spec("b", echo.addr()))
	if got := exchange(t, udpClient(t, r.addrs["udp"]), "z", 10*time.Second); got != "a:z" {
		t.Errorf("a new client after sessions ended: %q", got)
	}
}

// TestUDPBackendGone: an endpoint whose port is closed refuses the
// session's datagram (ICMP port unreachable): the session ends, counted,
// and the client's next datagram opens a session on another endpoint. An
// endpoint removed from its backend ends its sessions at their next
// datagram, which goes to an endpoint that is still there.
func TestUDPBackendGone(t *testing.T) {
	live := newUDPBackend(t, "live", true)
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.LocalAddr().String()
	dead.Close()
	r, _ := newUDPRig(t, Options{}, "udp")
	r.apply(udpConfig(ref("b")), spec("b", deadAddr, live.addr()))

	// Round robin takes each endpoint in turn: among two clients, one
	// session goes to the dead endpoint first.
	for i := range 2 {
		c := udpClient(t, r.addrs["udp"])
		var got string
		for attempt := 0; got == "" && attempt < 10; attempt++ {
			got = exchange(t, c, "x", time.Second)
		}
		if got != "live:x" {
			t.Fatalf("client %d: %q after 10 datagrams", i, got)
		}
	}
	waitFor(t, func() bool { return value(r.f.m.udpEnds.WithLabelValues("l", "ns/r", endRefused)) >= 1 }, "a refused session to be counted")

	// Endpoint removal: a session on "one" moves to "two" when "one"
	// leaves the backend.
	one, two := newUDPBackend(t, "one", true), newUDPBackend(t, "two", true)
	r.apply(udpConfig(ref("m")), spec("m", one.addr()))
	c := udpClient(t, r.addrs["udp"])
	if got := exchange(t, c, "1", 10*time.Second); got != "one:1" {
		t.Fatalf("answer %q", got)
	}
	if err := r.set.UpdateEndpoints("m", []upstream.Endpoint{{Address: two.addr()}}); err != nil {
		t.Fatal(err)
	}
	r.set.Settle()
	if got := exchange(t, c, "2", 10*time.Second); got != "two:2" {
		t.Fatalf("after the endpoint left: %q", got)
	}
	if n := value(r.f.m.udpEnds.WithLabelValues("l", "ns/r", endEndpointGone)); n != 1 {
		t.Errorf("endpoint_gone ends: %v", n)
	}
}

// TestUDPMaglev: a backend balancing by Maglev over the client address
// sends every session of one client IP to the same endpoint.
func TestUDPMaglev(t *testing.T) {
	var addrs []string
	for i := range 4 {
		addrs = append(addrs, newUDPBackend(t, fmt.Sprint(i), true).addr())
	}
	r, _ := newUDPRig(t, Options{}, "udp")
	s := spec("b", addrs...)
	s.LoadBalancer.Policy = upstream.Maglev
	r.apply(udpConfig(ref("b")), s)
	seen := map[string]bool{}
	for range 20 {
		got := exchange(t, udpClient(t, r.addrs["udp"]), "x", 10*time.Second)
		if got == "" {
			t.Fatal("no answer")
		}
		seen[got] = true
	}
	if len(seen) != 1 {
		t.Errorf("sessions of one client IP reached %d endpoints: %v", len(seen), seen)
	}
}

// TestUDPShutdown: Shutdown closes the sockets given to ServePacket,
// which return ErrClosed, and ends their sessions.
func TestUDPShutdown(t *testing.T) {
	echo := newUDPBackend(t, "a", true)
	r, served := newUDPRig(t, Options{}, "udp")
	r.apply(udpConfig(ref("b")), spec("b", echo.addr()))
	for range 3 {
		if got := exchange(t, udpClient(t, r.addrs["udp"]), "x", 10*time.Second); got != "a:x" {
			t.Fatalf("answer %q", got)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.f.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, ErrClosed) {
		t.Errorf("ServePacket returned %v, want ErrClosed", err)
	}
	if r.f.Sessions() != 0 || value(r.f.m.udpEnds.WithLabelValues("l", "ns/r", endShutdown)) != 3 {
		t.Errorf("after Shutdown: %d sessions open, %v ended by shutdown", r.f.Sessions(), value(r.f.m.udpEnds.WithLabelValues("l", "ns/r", endShutdown)))
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if err := r.f.ServePacket(pc, "udp"); !errors.Is(err, ErrClosed) {
		t.Errorf("ServePacket after Shutdown: %v", err)
	}
}

// TestUDPApplyErrors: UDP listeners share a port with nothing else and
// see no hostname.
func TestUDPApplyErrors(t *testing.T) {
	f := New(Options{Logger: slog.New(slog.DiscardHandler)})
	err := f.Apply(Config{
		Listeners: []Listener{
			{Name: "udp", Port: "a", Protocol: UDP},
			{Name: "udp2", Port: "a", Protocol: UDP},
			{Name: "tcp", Port: "a", Protocol: TCP},
			{Name: "host", Port: "b", Protocol: UDP, Hostname: "a.example.com"},
		},
		Routes: []Route{route("udphost", "udp", []string{"a.example.com"})},
	}, nil)
	msg := fmt.Sprint(err)
	for _, want := range []string{
		`listener "udp2": port "a" has a UDP listener already`,
		`listener "tcp": protocol TCP conflicts with UDP`,
		`listener "host": hostname: UDP listeners have none`,
		`route ns/udphost: hostnames: a UDP listener`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if pt := f.snap.Load().ports["a"]; pt == nil || !pt.udp {
		t.Error("the valid UDP listener is not served")
	}
}

// BenchmarkUDPRoundTrip sends a 512-byte datagram through one session to
// an echo backend and reads the answer: the forwarder's work per datagram
// each way, plus two loopback round trips.
func BenchmarkUDPRoundTrip(b *testing.B) {
	echo, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer echo.Close()
	go func() {
		buf := make([]byte, maxDatagram)
		for {
			n, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			echo.WriteTo(buf[:n], from)
		}
	}()
	logger := slog.New(slog.DiscardHandler)
	f := New(Options{Logger: logger})
	defer f.Shutdown(context.Background())
	set := upstream.NewSet(upstream.Options{Logger: logger})
	defer set.Close()
	bs, _ := set.Sync([]upstream.Spec{spec("b", echo.LocalAddr().String())}, nil)
	set.Settle()
	if err := f.Apply(udpConfig(ref("b")), bs); err != nil {
		b.Fatal(err)
	}
	front, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go f.ServePacket(front, "udp")
	c, err := net.Dial("udp", front.LocalAddr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	payload := make([]byte, 512)
	buf := make([]byte, maxDatagram)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Write(payload); err != nil {
			b.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}
