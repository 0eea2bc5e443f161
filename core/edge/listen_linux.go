package edge

import (
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// clientListenConfig sets the keep-alive probes on the listening socket,
// which the kernel copies to each accepted one, and tells Go to leave
// accepted sockets as they come.
func clientListenConfig() *net.ListenConfig {
	return &net.ListenConfig{
		KeepAlive: -1,
		Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = setKeepAlive(int(fd))
			})
			if err != nil {
				return fmt.Errorf("keep-alive on the listener: %w", err)
			}
			return serr
		},
	}
}

func setKeepAlive(fd int) error {
	opts := []struct {
		level, name, value int
		what               string
	}{
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1, "SO_KEEPALIVE"},
		{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int(clientKeepAliveIdle.Seconds()), "TCP_KEEPIDLE"},
		{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, int(clientKeepAliveInterval.Seconds()), "TCP_KEEPINTVL"},
		{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, clientKeepAliveCount, "TCP_KEEPCNT"},
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, o.level, o.name, o.value); err != nil {
			return fmt.Errorf("set %s on the listener: %w", o.what, err)
		}
	}
	return nil
}
