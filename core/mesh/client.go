package mesh

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/mycelium-mesh/mesh/core/controladdr"
)

// Client talks to a running mesh's control API.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// NewClient returns a client for addr: "unix:///path/to/control.sock" or
// "http://127.0.0.1:7070" (which needs token).
func NewClient(addr, token string) (*Client, error) {
	base, hc, err := controladdr.Parse(addr)
	if err != nil {
		return nil, err
	}
	return &Client{base: base, token: token, http: hc}, nil
}

func (c *Client) do(ctx context.Context, method, path string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("control request: %w", err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ne *net.OpError
		if errors.As(err, &ne) || errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cannot reach the mesh control API (is `mesh run` running?): %w", err)
		}
		return fmt.Errorf("control request: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read control response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var ae apiError
		if json.Unmarshal(b, &ae) == nil && ae.Error != "" {
			return fmt.Errorf("%s", ae.Error)
		}
		return fmt.Errorf("control API: %s", resp.Status)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decode control response: %w", err)
		}
	}
	return nil
}

// Status fetches the mesh status; raw holds the JSON as received.
func (c *Client) Status(ctx context.Context) (st Status, raw json.RawMessage, err error) {
	err = c.do(ctx, http.MethodGet, "/v1/status", nil, &raw)
	if err == nil {
		err = json.Unmarshal(raw, &st)
	}
	return st, raw, err
}

// Deploy asks the mesh to roll app out to digest. The result names the
// digest as the mesh normalised it and the one it replaced.
func (c *Client) Deploy(ctx context.Context, app, digest string) (DeployResult, error) {
	b, _ := json.Marshal(map[string]string{"app": app, "digest": digest})
	var res DeployResult
	err := c.do(ctx, http.MethodPost, "/v1/deploy", bytes.NewReader(b), &res)
	return res, err
}

// Rollout reports the progress of a deploy.
func (c *Client) Rollout(ctx context.Context, app, digest string) (RolloutState, error) {
	var rs RolloutState
	q := url.Values{"app": {app}, "digest": {digest}}
	err := c.do(ctx, http.MethodGet, "/v1/rollout?"+q.Encode(), nil, &rs)
	return rs, err
}

// WaitRollout polls until the rollout is ready, failed or superseded, or ctx ends.
func (c *Client) WaitRollout(ctx context.Context, app, digest string, progress func(RolloutState)) (RolloutState, error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last RolloutState
	for {
		rs, err := c.Rollout(ctx, app, digest)
		if err != nil {
			return last, err
		}
		if progress != nil && (rs.Ready != last.Ready || rs.State != last.State) {
			progress(rs)
		}
		last = rs
		if rs.State != "progressing" {
			return rs, nil
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("rollout of %s to %s: %w", app, digest, ctx.Err())
		case <-tick.C:
		}
	}
}

// PublishSpore uploads a spore file; the mesh verifies it against its
// trusted keys and stores it. It returns the digest.
func (c *Client) PublishSpore(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open spore: %w", err)
	}
	defer f.Close()
	var out struct{ Digest string }
	if err := c.do(ctx, http.MethodPost, "/v1/spores", f, &out); err != nil {
		return "", fmt.Errorf("publish %s: %w", path, err)
	}
	return out.Digest, nil
}

// Reload asks the mesh to re-read mesh.hcl; it returns notes on changes that
// need a restart.
func (c *Client) Reload(ctx context.Context) ([]string, error) {
	rp, err := c.ReloadWith(ctx, ReloadOptions{})
	return rp.Restart, err
}

// reloadResponse is the answer of POST /v1/reload.
type reloadResponse struct {
	SchemaVersion int        `json:"schema_version"`
	Notes         []string   `json:"notes"` // the plan's Restart, for older clients
	Plan          ReloadPlan `json:"plan"`
}

// ReloadWith asks the mesh to plan, and unless opts.PlanOnly apply, a reload
// of mesh.hcl; it returns the plan.
func (c *Client) ReloadWith(ctx context.Context, opts ReloadOptions) (ReloadPlan, error) {
	body, err := json.Marshal(opts)
	if err != nil {
		return ReloadPlan{}, fmt.Errorf("encode reload request: %w", err)
	}
	var out reloadResponse
	err = c.do(ctx, http.MethodPost, "/v1/reload", bytes.NewReader(body), &out)
	return out.Plan, err
}
