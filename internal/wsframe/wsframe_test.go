package wsframe

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// TestAccept checks the example of RFC 6455 section 1.3.
func TestAccept(t *testing.T) {
	if got, want := Accept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="; got != want {
		t.Errorf("Accept = %q; want %q", got, want)
	}
}

// TestRoundTrip writes frames of each length encoding, masked and not,
// and reads them back.
func TestRoundTrip(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		for _, mask := range []bool{false, true} {
			payload := bytes.Repeat([]byte{'x'}, n)
			var buf bytes.Buffer
			if err := Write(&buf, OpText, payload, mask); err != nil {
				t.Fatal(err)
			}
			if mask && n > 0 && bytes.Contains(buf.Bytes(), payload) {
				t.Errorf("%d bytes masked: the payload went out in clear", n)
			}
			f, err := Read(bufio.NewReader(&buf), 1<<20)
			if err != nil {
				t.Fatalf("%d bytes, mask %v: %v", n, mask, err)
			}
			if f.Op != OpText || f.Masked != mask || !bytes.Equal(f.Payload, payload) {
				t.Errorf("%d bytes, mask %v: read op %x masked %v, %d bytes", n, mask, f.Op, f.Masked, len(f.Payload))
			}
		}
	}
}

// TestReadRefuses checks that fragmented and oversized frames are errors.
func TestReadRefuses(t *testing.T) {
	if _, err := Read(bufio.NewReader(strings.NewReader("\x01\x00")), 10); err == nil {
		t.Error("a fragmented frame was read")
	}
	var buf bytes.Buffer
	Write(&buf, OpText, make([]byte, 11), false)
	if _, err := Read(bufio.NewReader(&buf), 10); err == nil {
		t.Error("an 11-byte frame was read with a limit of 10")
	}
}

func Example() {
	var wire bytes.Buffer
	Write(&wire, OpText, []byte("hello"), true) // a client masks its frames
	f, err := Read(bufio.NewReader(&wire), 1<<10)
	fmt.Println(string(f.Payload), f.Masked, err)
	fmt.Println(Accept("dGhlIHNhbXBsZSBub25jZQ=="))
	// Output:
	// hello true <nil>
	// s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
}
