package conntrack_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/rauta/rauta/internal/conntrack"
)

// A server adds each connection it serves and removes it when done; its
// Shutdown shuts the set (telling each connection to finish) and waits.
func Example() {
	var conns conntrack.Set[net.Conn]
	client, server := net.Pipe()
	defer client.Close()
	conns.Add(server)
	go func() {
		// Serve until told to stop, then leave.
		server.Read(make([]byte, 1))
		conns.Remove(server)
	}()

	conns.Shut(func(c net.Conn) { c.SetReadDeadline(time.Now()) })
	fmt.Println("admits new connections:", conns.Add(client))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fmt.Println("drained:", conns.Wait(ctx, nil))
	// Output:
	// admits new connections: false
	// drained: <nil>
}
