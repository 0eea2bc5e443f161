// Package healthhttp is the bundled health checker "http", the default: a
// GET on the instance's health path, healthy when the status matches
// (200 unless configured). One HTTP client with keep-alive is reused for
// every check.
package healthhttp

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mycelium-mesh/mesh/sdk"
)

// Name is the plugin's name in mesh.hcl.
const Name = "http"

// Version is the plugin's version.
const Version = "1.0.0"

type checker struct {
	client *http.Client

	mu      sync.RWMutex
	path    string
	timeout time.Duration
	expect  int
}

// New returns the HTTP health checker with its default settings.
func New() sdk.HealthChecker {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	c := &checker{client: &http.Client{
		Transport: tr,
		// A redirect is an answer, not something to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	_ = c.Configure(context.Background(), sdk.Config{}.WithDefaults(c.Schema()))
	return c
}

func (c *checker) Info() sdk.Info {
	return sdk.Info{Kind: sdk.KindHealth, Name: Name, Version: Version, APIVersions: []uint32{sdk.APIVersion}}
}

func (c *checker) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "path", Type: sdk.TypeString, Default: "/health", Description: "path checked when the host names none"},
		{Name: "timeout", Type: sdk.TypeDuration, Default: "2s", Description: "deadline of a check when the host gives none"},
		{Name: "expect_status", Type: sdk.TypeNumber, Default: 200.0, Description: "HTTP status that means healthy"},
	}}
}

func (c *checker) Configure(_ context.Context, cfg sdk.Config) error {
	path := cfg.String("path", "/health")
	if !strings.HasPrefix(path, "/") {
		return sdk.AttrErrorf("path", "must start with /, got %q", path)
	}
	timeout := cfg.Duration("timeout", 2*time.Second)
	if timeout <= 0 {
		return sdk.AttrErrorf("timeout", "must be positive, got %s", timeout)
	}
	expect := int(cfg.Number("expect_status", 200))
	if expect < 100 || expect > 599 {
		return sdk.AttrErrorf("expect_status", "must be an HTTP status, got %d", expect)
	}
	c.mu.Lock()
	c.path, c.timeout, c.expect = path, timeout, expect
	c.mu.Unlock()
	return nil
}

// Check GETs URL+path. Transport failures are unhealthy results, not
// errors: the checker worked, the instance did not answer.
func (c *checker) Check(ctx context.Context, hc sdk.HealthCheck) (sdk.HealthResult, error) {
	c.mu.RLock()
	path, timeout, expect := c.path, c.timeout, c.expect
	c.mu.RUnlock()
	if hc.Path != "" {
		path = hc.Path
	}
	if hc.Timeout > 0 {
		timeout = hc.Timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	url := strings.TrimRight(hc.URL, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return sdk.HealthResult{}, fmt.Errorf("health request %s: %w", url, err)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return sdk.HealthResult{Healthy: false, Reason: err.Error()}, nil
	}
	// Drain a little so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != expect {
		return sdk.HealthResult{Healthy: false, Reason: fmt.Sprintf("GET %s: status %d, want %d", path, resp.StatusCode, expect)}, nil
	}
	return sdk.HealthResult{Healthy: true, Reason: fmt.Sprintf("GET %s: status %d", path, resp.StatusCode)}, nil
}

// ValidateConfig says whether Configure would accept cfg, by configuring a
// fresh value: Configure only parses, so nothing outside changes.
func (c *checker) ValidateConfig(ctx context.Context, cfg sdk.Config) error {
	return New().Configure(ctx, cfg)
}
