package edge

import (
	"fmt"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// clientListenConfig sets the keep-alive probes on the listening socket,
// which the kernel copies to each accepted one, and tells Go to leave
// accepted sockets as they come. It defers accepting until a connection's
// first bytes arrive.
func clientListenConfig() *net.ListenConfig {
	return &net.ListenConfig{
		KeepAlive: -1,
		Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = setListenerOptions(int(fd))
			})
			if err != nil {
				return fmt.Errorf("options of the listener: %w", err)
			}
			return serr
		},
	}
}

// clientDeferAccept is how long the kernel holds a new connection that
// has sent nothing before handing it to accept anyway. HTTP clients speak
// first, so a connection is accepted with its request already in: the
// first read finds it, instead of finding nothing, parking and waking
// again. A client that stays silent is accepted after this long (rounded
// to the kernel's SYN-ACK retransmissions) and then has the header
// timeout, as any other.
const clientDeferAccept = time.Second

func setListenerOptions(fd int) error {
	opts := []struct {
		level, name, value int
		what               string
	}{
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1, "SO_KEEPALIVE"},
		{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int(clientKeepAliveIdle.Seconds()), "TCP_KEEPIDLE"},
		{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, int(clientKeepAliveInterval.Seconds()), "TCP_KEEPINTVL"},
		{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, clientKeepAliveCount, "TCP_KEEPCNT"},
		{unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, int(clientDeferAccept.Seconds()), "TCP_DEFER_ACCEPT"},
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, o.level, o.name, o.value); err != nil {
			return fmt.Errorf("set %s on the listener: %w", o.what, err)
		}
	}
	return nil
}
