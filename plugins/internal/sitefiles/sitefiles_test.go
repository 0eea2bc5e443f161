package sitefiles

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mycelium-mesh/mesh/sdk"
)

func TestList(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "ok", "css"), 0o755))
	must(os.WriteFile(filepath.Join(root, "ok", "index.html"), []byte("hi"), 0o644))
	must(os.WriteFile(filepath.Join(root, "ok", "css", "a.css"), []byte("body{}"), 0o644))
	must(os.MkdirAll(filepath.Join(root, "link"), 0o755))
	must(os.Symlink("/etc/passwd", filepath.Join(root, "link", "passwd")))

	cases := []struct {
		dir     string
		lim     Limits
		want    []string
		wantErr string
	}{
		{"ok", Limits{}, []string{"css/a.css", "index.html"}, ""},
		{"ok", Limits{MaxFiles: 1}, nil, "more than 1 files"},
		{"ok", Limits{MaxFileSize: 3}, nil, "over the limit"},
		{"link", Limits{}, nil, "not a regular file"},
		{"missing", Limits{}, nil, "site directory"},
	}
	for _, c := range cases {
		got, err := List(filepath.Join(root, c.dir), c.lim)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s %+v: err %v, want %q", c.dir, c.lim, err, c.wantErr)
			}
			continue
		}
		if err != nil || len(got) != len(c.want) {
			t.Fatalf("%s: %v %v", c.dir, got, err)
		}
		for i, f := range got {
			if f.Name != c.want[i] {
				t.Errorf("%s: file %d is %s, want %s", c.dir, i, f.Name, c.want[i])
			}
		}
	}
}

func TestDirAndContentType(t *testing.T) {
	site := sdk.SiteConfig{Site: sdk.SiteInfo{ID: "blog"}}
	if d := Dir("/r", site); d != "/r/blog" {
		t.Errorf("Dir without build: %s", d)
	}
	site.Build = &sdk.BuildInfo{OutputDir: "blog/public"}
	if d := Dir("/r", site); d != "/r/blog/public" {
		t.Errorf("Dir with outputDir: %s", d)
	}
	for name, want := range map[string]string{"a.html": "text/html; charset=utf-8", "x/y.CSS": "text/css; charset=utf-8", "logo.png": "image/png", "blob": "application/octet-stream"} {
		if got := ContentType(name); got != want {
			t.Errorf("ContentType(%s) = %s, want %s", name, got, want)
		}
	}
}
