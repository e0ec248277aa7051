package h2wire_test

import (
	"fmt"

	"github.com/rauta/rauta/internal/h2wire"
)

func Example() {
	var names h2wire.Names
	for _, k := range []string{"Content-Type", "Connection", "X-Trace"} {
		if h2wire.ConnectionSpecific(k) {
			fmt.Println(k, "is not sent over HTTP/2")
			continue
		}
		wire := h2wire.Lower(k)
		fmt.Println(k, "->", wire, "->", names.Canonical(wire), h2wire.ValidFieldName(wire))
	}
	// Output:
	// Content-Type -> content-type -> Content-Type true
	// Connection is not sent over HTTP/2
	// X-Trace -> x-trace -> X-Trace true
}
