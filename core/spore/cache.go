package spore

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"
)

// KeySetFingerprint names a set of trusted keys independently of their
// order and of duplicates: the SHA-256 of the sorted, distinct keys. Two
// sets have the same fingerprint exactly when they trust the same signers.
func KeySetFingerprint(trusted []ed25519.PublicKey) [sha256.Size]byte {
	keys := make([]string, 0, len(trusted))
	for _, k := range trusted {
		keys = append(keys, string(k))
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	h := sha256.New()
	for _, k := range keys {
		// Ed25519 keys are fixed-size, but a length prefix keeps the
		// encoding unambiguous for any input.
		h.Write([]byte{byte(len(k))})
		h.Write([]byte(k))
	}
	var fp [sha256.Size]byte
	h.Sum(fp[:0])
	return fp
}

// fileID is what tells whether the file at a path is still the one that was
// verified: its device and inode (a replacement by rename changes them),
// its size, and its modification and status-change times (a write in place
// changes both; the status-change time cannot be set back by a user).
type fileID struct {
	dev, ino uint64
	size     int64
	mtime    time.Time
	ctime    int64 // nanoseconds; 0 where the platform does not report it
}

func identify(fi os.FileInfo) fileID {
	id := fileID{size: fi.Size(), mtime: fi.ModTime()}
	id.dev, id.ino, id.ctime = statIDs(fi)
	return id
}

// maxCacheEntries bounds a VerifyCache; past it the oldest half is dropped.
const maxCacheEntries = 4096

type cacheKey struct {
	name string
	fp   [sha256.Size]byte
}

type cacheEntry struct {
	path string
	id   fileID
	man  Manifest
	seq  uint64
}

// call is one verification in progress that concurrent callers wait for.
type call struct {
	path string
	done chan struct{}
	man  Manifest
	err  error
}

// VerifyCache remembers which spores verified against which trusted-key
// sets, so that checking an already-verified spore again costs a stat
// instead of a hash of the whole file.
//
// An entry is keyed by a name the caller chooses (the spore's digest in a
// content-addressed repo) and the fingerprint of the trusted keys
// (KeySetFingerprint), and it holds the path and identity (device, inode,
// size, modification and status-change times) of the file as it was
// verified. A hit needs the same name, the same key set, the same path and
// a file at that path with the same identity; anything else verifies the
// file completely again. A new key set (a reload of the trusted keys)
// therefore never reuses a verdict reached under another one, and the
// first verification under a new set drops the entries of the older sets.
// Refusals are never cached: a refused spore is checked again each time.
//
// Concurrent calls for the same name, key set and path share one
// verification. The zero value is ready to use; a VerifyCache is safe for
// concurrent use.
type VerifyCache struct {
	mu       sync.Mutex
	entries  map[cacheKey]cacheEntry
	inflight map[cacheKey]*call
	current  [sha256.Size]byte // the key set of the newest stored entry
	seq      uint64
	hits     uint64
	misses   uint64
}

// Verify returns the manifest of the spore at path as Verify does, from the
// cache when the same file was already verified under name against the
// same trusted keys.
func (c *VerifyCache) Verify(name, path string, trusted []ed25519.PublicKey) (Manifest, error) {
	key := cacheKey{name: name, fp: KeySetFingerprint(trusted)}
	fi, statErr := os.Stat(path)
	c.mu.Lock()
	if e, ok := c.entries[key]; ok && statErr == nil && e.path == path && e.id == identify(fi) {
		c.hits++
		c.mu.Unlock()
		return e.man, nil
	}
	if cl, ok := c.inflight[key]; ok && cl.path == path {
		c.hits++ // shares the verification in progress
		c.mu.Unlock()
		<-cl.done
		return cl.man, cl.err
	}
	if cl, ok := c.inflight[key]; ok {
		c.mu.Unlock()
		// Another file under the same name: it gets a check of its own
		// once the one in progress ends.
		<-cl.done
		return c.Verify(name, path, trusted)
	}
	cl := &call{path: path, done: make(chan struct{})}
	if c.inflight == nil {
		c.inflight = map[cacheKey]*call{}
	}
	c.inflight[key] = cl
	c.misses++
	c.mu.Unlock()

	man, id, err := verifyIdentified(path, trusted)
	cl.man, cl.err = man, err

	c.mu.Lock()
	delete(c.inflight, key)
	if err == nil && id != (fileID{}) {
		c.store(key, cacheEntry{path: path, id: id, man: man})
	}
	c.mu.Unlock()
	close(cl.done)
	return man, err
}

// store records e under key; c.mu is held.
func (c *VerifyCache) store(key cacheKey, e cacheEntry) {
	if c.entries == nil {
		c.entries = map[cacheKey]cacheEntry{}
	}
	if key.fp != c.current {
		// Trust changed: verdicts under other key sets are of no further
		// use (a set that comes back is verified afresh).
		for k := range c.entries {
			if k.fp != key.fp {
				delete(c.entries, k)
			}
		}
		c.current = key.fp
	}
	if len(c.entries) >= maxCacheEntries {
		c.evictOldest()
	}
	c.seq++
	e.seq = c.seq
	c.entries[key] = e
}

// evictOldest drops the older half of the entries; c.mu is held.
func (c *VerifyCache) evictOldest() {
	cut := c.seq - uint64(len(c.entries)/2)
	for k, e := range c.entries {
		if e.seq <= cut {
			delete(c.entries, k)
		}
	}
}

// Forget drops every entry, so that each spore is verified completely on
// its next check.
func (c *VerifyCache) Forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = nil
}

// CacheStats counts a VerifyCache's lookups.
type CacheStats struct {
	Hits, Misses uint64 // a miss is a complete verification; a hit shares one
	Entries      int
}

// Stats returns the cache's counters.
func (c *VerifyCache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{Hits: c.hits, Misses: c.misses, Entries: len(c.entries)}
}

// verifyIdentified verifies the spore at path and returns the identity of
// the file it read, taken from the open descriptor before and after the
// check: a file changed while it was being read is refused for caching by
// returning a zero identity, which no later stat matches.
func verifyIdentified(path string, trusted []ed25519.PublicKey) (Manifest, fileID, error) {
	a, err := openArchive(path)
	if err != nil {
		return Manifest{}, fileID{}, fmt.Errorf("verify %s: %w", path, err)
	}
	defer a.close()
	before, err := a.f.Stat()
	if err != nil {
		return Manifest{}, fileID{}, fmt.Errorf("verify %s: %w", path, err)
	}
	m, _, err := a.verify(trusted)
	if err != nil {
		return Manifest{}, fileID{}, fmt.Errorf("verify %s: %w", path, err)
	}
	after, err := a.f.Stat()
	if err != nil {
		return Manifest{}, fileID{}, fmt.Errorf("verify %s: %w", path, err)
	}
	id := identify(before)
	if identify(after) != id {
		return m, fileID{}, nil
	}
	return m, id, nil
}

// Extract verifies and extracts the spore at path into dir as Extract does
// (one pass over the binary) and remembers the verdict under name and the
// trusted keys as Verify would, so that a later Verify of the same file
// costs a stat.
func (c *VerifyCache) Extract(name, path string, trusted []ed25519.PublicKey, dir string) (Manifest, error) {
	a, err := openArchive(path)
	if err != nil {
		return Manifest{}, fmt.Errorf("extract %s: %w", path, err)
	}
	defer a.close()
	before, err := a.f.Stat()
	if err != nil {
		return Manifest{}, fmt.Errorf("extract %s: %w", path, err)
	}
	m, raw, err := a.verifyManifest(trusted)
	if err != nil {
		return Manifest{}, fmt.Errorf("extract %s: %w", path, err)
	}
	if err := a.extract(m, raw, dir); err != nil {
		if errors.Is(err, ErrBinaryDigest) {
			return Manifest{}, fmt.Errorf("extract %s: %w", path, err)
		}
		return Manifest{}, fmt.Errorf("extract %s into %s: %w", path, dir, err)
	}
	after, err := a.f.Stat()
	if err == nil && identify(after) == identify(before) {
		c.mu.Lock()
		c.misses++
		c.store(cacheKey{name: name, fp: KeySetFingerprint(trusted)}, cacheEntry{path: path, id: identify(before), man: m})
		c.mu.Unlock()
	}
	return m, nil
}
