// Package healthtcp is the bundled health checker "tcp": an instance is
// healthy when a TCP connection to its address succeeds.
package healthtcp

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mycelium-mesh/mesh/sdk"
)

// Name is the plugin's name in mesh.hcl.
const Name = "tcp"

// Version is the plugin's version.
const Version = "1.0.0"

type checker struct {
	mu      sync.RWMutex
	timeout time.Duration
}

// New returns the TCP health checker with its default settings.
func New() sdk.HealthChecker {
	c := &checker{}
	_ = c.Configure(context.Background(), sdk.Config{}.WithDefaults(c.Schema()))
	return c
}

func (c *checker) Info() sdk.Info {
	return sdk.Info{Kind: sdk.KindHealth, Name: Name, Version: Version, APIVersions: []uint32{sdk.APIVersion}}
}

func (c *checker) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "timeout", Type: sdk.TypeDuration, Default: "1s", Description: "dial deadline when the host gives none"},
	}}
}

func (c *checker) Configure(_ context.Context, cfg sdk.Config) error {
	t := cfg.Duration("timeout", time.Second)
	if t <= 0 {
		return sdk.AttrErrorf("timeout", "must be positive, got %s", t)
	}
	c.mu.Lock()
	c.timeout = t
	c.mu.Unlock()
	return nil
}

// Check dials the instance's host:port. The path is ignored.
func (c *checker) Check(ctx context.Context, hc sdk.HealthCheck) (sdk.HealthResult, error) {
	addr, err := hostPort(hc.URL)
	if err != nil {
		return sdk.HealthResult{}, err
	}
	c.mu.RLock()
	timeout := c.timeout
	c.mu.RUnlock()
	if hc.Timeout > 0 {
		timeout = hc.Timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return sdk.HealthResult{Healthy: false, Reason: err.Error()}, nil
	}
	conn.Close()
	return sdk.HealthResult{Healthy: true, Reason: "connected to " + addr}, nil
}

// hostPort accepts a URL (http://127.0.0.1:8080) or a bare host:port.
func hostPort(raw string) (string, error) {
	if !strings.Contains(raw, "://") {
		if _, _, err := net.SplitHostPort(raw); err != nil {
			return "", fmt.Errorf("tcp check: address %q: %w", raw, err)
		}
		return raw, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("tcp check: url %q: %w", raw, err)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		switch u.Scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		default:
			return "", fmt.Errorf("tcp check: url %q has no port", raw)
		}
	}
	return net.JoinHostPort(host, port), nil
}

// ValidateConfig says whether Configure would accept cfg, by configuring a
// fresh value: Configure only parses, so nothing outside changes.
func (c *checker) ValidateConfig(ctx context.Context, cfg sdk.Config) error {
	return New().Configure(ctx, cfg)
}
