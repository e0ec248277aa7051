//go:build unix

package l4

import (
	"net"
	"syscall"
)

// datagramReader reads a session's datagrams into buffers of
// datagramPool taken only once a datagram is there: a session waiting
// for its endpoint holds no buffer, so idle sessions cost a socket and a
// goroutine, not 64 KiB each.
type datagramReader struct {
	c  net.Conn
	rc syscall.RawConn // nil: c is not a socket of the runtime's poller

	// The state of one read, kept here so that the callback handed to
	// rc.Read is bound once and reads allocate nothing.
	recvFn func(fd uintptr) bool
	bp     *[]byte
	n      int
	err    error
}

func newDatagramReader(c net.Conn) *datagramReader {
	r := &datagramReader{c: c}
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			r.rc = rc
		}
	}
	r.recvFn = r.recv
	return r
}

// recv reads one datagram from the nonblocking socket fd, or reports
// false (without holding a buffer) when none is there yet, so that
// rc.Read waits for the socket to be readable.
func (r *datagramReader) recv(fd uintptr) bool {
	r.bp = datagramPool.Get().(*[]byte)
	for {
		r.n, r.err = syscall.Read(int(fd), *r.bp)
		if r.err != syscall.EINTR {
			break
		}
	}
	if r.err == syscall.EAGAIN || r.err == syscall.EWOULDBLOCK {
		datagramPool.Put(r.bp)
		r.bp = nil
		return false
	}
	return true
}

// read returns the next datagram in a buffer of datagramPool (to be put
// back by the caller) and its length; the connection's read deadline
// applies.
func (r *datagramReader) read() (*[]byte, int, error) {
	if r.rc == nil {
		bp := datagramPool.Get().(*[]byte)
		n, err := r.c.Read(*bp)
		if err != nil {
			datagramPool.Put(bp)
			return nil, 0, err
		}
		return bp, n, nil
	}
	r.bp, r.n, r.err = nil, 0, nil
	err := r.rc.Read(r.recvFn)
	if err == nil && r.err != nil {
		err = &net.OpError{Op: "read", Net: "udp", Source: r.c.LocalAddr(), Addr: r.c.RemoteAddr(), Err: r.err}
	}
	bp := r.bp
	r.bp = nil
	if err != nil {
		if bp != nil {
			datagramPool.Put(bp)
		}
		return nil, 0, err
	}
	return bp, r.n, nil
}
