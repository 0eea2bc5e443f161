package sitesnap

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestBundleRoundTrip(t *testing.T) {
	site := writeTree(t, map[string]string{"index.html": "hi", "a/b.css": "x"})
	server := filepath.Join(t.TempDir(), "server")
	if err := os.WriteFile(server, []byte("#!/bin/true\nnot really an executable"), 0o755); err != nil {
		t.Fatal(err)
	}
	m, err := Scan(site)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteBundle(&b, server, site, m); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "bundle")
	if err := os.WriteFile(p, b.Bytes(), 0o755); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(p)
	defer f.Close()
	archive, err := OpenBundle(f)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Extract(archive, filepath.Join(t.TempDir(), "out"))
	if err != nil || got.Digest() != m.Digest() {
		t.Fatalf("extracted %v %v, want %s", got.Digest(), err, m.Digest())
	}

	// A file without a trailer, or with a length past its start, is refused.
	plain, _ := os.Open(server)
	defer plain.Close()
	if _, err := OpenBundle(plain); !errors.Is(err, ErrNoBundle) {
		t.Fatalf("plain file: %v", err)
	}
	bad := append([]byte("x"), []byte{0xff, 0xff, 0, 0, 0, 0, 0, 0}...)
	bad = append(bad, bundleMagic...)
	bp := filepath.Join(t.TempDir(), "bad")
	_ = os.WriteFile(bp, bad, 0o644)
	bf, _ := os.Open(bp)
	defer bf.Close()
	if _, err := OpenBundle(bf); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("bad length: %v", err)
	}
}
