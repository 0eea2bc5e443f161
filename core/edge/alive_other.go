//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package edge

import "net"

// idleProbe cannot peek on this platform: a closed connection shows up as
// a stale one when used.
type idleProbe struct{}

func newIdleProbe(net.Conn) *idleProbe { return nil }

func (*idleProbe) usable() bool { return true }
