//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package edge

import (
	"net"
	"syscall"
)

// idleProbe peeks at a pooled connection without blocking. Everything it
// needs is built once per connection so a probe does not allocate.
type idleProbe struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool
	buf [1]byte
	ok  bool
}

func newIdleProbe(c net.Conn) *idleProbe {
	p := &idleProbe{}
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			p.rc = rc
		}
	}
	p.fn = func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// Nothing to read is the only healthy answer: data was never asked
		// for, and a zero-byte read is the endpoint's close.
		p.ok = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true
	}
	return p
}

// usable tells whether the endpoint has neither closed the connection nor
// sent anything on it. Only one goroutine may call it at a time.
func (p *idleProbe) usable() bool {
	if p.rc == nil {
		return true
	}
	p.ok = false
	if err := p.rc.Read(p.fn); err != nil {
		return false
	}
	return p.ok
}
