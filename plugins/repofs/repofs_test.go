package repofs_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/plugins/repofs"
	"github.com/mycelium-mesh/mesh/sdk"
	"github.com/mycelium-mesh/mesh/sdk/plugintest"
)

func TestMain(m *testing.M) {
	plugintest.ServeIfLaunched(func() sdk.Plugin { return repofs.New() })
	os.Exit(m.Run())
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func TestPutGetHas(t *testing.T) {
	sizes := []struct {
		name string
		n    int
	}{
		{"empty", 0},
		{"small", 100},
		{"exactly one chunk", sdk.ChunkSize},
		{"several chunks", 3*sdk.ChunkSize + 17},
	}
	paths := map[string]func(t *testing.T) sdk.RepoBackend{
		"in-process gRPC": func(t *testing.T) sdk.RepoBackend { return plugintest.Repo(t, repofs.New()) },
		"subprocess":      func(t *testing.T) sdk.RepoBackend { return plugintest.Launch(t, sdk.KindRepo).(sdk.RepoBackend) },
	}
	for path, mk := range paths {
		t.Run(path, func(t *testing.T) {
			rb := mk(t)
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := rb.Configure(ctx, sdk.Config{"dir": dir}); err != nil {
				t.Fatal(err)
			}
			for _, sz := range sizes {
				t.Run(sz.name, func(t *testing.T) {
					blob := make([]byte, sz.n)
					rand.Read(blob)
					d := digestOf(blob)
					if ok, err := rb.Has(ctx, d); err != nil || ok {
						t.Fatalf("Has before Put = %v, %v", ok, err)
					}
					if _, found, err := rb.Get(ctx, d); err != nil || found {
						t.Fatalf("Get before Put: found=%v err=%v", found, err)
					}
					if err := rb.Put(ctx, d, bytes.NewReader(blob)); err != nil {
						t.Fatal(err)
					}
					if ok, err := rb.Has(ctx, d); err != nil || !ok {
						t.Fatalf("Has after Put = %v, %v", ok, err)
					}
					onDisk, err := os.ReadFile(filepath.Join(dir, strings.TrimPrefix(d, "sha256:")+".spore"))
					if err != nil || !bytes.Equal(onDisk, blob) {
						t.Fatalf("file on disk differs (err %v)", err)
					}
					rc, found, err := rb.Get(ctx, d)
					if err != nil || !found {
						t.Fatalf("Get = found %v, %v", found, err)
					}
					got, err := io.ReadAll(rc)
					rc.Close()
					if err != nil || !bytes.Equal(got, blob) {
						t.Fatalf("Get returned %d bytes (err %v), want %d", len(got), err, len(blob))
					}
				})
			}
			t.Run("mismatch refused and nothing left", func(t *testing.T) {
				d := digestOf([]byte("the real bytes"))
				err := rb.Put(ctx, d, strings.NewReader("other bytes"))
				if err == nil || !strings.Contains(err.Error(), "digest mismatch") {
					t.Fatalf("Put of wrong bytes: %v, want digest mismatch", err)
				}
				if ok, _ := rb.Has(ctx, d); ok {
					t.Fatal("blob stored despite mismatch")
				}
				left, _ := filepath.Glob(filepath.Join(dir, ".put-*"))
				if len(left) != 0 {
					t.Fatalf("temp files left behind: %v", left)
				}
			})
			t.Run("malformed digest", func(t *testing.T) {
				for _, d := range []string{"", "md5:abc", "sha256:xyz", "sha256:../../etc/passwd"} {
					if _, err := rb.Has(ctx, d); err == nil {
						t.Errorf("Has(%q) accepted a malformed digest", d)
					}
				}
			})
		})
	}
}

func TestConfigureRequiresDir(t *testing.T) {
	rb := plugintest.Repo(t, repofs.New())
	if err := rb.Configure(context.Background(), sdk.Config{}); err == nil || !strings.Contains(err.Error(), "dir") {
		t.Fatalf("Configure without dir: %v", err)
	}
	if _, err := rb.Has(context.Background(), digestOf(nil)); err == nil {
		t.Fatal("Has on an unconfigured backend succeeded")
	}
}

// ValidateConfig answers what Configure would say without creating the
// directory.
func TestValidateConfigCreatesNothing(t *testing.T) {
	v := plugintest.Repo(t, repofs.New())
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(dir, "not-yet")
	for _, tc := range []struct {
		name string
		cfg  sdk.Config
		want string // "" for accepted
	}{
		{"no dir", sdk.Config{}, "dir: is required"},
		{"a file", sdk.Config{"dir": file}, "not a directory"},
		{"a directory to create", sdk.Config{"dir": fresh}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := v.ValidateConfig(context.Background(), tc.cfg)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("ValidateConfig: %v, want %q", err, tc.want)
			}
			// The error names its attribute across gRPC.
			var ae *sdk.AttributeError
			if tc.want != "" && (!errors.As(err, &ae) || ae.Attribute != "dir") {
				t.Errorf("ValidateConfig: %v is not an AttributeError for dir", err)
			}
		})
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Fatalf("ValidateConfig created %s: %v", fresh, err)
	}
}
