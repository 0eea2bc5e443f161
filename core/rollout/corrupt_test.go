package rollout

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// seedCorruptible writes a store holding rollouts of a few apps, large
// enough to span several data pages, and returns its path.
func seedCorruptible(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rollouts.db")
	s, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		r := Rollout{App: fmt.Sprintf("app%d", i%4), Digest: "sha256:" + strings.Repeat(fmt.Sprintf("%02x", i), 32), State: Pending,
			Started: time.Unix(int64(1000+i), 0).UTC(), Detail: strings.Repeat("detail ", 20)}
		if err := s.Create(&r, nil); err != nil {
			t.Fatal(err)
		}
		if i < 58 {
			if err := r.To(Progressing, r.Started, ""); err != nil {
				t.Fatal(err)
			}
			if err := r.To(Succeeded, r.Started.Add(time.Second), ""); err != nil {
				t.Fatal(err)
			}
			if err := s.Save(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func rewriteFile(t *testing.T, path string, fn func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, fn(b), 0o600); err != nil {
		t.Fatal(err)
	}
}

func putRaw(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// openDamaged opens a damaged store and checks that it is refused with an
// ErrCorrupt that names the file and what to do, and left unchanged.
func openDamaged(t *testing.T, path, cause string) {
	t.Helper()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, 0)
	if err == nil {
		s.Close()
		t.Fatal("a damaged rollout store opened")
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Errorf("opening the damaged store changed it")
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("error %v, want ErrCorrupt", err)
	}
	for _, w := range []string{path, "Restore the file from a backup", "move it aside", cause} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
}

// TestOpenCorruptRolloutStore: damage to rollouts.db is an ErrCorrupt
// naming the file and what to do, as for fabric.db; none panics.
func TestOpenCorruptRolloutStore(t *testing.T) {
	ps := os.Getpagesize()
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
		cause  string
	}{
		{"not a bbolt file", func(t *testing.T, p string) {
			rewriteFile(t, p, func([]byte) []byte { return []byte("not a database\n") })
		}, "invalid database"},
		{"truncated after the meta pages", func(t *testing.T, p string) {
			if err := os.Truncate(p, int64(2*ps+100)); err != nil {
				t.Fatal(err)
			}
		}, "truncated: the store spans"},
		{"data pages scrambled", func(t *testing.T, p string) {
			rewriteFile(t, p, func(b []byte) []byte {
				r := rand.New(rand.NewPCG(7, 8))
				for i := 2 * ps; i < len(b); i++ {
					b[i] = byte(r.Uint32())
				}
				return b
			})
		}, ""},
		{"a rollout that is not JSON", func(t *testing.T, p string) {
			putRaw(t, p, func(tx *bolt.Tx) error { return tx.Bucket(bucketRollouts).Put(seqKey(3), []byte("{oops")) })
		}, "decode rollout 3"},
		{"a rollout in an unknown state", func(t *testing.T, p string) {
			putRaw(t, p, func(tx *bolt.Tx) error {
				return tx.Bucket(bucketRollouts).Put(seqKey(3), []byte(`{"id":"app2-3","seq":3,"app":"app2","state":"dancing"}`))
			})
		}, `unknown state "dancing"`},
		{"a rollout under another sequence", func(t *testing.T, p string) {
			putRaw(t, p, func(tx *bolt.Tx) error {
				return tx.Bucket(bucketRollouts).Put(seqKey(3), []byte(`{"id":"app2-4","seq":4,"app":"app2","state":"succeeded"}`))
			})
		}, "sequence 4"},
		{"an index naming a missing rollout", func(t *testing.T, p string) {
			putRaw(t, p, func(tx *bolt.Tx) error { return tx.Bucket(bucketRollouts).Delete(seqKey(59)) })
		}, "which is missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := seedCorruptible(t)
			tc.damage(t, path)
			openDamaged(t, path, tc.cause)
		})
	}
}

// TestOpenRolloutStoreEachPageDamaged garbles each page of a store in turn,
// as a bad disk would: opening either refuses with ErrCorrupt or, for a page
// nothing reaches (a free page), works; it never panics.
func TestOpenRolloutStoreEachPageDamaged(t *testing.T) {
	ps := os.Getpagesize()
	seed := seedCorruptible(t)
	orig, err := os.ReadFile(seed)
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for pg := 2; pg*ps < len(orig); pg++ {
		path := filepath.Join(t.TempDir(), "rollouts.db")
		b := bytes.Clone(orig)
		r := rand.New(rand.NewPCG(uint64(pg), 9))
		for i := pg * ps; i < pg*ps+300; i++ {
			b[i] = byte(r.Uint32())
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path, 0)
		if err == nil {
			if _, herr := s.History("app1", 0); herr != nil {
				t.Errorf("page %d: opened, then history failed: %v", pg, herr)
			}
			s.Close()
			continue
		}
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
			t.Errorf("page %d: error %v, want ErrCorrupt naming the file", pg, err)
		}
		refused++
	}
	if refused == 0 {
		t.Fatal("no damaged page was noticed")
	}
}

// TestOpenRolloutStoreEmptyFile: an empty file is a new store, as a
// missing one is.
func TestOpenRolloutStoreEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rollouts.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if act, err := s.Active(); err != nil || len(act) != 0 {
		t.Fatalf("active: %v %v", act, err)
	}
}
