package sitesnap

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for n, body := range files {
		p := filepath.Join(dir, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestRoundTrip(t *testing.T) {
	src := writeTree(t, map[string]string{"index.html": "hi", "css/a.css": "body{}", "404.html": "nope"})
	m, err := Scan(src)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteTar(&b, src, m); err != nil {
		t.Fatal(err)
	}
	got, err := Extract(&b, filepath.Join(t.TempDir(), "x"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest() != m.Digest() {
		t.Fatalf("digest %s after extraction, want %s", got.Digest(), m.Digest())
	}
	// Content changes the digest; so does a rename.
	other := writeTree(t, map[string]string{"index.html": "hi!", "css/a.css": "body{}", "404.html": "nope"})
	m2, _ := Scan(other)
	renamed := writeTree(t, map[string]string{"index.htm": "hi", "css/a.css": "body{}", "404.html": "nope"})
	m3, _ := Scan(renamed)
	if m2.Digest() == m.Digest() || m3.Digest() == m.Digest() {
		t.Fatal("digest does not follow content and names")
	}
}

func TestScanRefusesLinks(t *testing.T) {
	src := writeTree(t, map[string]string{"index.html": "hi"})
	if err := os.Symlink("/etc/passwd", filepath.Join(src, "passwd")); err != nil {
		t.Fatal(err)
	}
	if _, err := Scan(src); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("scan with a link: %v", err)
	}
}

func TestExtractRefuses(t *testing.T) {
	tests := []struct {
		name string
		hdr  tar.Header
	}{
		{"climbing", tar.Header{Typeflag: tar.TypeReg, Name: "../evil", Size: 1}},
		{"absolute", tar.Header{Typeflag: tar.TypeReg, Name: "/etc/evil", Size: 1}},
		{"symlink", tar.Header{Typeflag: tar.TypeSymlink, Name: "l", Linkname: "/etc"}},
		{"too big", tar.Header{Typeflag: tar.TypeReg, Name: "big", Size: MaxFileSize + 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			tw := tar.NewWriter(&b)
			_ = tw.WriteHeader(&tt.hdr)
			if tt.hdr.Size == 1 {
				_, _ = tw.Write([]byte("x"))
			}
			_ = tw.Flush()
			if _, err := Extract(&b, filepath.Join(t.TempDir(), "x")); !errors.Is(err, ErrUnsafe) {
				t.Fatalf("extract: %v, want ErrUnsafe", err)
			}
		})
	}
}
