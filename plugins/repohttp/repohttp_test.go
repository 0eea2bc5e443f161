package repohttp_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/plugins/repohttp"
	"github.com/mycelium-mesh/mesh/sdk"
	"github.com/mycelium-mesh/mesh/sdk/plugintest"
)

func TestMain(m *testing.M) {
	plugintest.ServeIfLaunched(func() sdk.Plugin { return repohttp.New() })
	os.Exit(m.Run())
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// server is a stand-in for a mesh's control API serving its repo on
// loopback: it checks the bearer token, serves what it holds and stores
// what is posted.
type server struct {
	token string
	mu    sync.Mutex
	blobs map[string][]byte
	auths []string
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auths = append(s.auths, r.Header.Get("Authorization"))
	if r.Header.Get("Authorization") != "Bearer "+s.token {
		http.Error(w, `{"error":"missing or wrong bearer token"}`, http.StatusUnauthorized)
		return
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == repohttp.SporePath:
		b, _ := io.ReadAll(r.Body)
		d := digestOf(b)
		s.blobs[d] = b
		_ = json.NewEncoder(w).Encode(map[string]string{"digest": d})
	case strings.HasPrefix(r.URL.Path, repohttp.SporePath+"/"):
		b, ok := s.blobs[strings.TrimPrefix(r.URL.Path, repohttp.SporePath+"/")]
		if !ok {
			http.Error(w, `{"error":"not here"}`, http.StatusNotFound)
			return
		}
		if r.Method == http.MethodGet {
			_, _ = w.Write(b)
		}
	default:
		http.Error(w, "no route", http.StatusNotFound)
	}
}

// The real plugin process fetches, checks and publishes blobs over HTTP
// with the token from token_file, and reports the server's errors.
func TestBackendOverHTTP(t *testing.T) {
	srv := &server{token: "s3cret", blobs: map[string][]byte{}}
	hs := httptest.NewServer(srv) // 127.0.0.1
	defer hs.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rb := plugintest.Launch(t, sdk.KindRepo).(sdk.RepoBackend)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := rb.Configure(ctx, sdk.Config{"url": hs.URL + "/", "token_file": tokenFile}); err != nil {
		t.Fatal(err)
	}

	big := make([]byte, 3*sdk.ChunkSize+17)
	_, _ = rand.Read(big)
	held := []byte("held by the server")
	srv.blobs[digestOf(held)] = held
	tests := []struct {
		name      string
		blob      []byte
		publish   bool
		wantFound bool
	}{
		{"held", held, false, true},
		{"published, several chunks", big, true, true},
		{"missing", []byte("nobody has this"), false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := digestOf(tc.blob)
			if tc.publish {
				if err := rb.Put(ctx, d, bytes.NewReader(tc.blob)); err != nil {
					t.Fatalf("put: %v", err)
				}
			}
			has, err := rb.Has(ctx, d)
			if err != nil || has != tc.wantFound {
				t.Fatalf("has = %v, %v; want %v", has, err, tc.wantFound)
			}
			rc, found, err := rb.Get(ctx, d)
			if err != nil || found != tc.wantFound {
				t.Fatalf("get found = %v, %v; want %v", found, err, tc.wantFound)
			}
			if !found {
				return
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, tc.blob) {
				t.Fatalf("get: %d bytes, %v; want the %d bytes stored", len(got), err, len(tc.blob))
			}
		})
	}
	srv.mu.Lock()
	for _, a := range srv.auths {
		if a != "Bearer s3cret" {
			t.Errorf("a request carried Authorization %q", a)
		}
	}
	srv.mu.Unlock()

	// A wrong token: the server's refusal is reported, not taken for a miss.
	if err := os.WriteFile(tokenFile, []byte("wrong"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := rb.Configure(ctx, sdk.Config{"url": hs.URL, "token_file": tokenFile}); err != nil {
		t.Fatal(err)
	}
	_, _, err := rb.Get(ctx, digestOf(held))
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "wrong bearer token") {
		t.Fatalf("get with a wrong token: %v", err)
	}
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     sdk.Config
		wantErr string
	}{
		{"ok", sdk.Config{"url": "http://10.0.0.1:7070"}, ""},
		{"no url", sdk.Config{}, "url"},
		{"not http", sdk.Config{"url": "ftp://x"}, "want http://"},
		{"no host", sdk.Config{"url": "http://"}, "want http://"},
		{"query", sdk.Config{"url": "http://x/?a=1"}, "no query"},
		{"missing token file", sdk.Config{"url": "http://x", "token_file": filepath.Join(dir, "nope")}, "token_file"},
		{"empty token file", sdk.Config{"url": "http://x", "token_file": empty}, "is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := repohttp.New().(sdk.ConfigValidator).ValidateConfig(context.Background(), tc.cfg)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}
