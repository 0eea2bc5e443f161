package agent

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mycelium-mesh/mesh/core/fabric"
)

// sharedFixture is a repo spore and the run directory its copies go to.
type sharedFixture struct {
	runDir, hex, path string
	keys              []ed25519.PublicKey
}

func newSharedFixture(t *testing.T) sharedFixture {
	t.Helper()
	e := newEnv(t)
	d := e.spore("v1", nil)
	path, err := e.repo.Path(d)
	if err != nil {
		t.Fatal(err)
	}
	return sharedFixture{
		runDir: t.TempDir(), hex: strings.TrimPrefix(d, "sha256:"), path: path,
		keys: []ed25519.PublicKey{testKey.Public().(ed25519.PublicKey)},
	}
}

func (f sharedFixture) copyDir() string { return filepath.Join(f.runDir, sharedDirName, f.hex) }

// plant puts a copy at the shared place by hand, its binary replaced by
// body when body is not nil.
func (f sharedFixture) plant(t *testing.T, body []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(f.copyDir()), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := extractCopy(f.path, f.keys, f.copyDir(), f.hex); err != nil {
		t.Fatal(err)
	}
	if body != nil {
		p := filepath.Join(f.copyDir(), "binary")
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, body, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// holdElsewhere takes the copy's lock shared through a descriptor of its
// own, as another process using the copy would.
func (f sharedFixture) holdElsewhere(t *testing.T) *os.File {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(f.copyDir()), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := lockPath(f.copyDir()+".lock", unix.LOCK_SH)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestSharedCopy(t *testing.T) {
	fake := []byte("#!/bin/sh\necho not the spore's binary\n")
	cases := []struct {
		name    string
		setup   func(t *testing.T, f sharedFixture)
		wantErr bool
		// kept: the copy stays after the last release of this process.
		kept bool
	}{
		{"fresh", func(t *testing.T, f sharedFixture) {}, false, false},
		{"tampered leftover of an earlier run is extracted again", func(t *testing.T, f sharedFixture) {
			f.plant(t, fake)
		}, false, false},
		{"copy another process holds is shared", func(t *testing.T, f sharedFixture) {
			f.plant(t, nil)
			f.holdElsewhere(t)
		}, false, true},
		{"tampered copy another process holds is refused", func(t *testing.T, f sharedFixture) {
			f.plant(t, fake)
			f.holdElsewhere(t)
		}, true, true},
		{"copy missing while another process holds its lock", func(t *testing.T, f sharedFixture) {
			f.holdElsewhere(t)
		}, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newSharedFixture(t)
			tc.setup(t, f)
			dir, m, err := acquireShared(f.runDir, f.hex, f.path, f.keys)
			if tc.wantErr {
				if err == nil {
					releaseShared(f.runDir, f.hex)
					t.Fatal("acquired a tampered copy")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if dir != f.copyDir() {
				t.Fatalf("dir = %s, want %s", dir, f.copyDir())
			}
			if err := checkCopy(dir, m); err != nil {
				t.Fatalf("copy in use: %v", err)
			}
			releaseShared(f.runDir, f.hex)
			_, err = os.Stat(dir)
			if gone := errors.Is(err, os.ErrNotExist); gone == tc.kept {
				t.Fatalf("after the last release: gone = %v, want %v (%v)", gone, !tc.kept, err)
			}
		})
	}
}

// TestSharedCopyConcurrent has many agents ask for one digest at once:
// one copy, made once, and removed with the last release.
func TestSharedCopyConcurrent(t *testing.T) {
	f := newSharedFixture(t)
	var wg sync.WaitGroup
	dirs := make([]string, 20)
	errs := make([]error, 20)
	for k := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dirs[k], _, errs[k] = acquireShared(f.runDir, f.hex, f.path, f.keys)
		}()
	}
	wg.Wait()
	for k := range dirs {
		if errs[k] != nil || dirs[k] != f.copyDir() {
			t.Fatalf("acquire %d: %q, %v", k, dirs[k], errs[k])
		}
	}
	left, _ := filepath.Glob(filepath.Join(f.runDir, sharedDirName, "*.tmp-*"))
	if len(left) != 0 {
		t.Fatalf("temporary extractions left: %v", left)
	}
	for k := range dirs {
		if k == len(dirs)-1 {
			if _, err := os.Stat(f.copyDir()); err != nil {
				t.Fatalf("copy gone while still held: %v", err)
			}
		}
		releaseShared(f.runDir, f.hex)
	}
	if _, err := os.Stat(f.copyDir()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("copy still there after the last release: %v", err)
	}
}

// TestPreviousDigestKept: the copy of the digest an app ran before stays
// while the app is planned, so rolling back starts from an extracted spore;
// the one before that, and every copy of a withdrawn app, goes.
func TestPreviousDigestKept(t *testing.T) {
	e := newEnv(t)
	v1, v2, v3 := e.spore("v1", nil), e.spore("v2", nil), e.spore("v3", nil)
	a := e.startAgent("n1", nil)
	copyOf := func(d string) string {
		return filepath.Join(e.runDir, sharedDirName, strings.TrimPrefix(d, "sha256:"))
	}
	exists := func(d string) bool { _, err := os.Stat(copyOf(d)); return err == nil }
	for _, d := range []string{v1, v2, v3} {
		e.publish(fabric.Plan{Digest: d})
		waitFor(t, 10*time.Second, "ready on "+d, func() bool {
			for _, s := range a.inState("billing", StateReady) {
				if s.Digest == d {
					return true
				}
			}
			return false
		})
	}
	waitFor(t, 10*time.Second, "v1's copy released, v2's (the previous digest) kept", func() bool {
		a.kickSporeGC()
		return !exists(v1) && exists(v2) && exists(v3)
	})
	if err := e.fab.DeletePlan("billing"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "every copy removed after the plan was deleted", func() bool {
		a.kickSporeGC()
		return !exists(v1) && !exists(v2) && !exists(v3)
	})
}
