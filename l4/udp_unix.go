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
}

func newDatagramReader(c net.Conn) *datagramReader {
	r := &datagramReader{c: c}
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			r.rc = rc
		}
	}
	return r
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
	var bp *[]byte
	var n int
	var rerr error
	err := r.rc.Read(func(fd uintptr) bool {
		bp = datagramPool.Get().(*[]byte)
		for {
			n, rerr = syscall.Read(int(fd), *bp)
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK {
			datagramPool.Put(bp)
			bp = nil
			return false // wait until the socket is readable
		}
		return true
	})
	if err == nil && rerr != nil {
		err = &net.OpError{Op: "read", Net: "udp", Source: r.c.LocalAddr(), Addr: r.c.RemoteAddr(), Err: rerr}
	}
	if err != nil {
		if bp != nil {
			datagramPool.Put(bp)
		}
		return nil, 0, err
	}
	return bp, n, nil
}
