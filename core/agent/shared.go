package agent

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mycelium-mesh/mesh/core/spore"
)

// Shared extractions.
//
// Every agent on a run directory launches a digest's binary from one
// extracted, read-only copy, <RunDir>/.spores/<hex>/, so that instances of
// the same digest on different nodes map the same file and share its code
// pages instead of holding a private copy each. Each copy has a lock file
// beside it, <hex>.lock: a process holds it shared for as long as one of
// its agents uses the copy, and exclusively to create or remove it. A copy
// is created under a temporary name and renamed into place, so a half
// written one is never used; one found on disk that no running process
// holds (a previous run's) is not trusted and is extracted again; one that
// another process holds is used only after its binary's SHA-256 is checked
// against the verified manifest. The last agent to let go of a copy removes
// it, unless another process still holds it.

// sharedDirName is the run directory's entry holding the shared copies; a
// node id never starts with a dot, so no node directory can collide with it.
const sharedDirName = ".spores"

// maxCopyAttempts bounds the retries of ensure when a copy another process
// holds is found missing: normally a brief window while its holder goes
// from exclusive to shared, or lets go.
const maxCopyAttempts = 20

// verified is the verdict cache of every agent of this process: a digest
// checked by one node is not hashed again by the next.
var verified spore.VerifyCache

// sharedCopies are the copies this process holds, by final directory.
var sharedCopies = struct {
	sync.Mutex
	m map[string]*sharedCopy
}{m: map[string]*sharedCopy{}}

// sharedCopy is one digest's copy as this process holds it.
type sharedCopy struct {
	mu       sync.Mutex // serialises creation
	refs     int        // agents holding it; guarded by sharedCopies
	lock     *os.File   // held shared while ready
	ready    bool
	dir      string
	manifest spore.Manifest
}

// acquireShared returns the shared copy of the spore at path (digest hex)
// under runDir, verified against trusted, creating it if needed. Each
// successful call must be paired with releaseShared.
func acquireShared(runDir, hexDigest, path string, trusted []ed25519.PublicKey) (string, spore.Manifest, error) {
	final := filepath.Join(runDir, sharedDirName, hexDigest)
	sharedCopies.Lock()
	c := sharedCopies.m[final]
	if c == nil {
		c = &sharedCopy{dir: final}
		sharedCopies.m[final] = c
	}
	c.refs++
	sharedCopies.Unlock()

	m, err := c.ensure(hexDigest, path, trusted)
	if err != nil {
		releaseShared(runDir, hexDigest)
		return "", spore.Manifest{}, err
	}
	return final, m, nil
}

// releaseShared lets go of one hold on a copy taken by acquireShared; the
// last hold of the process removes the copy when no other process holds it.
func releaseShared(runDir, hexDigest string) {
	final := filepath.Join(runDir, sharedDirName, hexDigest)
	sharedCopies.Lock()
	defer sharedCopies.Unlock()
	c := sharedCopies.m[final]
	if c == nil {
		return
	}
	if c.refs--; c.refs > 0 {
		return
	}
	delete(sharedCopies.m, final)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lock == nil {
		return
	}
	// Exclusive without waiting means no other process holds the copy.
	if unix.Flock(int(c.lock.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
		_ = os.RemoveAll(final)
		_ = os.Remove(final + ".lock")
	}
	_ = c.lock.Close()
	c.lock, c.ready = nil, false
}

// ensure makes the copy ready and checks the spore against trusted; a copy
// already ready costs a cached verification only.
func (c *sharedCopy) ensure(hexDigest, path string, trusted []ed25519.PublicKey) (spore.Manifest, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	digest := "sha256:" + hexDigest
	if len(trusted) == 0 {
		return spore.Manifest{}, fmt.Errorf("verify spore %s: no trusted keys", digest)
	}
	if c.ready {
		if _, err := verified.Verify(digest, path, trusted); err != nil {
			return spore.Manifest{}, fmt.Errorf("verify spore %s: %w", digest, err)
		}
		return c.manifest, nil
	}
	parent := filepath.Dir(c.dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return spore.Manifest{}, fmt.Errorf("extract spore %s: %w", digest, err)
	}
	for attempt := 0; ; attempt++ {
		if attempt == maxCopyAttempts {
			return spore.Manifest{}, fmt.Errorf("shared copy of spore %s: missing from %s while another process holds it", digest, c.dir)
		}
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * time.Millisecond)
		}
		lock, err := lockPath(c.dir+".lock", unix.LOCK_EX|unix.LOCK_NB)
		if errors.Is(err, unix.EWOULDBLOCK) {
			// Another process holds the copy (or is making it): share it.
			m, err := verified.Verify(digest, path, trusted)
			if err != nil {
				return spore.Manifest{}, fmt.Errorf("verify spore %s: %w", digest, err)
			}
			lock, err = lockPath(c.dir+".lock", unix.LOCK_SH)
			if err != nil {
				return spore.Manifest{}, fmt.Errorf("extract spore %s: %w", digest, err)
			}
			if err := checkCopy(c.dir, m); err != nil {
				// Made by a process that has let go of it since, or
				// damaged: start again, and make it ourselves if we can.
				_ = lock.Close()
				if errors.Is(err, os.ErrNotExist) {
					continue
				}
				return spore.Manifest{}, fmt.Errorf("shared copy of spore %s: %w", digest, err)
			}
			c.lock, c.ready, c.manifest = lock, true, m
			return m, nil
		} else if err != nil {
			return spore.Manifest{}, fmt.Errorf("extract spore %s: %w", digest, err)
		} else {
			m, err := extractCopy(path, trusted, c.dir, hexDigest)
			if err != nil {
				_ = lock.Close()
				return spore.Manifest{}, fmt.Errorf("verify and extract spore %s: %w", digest, err)
			}
			// Hold it shared from now on. Going from exclusive to shared
			// is not atomic: check the copy is still there after.
			if err := unix.Flock(int(lock.Fd()), unix.LOCK_SH); err != nil {
				_ = lock.Close()
				return spore.Manifest{}, fmt.Errorf("extract spore %s: lock: %w", digest, err)
			}
			if _, err := os.Lstat(filepath.Join(c.dir, "binary")); err != nil {
				_ = lock.Close()
				continue
			}
			c.lock, c.ready, c.manifest = lock, true, m
			return m, nil
		}
	}
}

// lockPath opens (creating) and flocks path with how. A lock file can be
// removed by the last holder of a copy; a lock taken on a file no longer
// at path is let go and taken again on the current one.
func lockPath(path string, how int) (*os.File, error) {
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		if err := unix.Flock(int(f.Fd()), how); err != nil {
			_ = f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, err
			}
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		held, err1 := f.Stat()
		now, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			return f, nil
		}
		_ = f.Close()
	}
}

// extractCopy replaces whatever is at final with a fresh extraction of the
// spore, made read-only, verifying it in the same pass (the verdict is
// remembered). The caller holds the copy's lock exclusively.
func extractCopy(path string, trusted []ed25519.PublicKey, final, hexDigest string) (spore.Manifest, error) {
	parent := filepath.Dir(final)
	tmp, err := os.MkdirTemp(parent, hexDigest+".tmp-")
	if err != nil {
		return spore.Manifest{}, err
	}
	m, err := verified.Extract("sha256:"+hexDigest, path, trusted, tmp)
	if err != nil {
		_ = os.RemoveAll(tmp)
		return spore.Manifest{}, err
	}
	for name, mode := range map[string]os.FileMode{"binary": 0o555, "manifest.json": 0o444} {
		if err := os.Chmod(filepath.Join(tmp, name), mode); err != nil {
			_ = os.RemoveAll(tmp)
			return spore.Manifest{}, err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		_ = os.RemoveAll(tmp)
		return spore.Manifest{}, err
	}
	if err := os.RemoveAll(final); err != nil {
		_ = os.RemoveAll(tmp)
		return spore.Manifest{}, err
	}
	if err := os.Rename(tmp, final); err != nil {
		_ = os.RemoveAll(tmp)
		return spore.Manifest{}, err
	}
	return m, nil
}

// checkCopy checks a copy made by another process: a regular binary file
// whose SHA-256 is the one the verified manifest names.
func checkCopy(dir string, m spore.Manifest) error {
	p := filepath.Join(dir, "binary")
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", p)
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("hash %s: %w", p, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != m.Integrity.BinarySHA256 {
		return fmt.Errorf("%s has sha256 %s, the manifest names %s", p, got, m.Integrity.BinarySHA256)
	}
	return nil
}
