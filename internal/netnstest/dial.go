package netnstest

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// DialContext connects from inside the host's namespace, so a test process
// in the root namespace can act as a client on that host: a socket belongs
// to the namespace of the thread that created it, so the connection is
// made on a thread locked into the namespace, which is thrown away after.
// It fits http.Transport.DialContext.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		// Never unlocked: the goroutine exits locked, and the runtime ends
		// the thread instead of reusing it in the wrong namespace.
		runtime.LockOSThread()
		f, err := os.Open("/run/netns/" + h.NS)
		if err != nil {
			done <- result{err: fmt.Errorf("open namespace of %s: %w", h.Name, err)}
			return
		}
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		f.Close()
		if err != nil {
			done <- result{err: fmt.Errorf("enter namespace of %s: %w", h.Name, err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		done <- result{c, err}
	}()
	r := <-done
	return r.c, r.err
}
