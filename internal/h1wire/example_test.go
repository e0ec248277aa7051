package h1wire_test

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"

	"github.com/rauta/rauta/internal/h1wire"
)

// Example reads a response head and a chunked body with its trailer, the
// way pool does (internal/h1server reads requests with the same calls).
func Example() {
	raw := "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5;ext=\"x\"\r\nhello\r\n0\r\nGrpc-Status: 0\r\n\r\n"
	br := bufio.NewReader(strings.NewReader(raw))

	block, err := h1wire.ReadBlock(br, 1024, 4096, true, nil)
	if err != nil {
		panic(err)
	}
	status, fields := h1wire.StartLine(block)
	fmt.Println(status)
	for {
		name, value, rest, err := h1wire.NextField(fields)
		if err != nil {
			panic(err)
		}
		if name == "" {
			break
		}
		fmt.Printf("%s = %q\n", name, value)
		fields = rest
	}

	size, _, err := h1wire.ReadChunkSize(br)
	if err != nil {
		panic(err)
	}
	data := make([]byte, size)
	br.Read(data)
	if err := h1wire.ReadChunkEnd(br); err != nil {
		panic(err)
	}
	last, _, _ := h1wire.ReadChunkSize(br)
	var trailer http.Header
	if err := h1wire.ReadTrailer(br, 1024, &trailer); err != nil {
		panic(err)
	}
	fmt.Printf("%q, last chunk %d, trailer %v\n", data, last, trailer)
	// Output:
	// HTTP/1.1 200 OK
	// Content-Type = "text/plain"
	// Transfer-Encoding = "chunked"
	// "hello", last chunk 0, trailer map[Grpc-Status:[0]]
}
