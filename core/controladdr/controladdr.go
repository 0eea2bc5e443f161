// Package controladdr turns a mesh control API address into an HTTP client.
//
// The control API listens on a unix socket ("unix:///path/control.sock") or
// on a loopback TCP address ("http://127.0.0.1:7070"). Every client of it —
// the CLI, `mesh provision` and the hosting plugins that publish sites —
// reaches it the same way: Parse gives the base URL to prefix request paths
// with and an *http.Client that dials the right socket.
package controladdr

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Parse returns the base URL and the HTTP client for addr. For a unix socket
// the base is "http://mesh" (the host name is never looked up) and the
// client dials the socket for every request.
func Parse(addr string) (base string, client *http.Client, err error) {
	switch {
	case strings.HasPrefix(addr, "unix://"):
		sock := strings.TrimPrefix(addr, "unix://")
		if sock == "" {
			return "", nil, fmt.Errorf("control address %q: empty socket path", addr)
		}
		tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}
		return "http://mesh", &http.Client{Transport: tr}, nil
	case strings.HasPrefix(addr, "http://"), strings.HasPrefix(addr, "https://"):
		if _, err := url.Parse(addr); err != nil {
			return "", nil, fmt.Errorf("control address %q: %w", addr, err)
		}
		return strings.TrimRight(addr, "/"), &http.Client{}, nil
	default:
		return "", nil, fmt.Errorf("control address %q: want unix:///path or http://host:port", addr)
	}
}
