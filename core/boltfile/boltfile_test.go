package boltfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestOpen(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		damaged bool   // a *DamageError
		err     string // in the error; "" = opens
	}{
		{"missing file", func(*testing.T, string) {}, false, ""},
		{"empty file", func(t *testing.T, p string) { write(t, p, nil) }, false, ""},
		{"a store with nested buckets", func(t *testing.T, p string) {
			db, err := bolt.Open(p, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket([]byte("a"))
				if err != nil {
					return err
				}
				nb, err := b.CreateBucket([]byte("b"))
				if err != nil {
					return err
				}
				return nb.Put([]byte("k"), []byte("v"))
			})
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
		}, false, ""},
		{"not a bbolt file", func(t *testing.T, p string) { write(t, p, []byte("hello, world\n")) }, true, "invalid database"},
		{"a directory", func(t *testing.T, p string) {
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
		}, false, "not a regular file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "store.db")
			tc.prepare(t, path)
			db, err := Open(path)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				db.Close()
				return
			}
			if err == nil {
				db.Close()
				t.Fatal("opened")
			}
			var d *DamageError
			if errors.As(err, &d) != tc.damaged || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v (damage: %v), want %q naming the file (damage: %v)", err, d != nil, tc.err, tc.damaged)
			}
		})
	}
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
