package controladdr

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		addr, base string
		ok         bool
	}{
		{"unix:///run/mesh/control.sock", "http://mesh", true},
		{"http://127.0.0.1:7070/", "http://127.0.0.1:7070", true},
		{"https://127.0.0.1:7070", "https://127.0.0.1:7070", true},
		{"unix://", "", false},
		{"127.0.0.1:7070", "", false},
		{"http://[::1", "", false},
	} {
		base, c, err := Parse(tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("Parse(%q) error = %v, want ok %v", tc.addr, err, tc.ok)
			continue
		}
		if tc.ok && (base != tc.base || c == nil) {
			t.Errorf("Parse(%q) = %q, %v; want %q and a client", tc.addr, base, c, tc.base)
		}
	}
}

// TestParseDialsTheSocket serves HTTP on a unix socket and reaches it
// through the client Parse returns.
func TestParseDialsTheSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "control.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(r.URL.Path))
	})}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())
	base, c, err := Parse("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(base + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
}
