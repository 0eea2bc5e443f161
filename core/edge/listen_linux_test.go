package edge

import (
	"context"
	"net"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// acceptOne dials ln once, sends a byte (a deferring listener hands over
// a connection once something came) and returns the accepted side.
func acceptOne(t *testing.T, ln net.Listener) net.Conn {
	t.Helper()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.Write([]byte{'G'}); err != nil {
		t.Fatal(err)
	}
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func sockopt(t *testing.T, c net.Conn, level, name int) int {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), level, name) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// An accepted client connection carries the keep-alive probes and
// TCP_NODELAY, as with Go's default listener.
func TestClientListenerKeepAlive(t *testing.T) {
	ln, err := listenClients(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c := acceptOne(t, ln)
	for _, tc := range []struct {
		name       string
		level, opt int
		want       int
	}{
		{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{"TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int(clientKeepAliveIdle.Seconds())},
		{"TCP_KEEPINTVL", unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, int(clientKeepAliveInterval.Seconds())},
		{"TCP_KEEPCNT", unix.IPPROTO_TCP, unix.TCP_KEEPCNT, clientKeepAliveCount},
		{"TCP_NODELAY", unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
	} {
		if got := sockopt(t, c, tc.level, tc.opt); got != tc.want {
			t.Errorf("%s = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// The accept path leaves the options the listener handed down alone: an
// idle time set on the listener alone survives on the accepted socket,
// where Go's default listener would set its own on every connection.
func TestClientListenerDoesNotRearmAccepted(t *testing.T) {
	const marker = 77 // seconds; no default uses it
	lc := clientListenConfig()
	ctl := lc.Control
	lc.Control = func(network, addr string, rc syscall.RawConn) error {
		if err := ctl(network, addr, rc); err != nil {
			return err
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, marker)
		}); err != nil {
			return err
		}
		return serr
	}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c := acceptOne(t, ln)
	if got := sockopt(t, c, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE); got != marker {
		t.Errorf("TCP_KEEPIDLE on the accepted socket = %d, want the listener's %d", got, marker)
	}
}

// The listener hands over connections once their first bytes are in, and
// a connection that sent them is accepted with them readable.
func TestClientListenerDefersAccept(t *testing.T) {
	ln, err := listenClients(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := sc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT) }); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	if v <= 0 {
		t.Fatalf("TCP_DEFER_ACCEPT on the listener = %d, want it set", v)
	}

	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	if _, err := d.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(req))
	n := 0
	if err := rc.Control(func(fd uintptr) {
		n, _, gerr = unix.Recvfrom(int(fd), buf, unix.MSG_PEEK|unix.MSG_DONTWAIT)
	}); err != nil {
		t.Fatal(err)
	}
	if gerr != nil || n == 0 {
		t.Fatalf("accepted connection has nothing to read (%d bytes, %v)", n, gerr)
	}
}
