package proxy

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rauta/rauta/l4"
)

// udpEcho is a UDP server on loopback answering "name:payload".
func udpEcho(t *testing.T, name string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(fmt.Appendf(nil, "%s:%s", name, buf[:n]), from)
		}
	}()
	return pc.LocalAddr().String()
}

// udpAsk sends payload from a new client socket and returns the answer.
func udpAsk(t *testing.T, addr, payload string) (string, error) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(payload)); err != nil {
		return "", err
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	return string(buf[:n]), err
}

// freePort returns a port number free for TCP on loopback at the time.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestUDPListener: a UDP listener is bound with its own socket beside a
// TCP listener of the same port number, forwards datagrams to its
// route's backend both ways with the proxy's metrics, survives an Apply
// that keeps it, and its socket is closed by one that removes it.
func TestUDPListener(t *testing.T) {
	echo := udpEcho(t, "udp")
	tcpBE := newStreamBackend(t, func(c net.Conn) { io.WriteString(c, "tcp") })
	p := newTestProxy(t, Options{})
	port := freePort(t)
	cfg := Config{
		Listeners: []Listener{
			{Name: "gw/udp", Address: "127.0.0.1", Port: port, Protocol: UDP},
			{Name: "gw/tcp", Address: "127.0.0.1", Port: port, Protocol: TCP},
		},
		StreamRoutes: []l4.Route{streamRoute("u", "gw/udp", nil, "ub"), streamRoute("t", "gw/tcp", nil, "tb")},
		Backends:     []Backend{backendAt("ub", echo), backendAt("tb", tcpBE.addr())},
	}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if got := listenerAddr(t, p, "gw/udp"); got != addr {
		t.Fatalf("UDP listener bound %s, want %s", got, addr)
	}
	if got, err := udpAsk(t, addr, "ping"); err != nil || got != "udp:ping" {
		t.Fatalf("UDP: %q, %v", got, err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readToEnd(c); err != nil || got != "tcp" {
		t.Errorf("TCP on the same port: %q, %v", got, err)
	}
	c.Close()

	// The same Config again keeps the socket and serves on.
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if got, err := udpAsk(t, addr, "again"); err != nil || got != "udp:again" {
		t.Fatalf("UDP after an Apply: %q, %v", got, err)
	}
	for _, dir := range []string{"upstream", "downstream"} {
		if v, _ := metricValue(t, p, "rauta_udp_datagrams_total", map[string]string{"listener": "gw/udp", "route": "ns/u", "direction": dir}); v != 2 {
			t.Errorf("rauta_udp_datagrams_total %s: %v, want 2", dir, v)
		}
	}

	// Removing the UDP listener closes its socket.
	cfg.Listeners = cfg.Listeners[1:]
	cfg.StreamRoutes = cfg.StreamRoutes[1:]
	cfg.Backends = cfg.Backends[1:]
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the UDP socket to be closed", func() bool {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		pc.Close()
		return true
	})
}

// TestUDPListenerErrors: UDP listener fields that make no sense are
// refused, naming the listener and field.
func TestUDPListenerErrors(t *testing.T) {
	p := newTestProxy(t, Options{})
	for _, tc := range []struct {
		l    Listener
		want string
	}{
		{Listener{Name: "a", Protocol: UDP, Hostname: "a.example.com"}, `listener "a": hostname: a UDP listener`},
		{Listener{Name: "b", Protocol: UDP, Certificates: []Certificate{selfSigned(t, "b.example.com")}}, `listener "b": certificates: a UDP listener`},
		{Listener{Name: "c", Protocol: UDP, Unbound: true}, `listener "c": unbound`},
		{Listener{Name: "d", Protocol: UDP, Passthrough: true}, `listener "d": passthrough`},
	} {
		err := p.Apply(Config{Listeners: []Listener{tc.l}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.l, err, tc.want)
		}
	}
}
