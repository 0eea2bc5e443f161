package edge

import (
	"context"
	"fmt"
	"net"
	"time"
)

// Client connections get TCP keep-alive probes, as net/http's servers
// give theirs: a client that vanishes without a FIN (a host powered off,
// a NAT that forgot the flow) is found within a few minutes even while a
// request waits on its endpoint. Go's listeners arm the probes on every
// accepted socket, four setsockopt calls per connection, a cost that
// shows when clients open a connection per request. Linux copies a
// listening socket's keep-alive settings to the sockets it accepts, so
// there the edge sets them once on the listener and accepts without
// touching them (listen_linux.go); elsewhere each accepted connection is
// armed as Go does by default.

// The probe settings: Go's defaults for accepted connections.
const (
	clientKeepAliveIdle     = 15 * time.Second
	clientKeepAliveInterval = 15 * time.Second
	clientKeepAliveCount    = 9
)

// listenClients binds the edge's client listener on addr.
func listenClients(ctx context.Context, addr string) (net.Listener, error) {
	ln, err := clientListenConfig().Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return ln, nil
}
