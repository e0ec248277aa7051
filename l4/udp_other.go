//go:build !unix

package l4

import "net"

// datagramReader reads a session's datagrams into buffers of
// datagramPool.
type datagramReader struct{ c net.Conn }

func newDatagramReader(c net.Conn) *datagramReader { return &datagramReader{c: c} }

// read returns the next datagram in a buffer of datagramPool (to be put
// back by the caller) and its length; the connection's read deadline
// applies.
func (r *datagramReader) read() (*[]byte, int, error) {
	bp := datagramPool.Get().(*[]byte)
	n, err := r.c.Read(*bp)
	if err != nil {
		datagramPool.Put(bp)
		return nil, 0, err
	}
	return bp, n, nil
}
