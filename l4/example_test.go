package l4_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"

	"github.com/rauta/rauta/l4"
	"github.com/rauta/rauta/upstream"
)

// Example forwards a TCP port to a backend on loopback.
func Example() {
	// A backend that greets and closes.
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	go func() {
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "hello from the backend")
			c.Close()
		}
	}()

	// The backend's state, shared with any other forwarder or proxy.
	set := upstream.NewSet(upstream.Options{})
	defer set.Close()
	backends, _ := set.Sync([]upstream.Spec{{Name: "greeter", Endpoints: []upstream.Endpoint{{Address: backend.Addr().String()}}}}, nil)
	set.Settle()

	f := l4.New(l4.Options{})
	defer f.Shutdown(context.Background())
	err = f.Apply(l4.Config{
		Listeners: []l4.Listener{{Name: "tcp", Port: "front", Protocol: l4.TCP}},
		Routes: []l4.Route{{Namespace: "default", Name: "greet", Listeners: []string{"tcp"},
			Backends: []l4.BackendRef{{Backend: "greeter", Weight: 1}}}},
	}, backends)
	if err != nil {
		log.Fatal(err)
	}
	front, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go f.Serve(front, "front")

	c, err := net.Dial("tcp", front.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	b, _ := io.ReadAll(c)
	fmt.Println(string(b))
	// Output: hello from the backend
}

// ExampleForwarder_ServePacket forwards a UDP port to an echo backend on
// loopback: the client's datagrams are a session with its own socket to
// the backend.
func ExampleForwarder_ServePacket() {
	backend, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := backend.ReadFrom(buf)
			if err != nil {
				return
			}
			backend.WriteTo(append([]byte("echo: "), buf[:n]...), from)
		}
	}()

	set := upstream.NewSet(upstream.Options{})
	defer set.Close()
	backends, _ := set.Sync([]upstream.Spec{{Name: "echo", Endpoints: []upstream.Endpoint{{Address: backend.LocalAddr().String()}}}}, nil)
	set.Settle()

	f := l4.New(l4.Options{})
	defer f.Shutdown(context.Background())
	err = f.Apply(l4.Config{
		Listeners: []l4.Listener{{Name: "udp", Port: "front", Protocol: l4.UDP}},
		Routes: []l4.Route{{Namespace: "default", Name: "echo", Listeners: []string{"udp"},
			Backends: []l4.BackendRef{{Backend: "echo", Weight: 1}}}},
	}, backends)
	if err != nil {
		log.Fatal(err)
	}
	front, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go f.ServePacket(front, "front")

	c, err := net.Dial("udp", front.LocalAddr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping"))
	buf := make([]byte, 1500)
	n, _ := c.Read(buf)
	fmt.Println(string(buf[:n]))
	// Output: echo: ping
}
