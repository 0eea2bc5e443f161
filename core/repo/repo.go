// Package repo is the content-addressed spore store (F2).
//
// A spore is stored under the sha256 of its bytes as <dir>/<hex>.spore. Writes
// are atomic: bytes stream through the hash into a temporary file in the same
// directory, which is fsynced and then renamed into place, and the directory is
// fsynced after the rename. A reader therefore sees either nothing or the
// complete file under a digest name, even if the writing process is killed.
//
// A Backend (for example a repo plugin) may sit behind the local store. Put
// pushes new blobs to it, and Path fetches a blob from it on a local miss. The
// local directory stays the verified cache: whatever a backend returns is
// re-hashed and refused unless it matches the digest that was asked for.
package repo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Errors callers can tell apart with errors.Is.
var (
	// ErrBadDigest means a digest string is malformed.
	ErrBadDigest = errors.New("malformed digest")
	// ErrNotFound means the digest is neither in the local store nor in the backend.
	ErrNotFound = errors.New("digest not found")
	// ErrDigestMismatch means bytes obtained for a digest hash to something else.
	ErrDigestMismatch = errors.New("digest mismatch")
)

// Backend is a remote store behind the local one. sdk.RepoBackend satisfies it.
type Backend interface {
	Put(ctx context.Context, digest string, r io.Reader) error
	// Get returns the blob; found is false when the backend does not have it.
	Get(ctx context.Context, digest string) (rc io.ReadCloser, found bool, err error)
	Has(ctx context.Context, digest string) (bool, error)
}

const (
	// blobSuffix is the extension of stored blobs.
	blobSuffix = ".spore"
	// tempPrefix marks in-progress writes; they are never visible under a
	// digest name and are swept by Open once stale.
	tempPrefix = ".mesh-tmp-"
	// staleAfter is how old a temporary file must be before Open removes it.
	staleAfter = time.Minute
	// copyBufSize is the streaming buffer: large enough for throughput,
	// small enough that memory stays flat whatever the blob size.
	copyBufSize = 256 << 10
)

// Option configures a Repo.
type Option func(*Repo)

// WithBackend puts a remote backend behind the local store.
func WithBackend(b Backend) Option { return func(r *Repo) { r.backend = b } }

// WithLogger sets the logger; the default discards everything.
func WithLogger(l hclog.Logger) Option {
	return func(r *Repo) {
		if l != nil {
			r.log = l
		}
	}
}

// Repo is a content-addressed store rooted at one directory. It is safe for
// concurrent use by several goroutines and several processes.
type Repo struct {
	dir     string
	backend Backend
	log     hclog.Logger
}

// Entry describes one stored blob.
type Entry struct {
	Digest  string // "sha256:<hex>"
	Size    int64
	ModTime time.Time
}

// Open opens the store at dir, creating the directory (mode 0755) if it does
// not exist, and removes temporary files left behind by writers that died more
// than a minute ago.
func Open(dir string, opts ...Option) (*Repo, error) {
	if dir == "" {
		return nil, errors.New("open repo: empty directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open repo %s: %w", dir, err)
	}
	r := &Repo{dir: abs, log: hclog.NewNullLogger()}
	for _, o := range opts {
		o(r)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("open repo %s: %w", abs, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("open repo %s: %w", abs, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("open repo %s: not a directory", abs)
	}
	r.sweep(time.Now().Add(-staleAfter))
	return r, nil
}

// Dir returns the absolute directory of the store.
func (r *Repo) Dir() string { return r.dir }

// sweep removes temporary files last modified before cutoff. A live writer
// keeps its file's modification time fresh, so only abandoned ones go.
func (r *Repo) sweep(cutoff time.Time) {
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		r.log.Warn("cannot list repo for stale temporary files", "dir", r.dir, "error", err)
		return
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), tempPrefix) || e.IsDir() {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(cutoff) {
			continue
		}
		p := filepath.Join(r.dir, e.Name())
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			r.log.Warn("cannot remove stale temporary file", "path", p, "error", err)
			continue
		}
		r.log.Debug("removed stale temporary file", "path", p)
	}
}

// blobPath is the stored location of a validated bare hex digest.
func (r *Repo) blobPath(hexDigest string) string {
	return filepath.Join(r.dir, hexDigest+blobSuffix)
}

// Put stores the file at path and returns its digest "sha256:<hex>". Storing
// the same bytes again is a no-op that returns the same digest. With a
// backend, the blob is also pushed to it unless it already has it.
func (r *Repo) Put(file string) (string, error) {
	return r.PutFile(context.Background(), file)
}

// PutFile is Put with a context for the backend calls.
func (r *Repo) PutFile(ctx context.Context, file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("put %s: %w", file, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("put %s: %w", file, err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("put %s: not a regular file", file)
	}
	d, err := r.PutReader(ctx, f)
	if err != nil {
		return "", fmt.Errorf("put %s: %w", file, err)
	}
	return d, nil
}

// PutReader stores everything read from src and returns its digest.
func (r *Repo) PutReader(ctx context.Context, src io.Reader) (string, error) {
	hexDigest, err := r.ingest(ctx, src, "")
	if err != nil {
		return "", err
	}
	digest := FormatDigest(hexDigest)
	if r.backend != nil {
		if err := r.push(ctx, hexDigest); err != nil {
			return "", err
		}
	}
	return digest, nil
}

// ingest streams src into a temporary file while hashing it, makes it
// durable and renames it to its digest name. When want is not empty the
// content must hash to it, or nothing is stored and ErrDigestMismatch is
// returned. It returns the bare hex digest.
func (r *Repo) ingest(ctx context.Context, src io.Reader, want string) (hexDigest string, err error) {
	tmp, err := os.CreateTemp(r.dir, tempPrefix+"*")
	if err != nil {
		return "", fmt.Errorf("create temporary file: %w", err)
	}
	tmpName := tmp.Name()
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()

	h := sha256.New()
	buf := make([]byte, copyBufSize)
	n, err := io.CopyBuffer(io.MultiWriter(tmp, h), ctxReader{ctx: ctx, r: src}, buf)
	if err != nil {
		return "", fmt.Errorf("write %s: %w", tmpName, err)
	}
	hexDigest = hex.EncodeToString(h.Sum(nil))
	if want != "" && hexDigest != want {
		return "", fmt.Errorf("%w: asked for %s, received %d bytes hashing to %s",
			ErrDigestMismatch, FormatDigest(want), n, FormatDigest(hexDigest))
	}
	if err := tmp.Chmod(0o644); err != nil {
		return "", fmt.Errorf("chmod %s: %w", tmpName, err)
	}
	if err := tmp.Sync(); err != nil {
		return "", fmt.Errorf("sync %s: %w", tmpName, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("close %s: %w", tmpName, err)
	}

	final := r.blobPath(hexDigest)
	if _, err := os.Stat(final); err == nil {
		// Already stored: same digest, same bytes. Drop our copy.
		r.log.Debug("blob already stored", "digest", FormatDigest(hexDigest))
		return hexDigest, nil
	}
	// Rename is atomic within a directory; a concurrent writer of the same
	// content may win the race, which is harmless since the bytes are equal.
	if err := os.Rename(tmpName, final); err != nil {
		return "", fmt.Errorf("rename into %s: %w", final, err)
	}
	committed = true
	if err := syncDir(r.dir); err != nil {
		return "", fmt.Errorf("sync repo directory: %w", err)
	}
	r.log.Debug("blob stored", "digest", FormatDigest(hexDigest), "bytes", n)
	return hexDigest, nil
}

// push sends a locally stored blob to the backend unless it has it already.
func (r *Repo) push(ctx context.Context, hexDigest string) error {
	digest := FormatDigest(hexDigest)
	has, err := r.backend.Has(ctx, digest)
	if err != nil {
		return fmt.Errorf("backend has %s: %w", digest, err)
	}
	if has {
		return nil
	}
	f, err := os.Open(r.blobPath(hexDigest))
	if err != nil {
		return fmt.Errorf("push %s: %w", digest, err)
	}
	defer f.Close()
	if err := r.backend.Put(ctx, digest, f); err != nil {
		return fmt.Errorf("backend put %s: %w", digest, err)
	}
	r.log.Debug("blob pushed to backend", "digest", digest)
	return nil
}

// Path returns the absolute path of the blob with the given digest. On a
// local miss with a backend, the blob is fetched, re-hashed and stored first;
// a backend answer that does not hash to the digest is refused with
// ErrDigestMismatch. Unknown digests give ErrNotFound, malformed ones
// ErrBadDigest.
func (r *Repo) Path(digest string) (string, error) {
	return r.PathContext(context.Background(), digest)
}

// PathContext is Path with a context for the backend calls.
func (r *Repo) PathContext(ctx context.Context, digest string) (string, error) {
	hexDigest, err := ParseDigest(digest)
	if err != nil {
		return "", fmt.Errorf("repo path: %w", err)
	}
	p := r.blobPath(hexDigest)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("repo path %s: %w", FormatDigest(hexDigest), err)
	}
	if r.backend == nil {
		return "", fmt.Errorf("repo path %s: %w in %s", FormatDigest(hexDigest), ErrNotFound, r.dir)
	}
	if err := r.fetch(ctx, hexDigest); err != nil {
		return "", fmt.Errorf("repo path %s: %w", FormatDigest(hexDigest), err)
	}
	return p, nil
}

// fetch copies a blob from the backend into the local store, verifying it.
func (r *Repo) fetch(ctx context.Context, hexDigest string) error {
	digest := FormatDigest(hexDigest)
	rc, found, err := r.backend.Get(ctx, digest)
	if err != nil {
		return fmt.Errorf("backend get: %w", err)
	}
	if !found {
		if rc != nil {
			rc.Close()
		}
		return fmt.Errorf("%w locally or in the backend", ErrNotFound)
	}
	defer rc.Close()
	if _, err := r.ingest(ctx, rc, hexDigest); err != nil {
		if errors.Is(err, ErrDigestMismatch) {
			r.log.Error("backend returned corrupt blob", "digest", digest, "error", err)
		}
		return fmt.Errorf("fetch from backend: %w", err)
	}
	r.log.Info("blob fetched from backend", "digest", digest)
	return nil
}

// Has reports whether the blob is in the local store.
func (r *Repo) Has(digest string) (bool, error) {
	hexDigest, err := ParseDigest(digest)
	if err != nil {
		return false, fmt.Errorf("repo has: %w", err)
	}
	_, err = os.Stat(r.blobPath(hexDigest))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("repo has %s: %w", FormatDigest(hexDigest), err)
	}
}

// List returns the blobs in the local store, sorted by digest. Files that do
// not look like stored blobs are ignored.
func (r *Repo) List() ([]Entry, error) {
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		return nil, fmt.Errorf("list repo %s: %w", r.dir, err)
	}
	var out []Entry
	for _, e := range ents {
		name := e.Name()
		h, ok := strings.CutSuffix(name, blobSuffix)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		canon, err := ParseDigest(h)
		if err != nil || canon != h {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, Entry{Digest: FormatDigest(h), Size: info.Size(), ModTime: info.ModTime()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Digest < out[j].Digest })
	return out, nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ctxReader stops a copy once its context is done.
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
