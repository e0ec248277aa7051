//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package pool

import (
	"net"
	"syscall"
)

// alive peeks, without blocking, at an idle connection's socket to see
// whether the backend closed it. Over cleartext any pending byte means the
// connection is unusable (an idle HTTP/1.1 connection receives nothing);
// over TLS pending bytes may be a session ticket, so only a close counts.
func alive(raw net.Conn, overTLS bool) bool {
	sc, ok := raw.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	var (
		buf  [1]byte
		n    int
		rerr error
	)
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true
	})
	switch {
	case err != nil:
		return false
	case rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK || rerr == syscall.EINTR:
		return true
	case rerr != nil:
		return false
	case n == 0:
		return false // orderly close
	default:
		return overTLS
	}
}
