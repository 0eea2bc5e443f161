package fabric

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// seedStore writes a store with a few plans and budgets and returns its path.
func seedStore(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	f, err := New(Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i, app := range []string{"billing", "echo", "web"} {
		if err := f.PublishPlan(Plan{AppName: app, Digest: "sha256:" + strings.Repeat("ab", 32), Min: 1, Max: i + 1}); err != nil {
			t.Fatal(err)
		}
		if err := f.SetBudget(Budget{AppName: app, MaxInstances: 2}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "fabric.db")
}

// rewrite applies fn to the file's bytes.
func rewrite(t *testing.T, path string, fn func(b []byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, fn(b), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestOpenCorruptStore: every kind of damage to fabric.db is an ErrCorrupt
// that names the file and says what to do; none panics or faults.
func TestOpenCorruptStore(t *testing.T) {
	ps := os.Getpagesize()
	fill := func(from int, v byte) func([]byte) []byte {
		return func(b []byte) []byte {
			for i := from; i < len(b); i++ {
				b[i] = v
			}
			return b
		}
	}
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
		cause  string // in the error, optional
	}{
		{"not a bbolt file", func(t *testing.T, p string) {
			rewrite(t, p, func([]byte) []byte { return []byte("this is not a database\n") })
		}, "invalid database"},
		{"random bytes", func(t *testing.T, p string) {
			rewrite(t, p, func(b []byte) []byte {
				r := rand.New(rand.NewPCG(1, 2))
				for i := range b {
					b[i] = byte(r.Uint32())
				}
				return b
			})
		}, ""},
		{"both meta pages zeroed", func(t *testing.T, p string) {
			rewrite(t, p, func(b []byte) []byte { copy(b, make([]byte, 2*ps)); return b })
		}, ""},
		{"truncated after the meta pages", func(t *testing.T, p string) {
			if err := os.Truncate(p, int64(2*ps)); err != nil {
				t.Fatal(err)
			}
		}, "truncated: the store spans"},
		{"truncated mid-page", func(t *testing.T, p string) {
			if err := os.Truncate(p, int64(3*ps+100)); err != nil {
				t.Fatal(err)
			}
		}, "truncated: the store spans"},
		{"data pages filled with 0xff", func(t *testing.T, p string) { rewrite(t, p, fill(2*ps, 0xff)) }, ""},
		{"data pages zeroed", func(t *testing.T, p string) { rewrite(t, p, fill(2*ps, 0)) }, ""},
		{"data pages scrambled", func(t *testing.T, p string) {
			rewrite(t, p, func(b []byte) []byte {
				r := rand.New(rand.NewPCG(3, 4))
				for i := 2 * ps; i < len(b); i++ {
					b[i] = byte(r.Uint32())
				}
				return b
			})
		}, ""},
		{"page headers point far away", func(t *testing.T, p string) {
			rewrite(t, p, func(b []byte) []byte {
				for off := 2 * ps; off+16 <= len(b); off += ps {
					copy(b[off+8:off+16], bytes.Repeat([]byte{0x7f}, 8)) // flags, count, overflow
				}
				return b
			})
		}, ""},
		{"leaf pages scrambled", func(t *testing.T, p string) {
			r := rand.New(rand.NewPCG(5, 6))
			damagePages(t, p, pageLeaf, func(pg []byte) {
				for i := 16; i < len(pg); i++ {
					pg[i] = byte(r.Uint32())
				}
			})
		}, ""},
		{"leaf pages claim too many elements", func(t *testing.T, p string) {
			damagePages(t, p, pageLeaf, func(pg []byte) { pg[10], pg[11] = 0xff, 0xff })
		}, ""},
		{"leaf elements point past the page", func(t *testing.T, p string) {
			damagePages(t, p, pageLeaf, func(pg []byte) {
				for i := 16; i+16 <= 16+16*4 && i+16 <= len(pg); i += 16 {
					copy(pg[i+4:i+8], []byte{0xff, 0xff, 0xff, 0x0f}) // pos
				}
			})
		}, ""},
		{"leaf pages turned into branch pages", func(t *testing.T, p string) {
			damagePages(t, p, pageLeaf, func(pg []byte) { pg[8] = pageBranch })
		}, ""},
		{"a plan that is not JSON", func(t *testing.T, p string) {
			db, err := bolt.Open(p, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketPlans).Put([]byte("billing"), []byte("{oops")) }); err != nil {
				t.Fatal(err)
			}
			db.Close()
		}, ""},
		{"a plan under another app's key", func(t *testing.T, p string) {
			db, err := bolt.Open(p, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(func(tx *bolt.Tx) error {
				return tx.Bucket(bucketPlans).Put([]byte("billing"), []byte(`{"app":"echo","digest":"sha256:`+strings.Repeat("ab", 32)+`"}`))
			}); err != nil {
				t.Fatal(err)
			}
			db.Close()
		}, `the record names app "echo"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := seedStore(t)
			tc.damage(t, path)
			before, rerr := os.ReadFile(path)
			if rerr != nil {
				t.Fatal(rerr)
			}
			f, err := New(Options{DataDir: filepath.Dir(path)})
			if err == nil {
				f.Close()
				t.Fatal("a damaged store opened")
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Errorf("opening the damaged store changed it (%d bytes, then %d)", len(before), len(after))
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v, want ErrCorrupt", err)
			}
			for _, w := range []string{path, "Restore the file from a backup", "move it aside", tc.cause} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
			t.Logf("%v", err)
		})
	}
}

// TestOpenStoreNotCorrupt: an intact store, an empty file and a missing file
// open; a path that is a directory is an error, but not corruption.
func TestOpenStoreNotCorrupt(t *testing.T) {
	path := seedStore(t)
	f, err := New(Options{DataDir: filepath.Dir(path)})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Plans()) != 3 {
		t.Fatalf("plans %v, want 3", f.Plans())
	}
	f.Close()

	for _, prep := range []func(p string) error{
		func(p string) error { return os.Truncate(p, 0) },
		os.Remove,
	} {
		path := seedStore(t)
		if err := prep(path); err != nil {
			t.Fatal(err)
		}
		f, err := New(Options{DataDir: filepath.Dir(path)})
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Plans()) != 0 {
			t.Fatalf("plans %v in a fresh store", f.Plans())
		}
		f.Close()
	}

	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "fabric.db"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{DataDir: dir}); err == nil || errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("directory as store: %v", err)
	}
}

// bbolt page flags (the uint16 at offset 8 of each page header).
const (
	pageBranch = 0x01
	pageLeaf   = 0x02
)

// damagePages applies fn to every page of the given type after the meta
// pages, leaving the meta pages and the freelist intact.
func damagePages(t *testing.T, path string, flag byte, fn func(page []byte)) {
	t.Helper()
	ps := os.Getpagesize()
	n := 0
	rewrite(t, path, func(b []byte) []byte {
		for off := 2 * ps; off+ps <= len(b); off += ps {
			if b[off+8] == flag && b[off+9] == 0 {
				fn(b[off : off+ps])
				n++
			}
		}
		return b
	})
	if n == 0 {
		t.Fatalf("no page of type %#x in %s", flag, path)
	}
}
