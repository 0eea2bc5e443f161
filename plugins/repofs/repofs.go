// Package repofs is the bundled repo backend "fs", the default: blobs are
// files <dir>/<hex>.spore in a local directory, written atomically (temp
// file, fsync, rename) and checked against their digest while written.
package repofs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/mycelium-mesh/mesh/sdk"
)

// Name is the plugin's name in mesh.hcl.
const Name = "fs"

// Version is the plugin's version.
const Version = "1.0.0"

// ErrDigestMismatch is returned by Put when the bytes do not hash to the
// digest they were stored under.
var ErrDigestMismatch = errors.New("digest mismatch")

type backend struct {
	mu  sync.RWMutex
	dir string
}

// New returns the directory backend. It must be configured with a dir.
func New() sdk.RepoBackend { return &backend{} }

func (b *backend) Info() sdk.Info {
	return sdk.Info{Kind: sdk.KindRepo, Name: Name, Version: Version, APIVersions: []uint32{sdk.APIVersion}}
}

func (b *backend) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "dir", Type: sdk.TypePath, Required: true, Description: "directory holding the blobs; created if missing (relative to mesh.hcl)"},
	}}
}

func (b *backend) Configure(ctx context.Context, cfg sdk.Config) error {
	if err := b.ValidateConfig(ctx, cfg); err != nil {
		return err
	}
	dir := cfg.String("dir", "")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create repo dir: %w", err)
	}
	b.mu.Lock()
	b.dir = dir
	b.mu.Unlock()
	return nil
}

// ValidateConfig checks the dir attribute without creating anything: it
// must be given and, when it exists already, be a directory.
func (b *backend) ValidateConfig(_ context.Context, cfg sdk.Config) error {
	dir := cfg.String("dir", "")
	if dir == "" {
		return sdk.AttrErrorf("dir", "is required")
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return sdk.AttrErrorf("dir", "%s exists and is not a directory", dir)
	}
	return nil
}

// blobPath maps "sha256:<hex>" to its file.
func (b *backend) blobPath(digest string) (string, string, error) {
	b.mu.RLock()
	dir := b.dir
	b.mu.RUnlock()
	if dir == "" {
		return "", "", errors.New("repo fs: not configured")
	}
	h, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(h) != 64 {
		return "", "", fmt.Errorf("repo fs: malformed digest %q (want sha256:<64 hex>)", digest)
	}
	if _, err := hex.DecodeString(h); err != nil || strings.ToLower(h) != h {
		return "", "", fmt.Errorf("repo fs: malformed digest %q (want lowercase hex)", digest)
	}
	return filepath.Join(dir, h+".spore"), h, nil
}

// Put writes r to a temp file in dir, checks its hash and renames it into
// place. A blob already present is left alone.
func (b *backend) Put(ctx context.Context, digest string, r io.Reader) (err error) {
	path, want, err := b.blobPath(digest)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".put-*")
	if err != nil {
		return fmt.Errorf("repo fs: put %s: %w", digest, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	if _, err = io.Copy(io.MultiWriter(tmp, h), ctxReader{ctx, r}); err != nil {
		return fmt.Errorf("repo fs: put %s: %w", digest, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("repo fs: put %s: bytes hash to sha256:%s: %w", digest, got, ErrDigestMismatch)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("repo fs: put %s: sync: %w", digest, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("repo fs: put %s: %w", digest, err)
	}
	if err = os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("repo fs: put %s: %w", digest, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("repo fs: put %s: %w", digest, err)
	}
	return nil
}

// Get opens the blob's file.
func (b *backend) Get(_ context.Context, digest string) (io.ReadCloser, bool, error) {
	path, _, err := b.blobPath(digest)
	if err != nil {
		return nil, false, err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("repo fs: get %s: %w", digest, err)
	}
	return f, true, nil
}

// Has reports whether the blob's file exists.
func (b *backend) Has(_ context.Context, digest string) (bool, error) {
	path, _, err := b.blobPath(digest)
	if err != nil {
		return false, err
	}
	_, err = os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("repo fs: has %s: %w", digest, err)
	}
	return true, nil
}

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
