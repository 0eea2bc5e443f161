package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func TestHandler(t *testing.T) {
	dir := t.TempDir()
	for n, b := range map[string]string{"index.html": "home", "docs/index.html": "docs", "404.html": "lost", "a.css": "body{}"} {
		p := filepath.Join(dir, n)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(handler(dir))
	defer srv.Close()
	tests := []struct {
		path, rng string
		code      int
		body      string
	}{
		{"/", "", 200, "home"},
		{"/docs/", "", 200, "docs"},
		{"/index.html", "", 200, "home"},
		{"/a.css", "bytes=0-3", 206, "body"},
		{"/missing", "", 404, "lost"},
		{"/health", "", 200, ""},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+tt.path, nil)
		if tt.rng != "" {
			req.Header.Set("Range", tt.rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.code || string(b) != tt.body {
			t.Errorf("%s: %d %q, want %d %q", tt.path, resp.StatusCode, b, tt.code, tt.body)
		}
	}
}
