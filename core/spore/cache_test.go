package spore

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// packTest packs bin signed by key into dir/name and returns its path.
func packTest(t *testing.T, dir, name string, bin []byte, key ed25519.PrivateKey) string {
	t.Helper()
	b := writeFile(t, dir, name+".bin", bin)
	out := filepath.Join(dir, name)
	if _, err := PackFile(out, b, baseManifest(), key); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestKeySetFingerprint(t *testing.T) {
	a, b, c := pubOf(seedKey(1)), pubOf(seedKey(2)), pubOf(seedKey(3))
	cases := []struct {
		name string
		x, y []ed25519.PublicKey
		same bool
	}{
		{"order does not matter", []ed25519.PublicKey{a, b}, []ed25519.PublicKey{b, a}, true},
		{"duplicates do not matter", []ed25519.PublicKey{a, a, b}, []ed25519.PublicKey{b, a}, true},
		{"an added key matters", []ed25519.PublicKey{a, b}, []ed25519.PublicKey{a, b, c}, false},
		{"a removed key matters", []ed25519.PublicKey{a, b}, []ed25519.PublicKey{a}, false},
		{"empty is not one key", nil, []ed25519.PublicKey{a}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := KeySetFingerprint(tc.x) == KeySetFingerprint(tc.y); got != tc.same {
				t.Fatalf("same fingerprint = %v, want %v", got, tc.same)
			}
		})
	}
}

// TestVerifyCache checks when a second check of a spore is answered from
// the cache (no new verification) and when it must verify again.
func TestVerifyCache(t *testing.T) {
	trusted := []ed25519.PublicKey{pubOf(trustedKey)}
	other := []ed25519.PublicKey{pubOf(trustedKey), pubOf(seedKey(7))}
	cases := []struct {
		name string
		// change acts between the first and the second check; it returns
		// the key set and path of the second check.
		change     func(t *testing.T, dir, path string) ([]ed25519.PublicKey, string)
		wantMisses uint64
		wantErr    error
	}{
		{"unchanged file", func(t *testing.T, dir, path string) ([]ed25519.PublicKey, string) {
			return trusted, path
		}, 1, nil},
		{"new trusted key set", func(t *testing.T, dir, path string) ([]ed25519.PublicKey, string) {
			return other, path
		}, 2, nil},
		{"signer no longer trusted", func(t *testing.T, dir, path string) ([]ed25519.PublicKey, string) {
			return []ed25519.PublicKey{pubOf(seedKey(7))}, path
		}, 2, ErrUntrustedKey},
		{"rewritten in place, same size, mtime put back", func(t *testing.T, dir, path string) ([]ed25519.PublicKey, string) {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			flipBinaryByte(t, b)
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(b, 0); err != nil {
				t.Fatal(err)
			}
			f.Close()
			if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
				t.Fatal(err)
			}
			return trusted, path
		}, 2, ErrBadArchive},
		{"replaced by rename", func(t *testing.T, dir, path string) ([]ed25519.PublicKey, string) {
			repl := packTest(t, dir, "repl.spore", []byte("#!/bin/sh\nexit 0\n"), untrustedKey)
			if err := os.Rename(repl, path); err != nil {
				t.Fatal(err)
			}
			return trusted, path
		}, 2, ErrUntrustedKey},
		{"modification time changed", func(t *testing.T, dir, path string) ([]ed25519.PublicKey, string) {
			later := time.Now().Add(time.Hour)
			if err := os.Chtimes(path, later, later); err != nil {
				t.Fatal(err)
			}
			return trusted, path
		}, 2, nil},
		{"another path under the same name", func(t *testing.T, dir, path string) ([]ed25519.PublicKey, string) {
			return trusted, packTest(t, dir, "b.spore", goodBinary, trustedKey)
		}, 2, nil},
		{"removed", func(t *testing.T, dir, path string) ([]ed25519.PublicKey, string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			return trusted, path
		}, 2, os.ErrNotExist},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := packTest(t, dir, "a.spore", goodBinary, trustedKey)
			var c VerifyCache
			if _, err := c.Verify("d", path, trusted); err != nil {
				t.Fatal(err)
			}
			keys, p2 := tc.change(t, dir, path)
			_, err := c.Verify("d", p2, keys)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("second check: err = %v, want %v", err, tc.wantErr)
			}
			if got := c.Stats().Misses; got != tc.wantMisses {
				t.Fatalf("verifications = %d, want %d", got, tc.wantMisses)
			}
		})
	}
}

// flipBinaryByte changes one byte of the stored binary entry of a packed
// spore, leaving its size and the manifest alone.
func flipBinaryByte(t *testing.T, spore []byte) {
	t.Helper()
	i := indexOf(spore, goodBinary)
	if i < 0 {
		t.Fatal("binary not found stored in the spore")
	}
	spore[i+len(goodBinary)-2] ^= 1
}

func indexOf(b, sub []byte) int {
	for i := 0; i+len(sub) <= len(b); i++ {
		if string(b[i:i+len(sub)]) == string(sub) {
			return i
		}
	}
	return -1
}

func TestVerifyCacheRefusalsNotCached(t *testing.T) {
	dir := t.TempDir()
	path := packTest(t, dir, "a.spore", goodBinary, untrustedKey)
	trusted := []ed25519.PublicKey{pubOf(trustedKey)}
	var c VerifyCache
	for i := 0; i < 2; i++ {
		if _, err := c.Verify("d", path, trusted); !errors.Is(err, ErrUntrustedKey) {
			t.Fatalf("check %d: err = %v, want %v", i, err, ErrUntrustedKey)
		}
	}
	if s := c.Stats(); s.Misses != 2 || s.Entries != 0 {
		t.Fatalf("stats = %+v, want 2 verifications and no entry", s)
	}
}

func TestVerifyCacheTrustChangeDropsOldEntries(t *testing.T) {
	dir := t.TempDir()
	a := packTest(t, dir, "a.spore", goodBinary, trustedKey)
	b := packTest(t, dir, "b.spore", goodBinary, trustedKey)
	one := []ed25519.PublicKey{pubOf(trustedKey)}
	two := []ed25519.PublicKey{pubOf(trustedKey), pubOf(seedKey(9))}
	var c VerifyCache
	for _, p := range []string{a, b} {
		if _, err := c.Verify(p, p, one); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Verify(a, a, two); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.Entries != 1 {
		t.Fatalf("entries after a trust change = %d, want 1", s.Entries)
	}
	// The old set coming back is verified afresh.
	if _, err := c.Verify(b, b, one); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.Misses != 4 {
		t.Fatalf("verifications = %d, want 4", s.Misses)
	}
}

// TestVerifyCacheConcurrent has many callers check one spore at once: they
// share one verification.
func TestVerifyCacheConcurrent(t *testing.T) {
	dir := t.TempDir()
	path := packTest(t, dir, "a.spore", goodBinary, trustedKey)
	trusted := []ed25519.PublicKey{pubOf(trustedKey)}
	var c VerifyCache
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := c.Verify("d", path, trusted)
			if err == nil && m.Identity.Name != baseManifest().Identity.Name {
				err = errors.New("wrong manifest " + m.Identity.Name)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if s := c.Stats(); s.Misses != 1 || s.Hits+s.Misses != 50 {
		t.Fatalf("stats = %+v, want 1 verification of 50 calls", s)
	}
}

// TestVerifyCacheExtract extracts through the cache: the verdict of the
// extraction serves the next check, and a refused spore writes nothing.
func TestVerifyCacheExtract(t *testing.T) {
	trusted := []ed25519.PublicKey{pubOf(trustedKey)}
	cases := []struct {
		name    string
		key     ed25519.PrivateKey
		wantErr error
	}{
		{"trusted", trustedKey, nil},
		{"untrusted", untrustedKey, ErrUntrustedKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := packTest(t, dir, "a.spore", goodBinary, tc.key)
			out := filepath.Join(dir, "out")
			var c VerifyCache
			_, err := c.Extract("d", path, trusted, out)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("extract: err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("refused extraction left %s: %v", out, err)
				}
				return
			}
			if _, err := os.Stat(filepath.Join(out, BinaryEntry)); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Verify("d", path, trusted); err != nil {
				t.Fatal(err)
			}
			if s := c.Stats(); s.Misses != 1 || s.Hits != 1 {
				t.Fatalf("stats = %+v, want the check answered by the extraction's verdict", s)
			}
		})
	}
}
