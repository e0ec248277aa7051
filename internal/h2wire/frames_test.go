package h2wire

import (
	"bytes"
	"testing"

	"golang.org/x/net/http2"
)

// TestWriteBlock: a block larger than the frame size is split into
// HEADERS and CONTINUATION frames within it, END_HEADERS on the last and
// END_STREAM on the HEADERS.
func TestWriteBlock(t *testing.T) {
	for _, size := range []int{0, 10, 16, 17, 50} {
		var buf bytes.Buffer
		blk := bytes.Repeat([]byte{'b'}, size)
		WriteBlock(http2.NewFramer(&buf, nil), 3, blk, 16, true)
		fr := http2.NewFramer(nil, &buf)
		var got []byte
		frames := 0
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				break
			}
			frames++
			if f.Header().Length > 16 {
				t.Errorf("size %d: frame of %d bytes", size, f.Header().Length)
			}
			switch f := f.(type) {
			case *http2.HeadersFrame:
				if frames != 1 || !f.StreamEnded() || f.StreamID != 3 {
					t.Errorf("size %d: HEADERS as frame %d, END_STREAM %v", size, frames, f.StreamEnded())
				}
				got = append(got, f.HeaderBlockFragment()...)
				if f.HeadersEnded() != (size <= 16) {
					t.Errorf("size %d: END_HEADERS %v on HEADERS", size, f.HeadersEnded())
				}
			case *http2.ContinuationFrame:
				got = append(got, f.HeaderBlockFragment()...)
			}
		}
		if want := max(1, (size+15)/16); frames != want || !bytes.Equal(got, blk) {
			t.Errorf("size %d: %d frames carrying %d bytes, want %d frames", size, frames, len(got), want)
		}
	}
}
