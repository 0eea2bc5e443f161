package hostingcfpages

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/zeebo/blake3"

	"github.com/mycelium-mesh/mesh/plugins/internal/sitefiles"
)

// Direct-upload limits, as Cloudflare Pages and wrangler have them.
const (
	maxFiles        = 20000
	maxFileSize     = 25 << 20
	maxBucketBytes  = 40 << 20
	maxBucketFiles  = 2000
	digestMarkerPre = "mesh site "
)

// AssetHash is a Pages asset's name: the first 32 hex digits of BLAKE3
// over the base64 of the content followed by the file's extension without
// its dot.
func AssetHash(name string, content io.Reader) (string, error) {
	h := blake3.New()
	enc := base64.NewEncoder(base64.StdEncoding, h)
	if _, err := io.Copy(enc, content); err != nil {
		return "", err
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	h.Write([]byte(strings.TrimPrefix(path.Ext(name), ".")))
	return hex.EncodeToString(h.Sum(nil))[:32], nil
}

// asset is one file of a deployment.
type asset struct {
	sitefiles.File
	hash string
}

// siteAssets reads a site and hashes every file.
func siteAssets(dir string) ([]asset, error) {
	files, err := sitefiles.List(dir, sitefiles.Limits{MaxFiles: maxFiles, MaxFileSize: maxFileSize})
	if err != nil {
		return nil, err
	}
	out := make([]asset, 0, len(files))
	for _, f := range files {
		fh, err := os.Open(f.Path)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f.Path, err)
		}
		h, err := AssetHash(f.Name, fh)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("hash %s: %w", f.Path, err)
		}
		out = append(out, asset{File: f, hash: h})
	}
	return out, nil
}

// manifest maps "/path" to asset hash, as the deployment wants it.
func manifest(as []asset) map[string]string {
	m := make(map[string]string, len(as))
	for _, a := range as {
		m["/"+a.Name] = a.hash
	}
	return m
}

// contentDigest names a site's content: sha256 over its sorted
// (path, asset hash) pairs. It is recorded with each deployment so that an
// unchanged site is not deployed again.
func contentDigest(as []asset) string {
	h := sha256.New()
	for _, a := range as { // sorted by name
		fmt.Fprintf(h, "%s\x00%s\n", a.Name, a.hash)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// buckets groups assets for upload: at most maxBucketBytes and
// maxBucketFiles each, largest files first (as wrangler does).
func buckets(as []asset) [][]asset {
	sorted := append([]asset(nil), as...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Size > sorted[j].Size })
	var out [][]asset
	var cur []asset
	var size int64
	for _, a := range sorted {
		if len(cur) > 0 && (size+a.Size > maxBucketBytes || len(cur) >= maxBucketFiles) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, a)
		size += a.Size
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// assetClient makes the four direct-upload calls the SDK lacks. Its HTTP
// client retries 429/5xx; it fetches a fresh upload JWT on a 401.
type assetClient struct {
	http    *http.Client
	base    string
	account string
	token   string
	project string

	mu  sync.Mutex
	jwt string
}

// envelope is every Cloudflare answer.
type envelope struct {
	Success  bool            `json:"success"`
	Errors   []apiMessage    `json:"errors"`
	Messages []apiMessage    `json:"messages"`
	Result   json.RawMessage `json:"result"`
}

type apiMessage struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// APIError is a refusal by the API, with the provider's codes and messages.
type APIError struct {
	Method, Path string
	Status       int
	Errors       []apiMessage
}

func (e *APIError) Error() string {
	var parts []string
	for _, m := range e.Errors {
		parts = append(parts, fmt.Sprintf("code %d: %s", m.Code, m.Message))
	}
	if len(parts) == 0 {
		parts = append(parts, http.StatusText(e.Status))
	}
	return fmt.Sprintf("cloudflare %s %s: %d: %s", e.Method, e.Path, e.Status, strings.Join(parts, "; "))
}

// call sends one request with bearer auth and decodes the envelope's
// result into out.
func (c *assetClient) call(ctx context.Context, method, p, bearer string, body any, out any) error {
	var rd io.Reader
	var raw []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, p, err)
		}
		raw = b
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+p, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, p, err)
	}
	if raw != nil {
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cloudflare %s %s: %w", method, p, err)
	}
	defer resp.Body.Close()
	var env envelope
	dec := json.NewDecoder(io.LimitReader(resp.Body, 16<<20))
	decErr := dec.Decode(&env)
	if resp.StatusCode >= 300 || !env.Success {
		return &APIError{Method: method, Path: p, Status: resp.StatusCode, Errors: env.Errors}
	}
	if decErr != nil {
		return fmt.Errorf("cloudflare %s %s: decode answer: %w", method, p, decErr)
	}
	if out != nil {
		if err := json.Unmarshal(env.Result, out); err != nil {
			return fmt.Errorf("cloudflare %s %s: decode result: %w", method, p, err)
		}
	}
	return nil
}

func (c *assetClient) uploadToken(ctx context.Context, stale string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.jwt != "" && c.jwt != stale {
		return c.jwt, nil
	}
	var res struct {
		JWT string `json:"jwt"`
	}
	if err := c.call(ctx, http.MethodGet, fmt.Sprintf("/accounts/%s/pages/projects/%s/upload-token", c.account, c.project), c.token, nil, &res); err != nil {
		return "", fmt.Errorf("get upload token: %w", err)
	}
	if res.JWT == "" {
		return "", errors.New("get upload token: empty jwt")
	}
	c.jwt = res.JWT
	return c.jwt, nil
}

// withJWT runs an asset call, refreshing the upload token once on a 401.
func (c *assetClient) withJWT(ctx context.Context, method, p string, body, out any) error {
	jwt, err := c.uploadToken(ctx, "")
	if err != nil {
		return err
	}
	err = c.call(ctx, method, p, jwt, body, out)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
		if jwt, err = c.uploadToken(ctx, jwt); err != nil {
			return err
		}
		err = c.call(ctx, method, p, jwt, body, out)
	}
	return err
}

func (c *assetClient) checkMissing(ctx context.Context, hashes []string) ([]string, error) {
	var missing []string
	if err := c.withJWT(ctx, http.MethodPost, "/pages/assets/check-missing", map[string]any{"hashes": hashes}, &missing); err != nil {
		return nil, fmt.Errorf("check missing assets: %w", err)
	}
	return missing, nil
}

type uploadEntry struct {
	Key      string            `json:"key"`
	Value    string            `json:"value"`
	Metadata map[string]string `json:"metadata"`
	Base64   bool              `json:"base64"`
}

func (c *assetClient) upload(ctx context.Context, bucket []asset) error {
	entries := make([]uploadEntry, 0, len(bucket))
	for _, a := range bucket {
		b, err := os.ReadFile(a.Path)
		if err != nil {
			return fmt.Errorf("upload %s: %w", a.Name, err)
		}
		if h, err := AssetHash(a.Name, bytes.NewReader(b)); err != nil || h != a.hash {
			return fmt.Errorf("upload %s: the file changed since it was hashed", a.Name)
		}
		entries = append(entries, uploadEntry{Key: a.hash, Value: base64.StdEncoding.EncodeToString(b),
			Metadata: map[string]string{"contentType": sitefiles.ContentType(a.Name)}, Base64: true})
	}
	if err := c.withJWT(ctx, http.MethodPost, "/pages/assets/upload", entries, nil); err != nil {
		return fmt.Errorf("upload %d assets: %w", len(entries), err)
	}
	return nil
}

func (c *assetClient) upsertHashes(ctx context.Context, hashes []string) error {
	if err := c.withJWT(ctx, http.MethodPost, "/pages/assets/upsert-hashes", map[string]any{"hashes": hashes}, nil); err != nil {
		return fmt.Errorf("upsert asset hashes: %w", err)
	}
	return nil
}

// uploadMissing uploads the assets the store lacks, bucket by bucket,
// concurrency at a time, then upserts every hash. It returns how many
// assets it uploaded.
func (c *assetClient) uploadMissing(ctx context.Context, as []asset, concurrency int) (int, error) {
	hashes := make([]string, 0, len(as))
	byHash := map[string]asset{}
	for _, a := range as {
		if _, dup := byHash[a.hash]; !dup {
			hashes = append(hashes, a.hash)
			byHash[a.hash] = a
		}
	}
	missing, err := c.checkMissing(ctx, hashes)
	if err != nil {
		return 0, err
	}
	var todo []asset
	for _, h := range missing {
		if a, ok := byHash[h]; ok {
			todo = append(todo, a)
		}
	}
	bs := buckets(todo)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, max(concurrency, 1))
	var wg sync.WaitGroup
	for _, b := range bs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := c.upload(ctx, b); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return 0, err
	}
	if err := c.upsertHashes(ctx, hashes); err != nil {
		return 0, err
	}
	return len(todo), nil
}
