//go:build !linux

package edge

import "net"

// clientListenConfig arms keep-alive probes on each accepted connection.
func clientListenConfig() *net.ListenConfig {
	return &net.ListenConfig{
		KeepAliveConfig: net.KeepAliveConfig{
			Enable:   true,
			Idle:     clientKeepAliveIdle,
			Interval: clientKeepAliveInterval,
			Count:    clientKeepAliveCount,
		},
	}
}
