// Package h2load is a small HTTP/2 load client for benchmarks: one
// connection keeps a fixed number of GET streams in flight, as h2load -m
// does, and allocates next to nothing per request, so that a benchmark's
// allocs/op and CPU profile are the server's.
//
// A Conn sends the same request again and again: its header block is
// encoded twice with HPACK (the second time every field is an index into
// the dynamic table the first one filled) and the second block is reused
// for every later stream, as a browser or h2load would send it. Responses
// are read frame by frame; their header blocks are decoded to check the
// status, their DATA counted and given back to the server's windows.
package h2load

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// window is the receive window a Conn grants for the connection and for
// each stream, the largest HTTP/2 allows.
const window = 1<<31 - 1

// Request describes the request a Conn sends.
type Request struct {
	Scheme    string // "https" or "http"
	Authority string
	Path      string
	// Header holds extra fields, lower-case names first, values after:
	// {"user-agent", "bench"}.
	Header [][2]string
}

// Conn is one HTTP/2 client connection under load.
type Conn struct {
	nc     net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	fr     *http2.Framer
	dec    *hpack.Decoder
	first  []byte // the first request's header block
	again  []byte // every later one's
	sent   bool
	nextID uint32
	status string
	// consumed counts DATA bytes not yet given back to the connection.
	consumed int64
	// Bytes is the number of response body bytes read so far.
	Bytes int64
}

// NewConn starts HTTP/2 on nc (already TLS with ALPN h2, or cleartext for
// h2c with prior knowledge): it writes the preface, its SETTINGS and a
// window update; the server's SETTINGS are read by Run.
func NewConn(nc net.Conn, req Request) (*Conn, error) {
	c := &Conn{nc: nc, br: bufio.NewReaderSize(nc, 64<<10), bw: bufio.NewWriterSize(nc, 16<<10), nextID: 1}
	c.fr = http2.NewFramer(c.bw, c.br)
	c.fr.SetReuseFrames()
	c.fr.SetMaxReadFrameSize(1 << 24)
	c.dec = hpack.NewDecoder(4096, func(f hpack.HeaderField) {
		if f.Name == ":status" {
			c.status = f.Value
		}
	})
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	encode := func() []byte {
		hbuf.Reset()
		enc.WriteField(hpack.HeaderField{Name: ":method", Value: "GET"})
		enc.WriteField(hpack.HeaderField{Name: ":scheme", Value: req.Scheme})
		enc.WriteField(hpack.HeaderField{Name: ":authority", Value: req.Authority})
		enc.WriteField(hpack.HeaderField{Name: ":path", Value: req.Path})
		for _, f := range req.Header {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		return bytes.Clone(hbuf.Bytes())
	}
	c.first = encode()
	c.again = encode()
	if _, err := c.bw.WriteString(http2.ClientPreface); err != nil {
		return nil, err
	}
	c.fr.WriteSettings(
		http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: window},
	)
	c.fr.WriteWindowUpdate(0, window-65535)
	if err := c.bw.Flush(); err != nil {
		return nil, err
	}
	return c, nil
}

// send writes the HEADERS of a new stream into the buffer.
func (c *Conn) send() error {
	blk := c.again
	if !c.sent {
		blk, c.sent = c.first, true
	}
	id := c.nextID
	c.nextID += 2
	return c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: blk, EndStream: true, EndHeaders: true})
}

// Run sends n requests with inflight streams open at a time (fewer at the
// end) and reads their responses; it fails on a status other than 200, a
// reset stream, a GOAWAY or a connection error. Frames read together are
// answered together: the new streams of one read go out in one write.
func (c *Conn) Run(n, inflight int) error {
	open := 0
	started := 0
	for started < n && open < inflight {
		if err := c.send(); err != nil {
			return err
		}
		started++
		open++
	}
	if err := c.bw.Flush(); err != nil {
		return err
	}
	for open > 0 {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return err
		}
		done := false
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				c.fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			if err := c.headers(f.HeaderBlockFragment(), f.HeadersEnded()); err != nil {
				return err
			}
			done = f.StreamEnded()
		case *http2.ContinuationFrame:
			if err := c.headers(f.HeaderBlockFragment(), f.HeadersEnded()); err != nil {
				return err
			}
		case *http2.DataFrame:
			c.Bytes += int64(len(f.Data()))
			c.consumed += int64(f.Length)
			if c.consumed > window/2 {
				c.fr.WriteWindowUpdate(0, uint32(c.consumed))
				c.consumed = 0
			}
			done = f.StreamEnded()
		case *http2.PingFrame:
			if !f.IsAck() {
				c.fr.WritePing(true, f.Data)
			}
		case *http2.RSTStreamFrame:
			return fmt.Errorf("h2load: stream %d reset: %v", f.StreamID, f.ErrCode)
		case *http2.GoAwayFrame:
			return fmt.Errorf("h2load: GOAWAY %v", f.ErrCode)
		}
		if done {
			open--
			if started < n {
				if err := c.send(); err != nil {
					return err
				}
				started++
				open++
			}
		}
		if c.br.Buffered() == 0 && c.bw.Buffered() > 0 {
			if err := c.bw.Flush(); err != nil {
				return err
			}
		}
	}
	return c.bw.Flush()
}

// headers decodes a fragment of a response header block and checks the
// status once the block ends.
func (c *Conn) headers(frag []byte, end bool) error {
	if _, err := c.dec.Write(frag); err != nil {
		return err
	}
	if !end {
		return nil
	}
	if err := c.dec.Close(); err != nil {
		return err
	}
	st := c.status
	c.status = ""
	if st != "200" {
		return errors.New("h2load: status " + st)
	}
	return nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.nc.Close() }

// RunAll sends n requests spread evenly over conns, each connection on
// its own goroutine with inflight streams open at a time, and returns the
// first error any of them met.
func RunAll(conns []*Conn, n, inflight int) error {
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		share := n / len(conns)
		if i < n%len(conns) {
			share++
		}
		wg.Go(func() { errs[i] = c.Run(share, inflight) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
