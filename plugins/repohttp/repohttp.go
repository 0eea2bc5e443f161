// Package repohttp is the bundled repo backend "http": spores are fetched
// from, and published to, the repo another mesh serves on its control API
// (GET and HEAD /v1/spores/{digest}, POST /v1/spores), so that agents on
// other hosts get the bytes of what the control process holds.
//
// The server is not trusted with integrity: the host re-hashes every blob
// this backend returns and refuses one whose bytes do not hash to the digest
// asked for, and agents verify each spore's signature against their own
// trusted keys before they extract it. Blobs are streamed both ways, never
// held whole in memory. The control API's bearer token, read from
// token_file, goes with every request; a TCP control listener refuses
// requests without it.
package repohttp

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mycelium-mesh/mesh/sdk"
)

// Name is the plugin's name in mesh.hcl.
const Name = "http"

// Version is the plugin's version.
const Version = "1.0.0"

// SporePath is the control API path under which a mesh serves its repo:
// SporePath + "/" + digest.
const SporePath = "/v1/spores"

// maxErrorBody bounds how much of an error answer is quoted.
const maxErrorBody = 4 << 10

type backend struct {
	mu     sync.RWMutex
	base   *url.URL
	token  string
	client *http.Client
}

// New returns the HTTP backend. It must be configured with a url.
func New() sdk.RepoBackend { return &backend{} }

func (b *backend) Info() sdk.Info {
	return sdk.Info{Kind: sdk.KindRepo, Name: Name, Version: Version, APIVersions: []uint32{sdk.APIVersion}}
}

func (b *backend) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "url", Type: sdk.TypeString, Required: true, Description: "base URL of the control API serving the repo, e.g. http://10.0.0.1:7070"},
		{Name: "token_file", Type: sdk.TypePath, Description: "file holding the control API's bearer token (relative to mesh.hcl); needed by a TCP control listener"},
		{Name: "timeout", Type: sdk.TypeDuration, Default: "10s", Description: "connecting and waiting for the answer's header; a body streams as long as it takes"},
	}}
}

// ValidateConfig checks the url and that the token file can be read.
func (b *backend) ValidateConfig(_ context.Context, cfg sdk.Config) error {
	_, _, err := parseConfig(cfg)
	return err
}

func parseConfig(cfg sdk.Config) (*url.URL, string, error) {
	raw := cfg.String("url", "")
	if raw == "" {
		return nil, "", sdk.AttrErrorf("url", "is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "", sdk.AttrErrorf("url", "%q is not a URL: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, "", sdk.AttrErrorf("url", "want http://HOST:PORT or https://HOST:PORT, got %q", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, "", sdk.AttrErrorf("url", "%q must have no query or fragment", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	token := ""
	if f := cfg.String("token_file", ""); f != "" {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, "", sdk.AttrErrorf("token_file", "read %s: %v", f, err)
		}
		token = strings.TrimSpace(string(data))
		if token == "" {
			return nil, "", sdk.AttrErrorf("token_file", "%s is empty", f)
		}
	}
	return u, token, nil
}

func (b *backend) Configure(ctx context.Context, cfg sdk.Config) error {
	u, token, err := parseConfig(cfg)
	if err != nil {
		return err
	}
	timeout := cfg.Duration("timeout", 10*time.Second)
	tr := &http.Transport{
		Proxy:                 nil, // a repo on a private network: never through an environment proxy
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	}
	b.mu.Lock()
	b.base, b.token, b.client = u, token, &http.Client{Transport: tr}
	b.mu.Unlock()
	return nil
}

// request builds a request for digest (or for the upload path when digest
// is "").
func (b *backend) request(ctx context.Context, method, digest string, body io.Reader) (*http.Request, *http.Client, error) {
	b.mu.RLock()
	base, token, client := b.base, b.token, b.client
	b.mu.RUnlock()
	if base == nil {
		return nil, nil, errors.New("repo http: not configured")
	}
	p := base.Path + SporePath
	if digest != "" {
		if err := checkDigest(digest); err != nil {
			return nil, nil, err
		}
		p += "/" + digest
	}
	u := *base
	u.Path = p
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, nil, fmt.Errorf("repo http: %w", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req, client, nil
}

func checkDigest(d string) error {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(h) != 64 || strings.ToLower(h) != h {
		return fmt.Errorf("repo http: malformed digest %q (want sha256:<64 lowercase hex>)", d)
	}
	if _, err := hex.DecodeString(h); err != nil {
		return fmt.Errorf("repo http: malformed digest %q: %v", d, err)
	}
	return nil
}

// Get streams the blob from the server; found is false on 404.
func (b *backend) Get(ctx context.Context, digest string) (io.ReadCloser, bool, error) {
	req, client, err := b.request(ctx, http.MethodGet, digest, nil)
	if err != nil {
		return nil, false, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("repo http: get %s: %w", digest, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return resp.Body, true, nil
	case http.StatusNotFound:
		resp.Body.Close()
		return nil, false, nil
	}
	defer resp.Body.Close()
	return nil, false, fmt.Errorf("repo http: get %s: %w", digest, answerError(resp))
}

// Has asks the server with HEAD.
func (b *backend) Has(ctx context.Context, digest string) (bool, error) {
	req, client, err := b.request(ctx, http.MethodHead, digest, nil)
	if err != nil {
		return false, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, fmt.Errorf("repo http: has %s: %w", digest, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, fmt.Errorf("repo http: has %s: %w", digest, answerError(resp))
}

// Put uploads the blob; the server verifies it against its own trusted
// keys and stores it. The digest it answers must be the one asked for.
func (b *backend) Put(ctx context.Context, digest string, r io.Reader) error {
	if err := checkDigest(digest); err != nil {
		return err
	}
	req, client, err := b.request(ctx, http.MethodPost, "", r)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("repo http: put %s: %w", digest, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("repo http: put %s: %w", digest, answerError(resp))
	}
	var out struct {
		Digest string `json:"digest"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxErrorBody)).Decode(&out); err != nil {
		return fmt.Errorf("repo http: put %s: decode answer: %w", digest, err)
	}
	if out.Digest != digest {
		return fmt.Errorf("repo http: put %s: the server stored it as %q", digest, out.Digest)
	}
	return nil
}

// answerError describes a non-success answer, quoting the server's error.
func answerError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var e struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	if msg == "" {
		return fmt.Errorf("server answered %s", resp.Status)
	}
	return fmt.Errorf("server answered %s: %s", resp.Status, msg)
}
