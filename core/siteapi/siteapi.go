// Package siteapi is the client of the mesh control API's static-site
// endpoints, shared by the mesh (which serves them) and the local-static
// hosting plugin (which calls them). It holds no server code.
package siteapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/mycelium-mesh/mesh/core/controladdr"
)

// ErrNoSite is returned by Client.Site for a site the mesh does not serve.
var ErrNoSite = errors.New("no such site")

// Client talks to the site endpoints of a running mesh.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// NewClient returns a client for addr: "unix:///path/to/control.sock" or
// "http://127.0.0.1:7070" (with token).
func NewClient(addr, token string) (*Client, error) {
	base, hc, err := controladdr.Parse(addr)
	if err != nil {
		return nil, err
	}
	return &Client{base: base, token: token, http: hc}, nil
}

// Site is a static site the mesh serves by Host.
type Site struct {
	ID       string   `json:"id"`
	Domains  []string `json:"domains"`
	Snapshot string   `json:"snapshot,omitempty"` // "sha256:<hex>", a snapshot the mesh holds (static sites)
	NotFound string   `json:"notFound,omitempty"` // relative path of the 404 page, or ""
	// App, for a site hosted as a mesh app, is the app its hosts route to;
	// Content is then the digest of the files it serves (sitesnap).
	App     string    `json:"app,omitempty"`
	Content string    `json:"content,omitempty"`
	Updated time.Time `json:"updated"`
}

type apiError struct {
	Error string `json:"error"`
}

func (c *Client) siteRequest(ctx context.Context, method, path string, body io.Reader, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return 0, fmt.Errorf("control request: %w", err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("cannot reach the mesh control API (is `mesh run` running?): %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("read control response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var ae apiError
		if json.Unmarshal(b, &ae) == nil && ae.Error != "" {
			return resp.StatusCode, errors.New(ae.Error)
		}
		return resp.StatusCode, fmt.Errorf("control API: %s", resp.Status)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode control response: %w", err)
		}
	}
	return resp.StatusCode, nil
}

// Sites lists the static sites the mesh serves.
func (c *Client) Sites(ctx context.Context) ([]Site, error) {
	var out []Site
	_, err := c.siteRequest(ctx, http.MethodGet, "/v1/sites", nil, &out)
	return out, err
}

// Site returns one site, or an error wrapping ErrNoSite.
func (c *Client) Site(ctx context.Context, id string) (Site, error) {
	var out Site
	code, err := c.siteRequest(ctx, http.MethodGet, "/v1/sites/"+url.PathEscape(id), nil, &out)
	if code == http.StatusNotFound {
		return out, fmt.Errorf("site %s: %w", id, ErrNoSite)
	}
	return out, err
}

// PutSite sets a site's desired state; its snapshot must be uploaded.
func (c *Client) PutSite(ctx context.Context, s Site) (Site, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return Site{}, fmt.Errorf("encode site: %w", err)
	}
	var out Site
	_, err = c.siteRequest(ctx, http.MethodPut, "/v1/sites/"+url.PathEscape(s.ID), bytes.NewReader(b), &out)
	return out, err
}

// DeleteSite stops serving a site; a site already gone is success.
func (c *Client) DeleteSite(ctx context.Context, id string) error {
	_, err := c.siteRequest(ctx, http.MethodDelete, "/v1/sites/"+url.PathEscape(id), nil, nil)
	return err
}

// HasSnapshot reports whether the mesh holds a site snapshot.
func (c *Client) HasSnapshot(ctx context.Context, digest string) (bool, error) {
	code, err := c.siteRequest(ctx, http.MethodHead, "/v1/site-snapshots/"+url.PathEscape(digest), nil, nil)
	if code == http.StatusNotFound {
		return false, nil
	}
	return err == nil, err
}

// PutSnapshot streams a snapshot's tar archive to the mesh, which keeps it
// only when its content has the digest.
func (c *Client) PutSnapshot(ctx context.Context, digest string, tarStream io.Reader) error {
	_, err := c.siteRequest(ctx, http.MethodPut, "/v1/site-snapshots/"+url.PathEscape(digest), tarStream, nil)
	if err != nil {
		return fmt.Errorf("upload snapshot %s: %w", digest, err)
	}
	return nil
}

// PublishSpore uploads a spore (verified by the mesh against its trusted
// keys) and returns its digest.
func (c *Client) PublishSpore(ctx context.Context, spore io.Reader) (string, error) {
	var out struct{ Digest string }
	if _, err := c.siteRequest(ctx, http.MethodPost, "/v1/spores", spore, &out); err != nil {
		return "", fmt.Errorf("publish spore: %w", err)
	}
	return out.Digest, nil
}

// Deploy rolls app out to digest, blue/green.
func (c *Client) Deploy(ctx context.Context, app, digest string) error {
	b, _ := json.Marshal(map[string]string{"app": app, "digest": digest})
	if _, err := c.siteRequest(ctx, http.MethodPost, "/v1/deploy", bytes.NewReader(b), nil); err != nil {
		return fmt.Errorf("deploy %s: %w", app, err)
	}
	return nil
}

// WaitRollout polls the rollout of digest to app until it is no longer
// progressing, and returns an error unless it became ready.
func (c *Client) WaitRollout(ctx context.Context, app, digest string) error {
	q := url.Values{"app": {app}, "digest": {digest}}
	for {
		var rs struct{ State, Detail string }
		if _, err := c.siteRequest(ctx, http.MethodGet, "/v1/rollout?"+q.Encode(), nil, &rs); err != nil {
			return err
		}
		switch rs.State {
		case "ready":
			return nil
		case "progressing", "":
		default:
			return fmt.Errorf("rollout of %s to %s %s: %s", app, digest, rs.State, rs.Detail)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// AppRequest asks the mesh to run a site's app at Digest. An app the mesh
// does not run yet is created, owned by the site; a new digest is rolled
// out blue/green.
type AppRequest struct {
	App    string `json:"app"`
	Digest string `json:"digest"`
}

// AppState is a site's app as the mesh holds it after an AppRequest.
type AppState struct {
	App  string `json:"app"`
	Site string `json:"site"`
	// Digest is the digest the app's plan names; "" when the mesh holds no
	// plan for it (its fabric store was lost).
	Digest string `json:"digest"`
	// Owned is true when the site owns the app (the mesh created it for the
	// site); false when mesh.hcl declares it.
	Owned bool `json:"owned"`
	// Rollout is the ID of the rollout the request started; "" when the
	// app already ran Digest.
	Rollout string `json:"rollout,omitempty"`
}

// EnsureApp has the mesh run the site's app at req.Digest (a spore it
// holds): created when it does not exist, rolled out when the digest is
// new. Follow the rollout with WaitRollout.
func (c *Client) EnsureApp(ctx context.Context, site string, req AppRequest) (AppState, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return AppState{}, fmt.Errorf("encode app request: %w", err)
	}
	var out AppState
	if _, err := c.siteRequest(ctx, http.MethodPut, "/v1/sites/"+url.PathEscape(site)+"/app", bytes.NewReader(b), &out); err != nil {
		return AppState{}, fmt.Errorf("site %s: run app %s: %w", site, req.App, err)
	}
	return out, nil
}

// SiteApp returns the app a site runs in, or an error wrapping ErrNoSite
// when it runs none.
func (c *Client) SiteApp(ctx context.Context, site string) (AppState, error) {
	var out AppState
	code, err := c.siteRequest(ctx, http.MethodGet, "/v1/sites/"+url.PathEscape(site)+"/app", nil, &out)
	if code == http.StatusNotFound {
		return out, fmt.Errorf("site %s: app: %w", site, ErrNoSite)
	}
	return out, err
}
