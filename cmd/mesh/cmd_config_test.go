package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mycelium-mesh/mesh/core/spore"
)

// buildConfigMesh builds the mesh binary into a temporary directory.
func buildConfigMesh(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mesh")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runConfigMesh runs the built binary and returns its exit code and output.
func runConfigMesh(t *testing.T, bin, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	default:
		t.Fatalf("run mesh %v: %v", args, err)
	}
	return code, out.String(), errOut.String()
}

func TestValidateCommand(t *testing.T) {
	bin := buildConfigMesh(t)
	example, err := filepath.Abs(filepath.Join("..", "..", "examples", "mesh.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.hcl")
	src := "edge {\n  listen = \"127.0.0.1:8080\"\n}\n\napp \"billing\" {\n  digest = \"sha256:1234\"\n  min    = 1\n}\n"
	if err := os.WriteFile(broken, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	warn := filepath.Join(dir, "warn.hcl")
	if err := os.WriteFile(warn, []byte("control {\n  socket = \"\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	public := filepath.Join(dir, "public.hcl")
	if err := os.WriteFile(public, []byte("control {\n  listen = \"0.0.0.0:7000\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		dir        string
		args       []string
		code       int
		stdout     []string
		stderr     []string
		stderrNone bool
	}{
		{
			name: "example", dir: dir, args: []string{"validate", example}, code: 0,
			stdout: []string{"Configuration is valid."}, stderrNone: true,
		},
		{
			name: "broken", dir: dir, args: []string{"validate", "broken.hcl"}, code: 1,
			stderr: []string{
				"Error: Invalid digest",
				`on broken.hcl line 6, in app "billing":`,
				`   6:   digest = "sha256:1234"`,
				"want 64 hex digits",
			},
		},
		{
			name: "warnings only", dir: dir, args: []string{"validate", warn}, code: 0,
			stdout: []string{"Configuration is valid."},
			stderr: []string{"Warning: Control API disabled", "line 1"},
		},
		{
			name: "control listen off loopback", dir: dir, args: []string{"validate", "public.hcl"}, code: 1,
			stderr: []string{"Error: Control listener without token", "on public.hcl line 2", `"0.0.0.0:7000"`},
		},
		{
			name: "default file missing", dir: dir, args: []string{"validate"}, code: 1,
			stderr: []string{"Cannot read configuration file", "mesh.hcl"},
		},
		{
			name: "too many files", dir: dir, args: []string{"validate", "a.hcl", "b.hcl"}, code: 2,
			stderr: []string{"Usage: mesh validate"},
		},
		{
			name: "help", dir: dir, args: []string{"validate", "-h"}, code: 0,
			stdout: []string{"Usage: mesh validate [FILE.hcl | -config FILE.hcl]"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runConfigMesh(t, bin, tt.dir, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			for _, w := range tt.stdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, w := range tt.stderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if tt.stderrNone && stderr != "" {
				t.Errorf("unexpected stderr:\n%s", stderr)
			}
			if tt.code != 0 && strings.Contains(stdout, "valid") {
				t.Errorf("failed validation claims success: %s", stdout)
			}
		})
	}
}

func TestPublishCommand(t *testing.T) {
	bin := buildConfigMesh(t)
	dir := t.TempDir()
	repoDir := filepath.Join(dir, "repo")

	// A real signed spore, and a key that did not sign it.
	pub, priv, err := spore.GenerateKeyPair(filepath.Join(dir, "signer"))
	if err != nil {
		t.Fatal(err)
	}
	otherPub, _, err := spore.GenerateKeyPair(filepath.Join(dir, "other"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := spore.ReadPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	binPath := filepath.Join(dir, "app-binary")
	if err := os.WriteFile(binPath, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	sporePath := filepath.Join(dir, "billing.spore")
	f, err := os.Create(sporePath)
	if err != nil {
		t.Fatal(err)
	}
	m := spore.Manifest{}
	m.Identity = spore.Identity{Kind: "Spore", Name: "billing", Version: "v1"}
	if _, err := spore.Pack(f, binPath, m, key); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(sporePath)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	want := "sha256:" + hex.EncodeToString(sum[:])

	// Publishing twice prints the same digest and stores one file.
	for i := 0; i < 2; i++ {
		code, stdout, stderr := runConfigMesh(t, bin, dir, "publish", "-repo", repoDir, sporePath)
		if code != 0 {
			t.Fatalf("publish #%d: exit %d: %s", i+1, code, stderr)
		}
		if got := strings.TrimSpace(stdout); got != want {
			t.Fatalf("publish #%d printed %q, want %q", i+1, got, want)
		}
	}
	ents, err := os.ReadDir(repoDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != strings.TrimPrefix(want, "sha256:")+".spore" {
		t.Fatalf("repo holds %v", ents)
	}

	// With -trust the spore is verified first.
	repo2 := filepath.Join(dir, "repo2")
	code, stdout, stderr := runConfigMesh(t, bin, dir, "publish", "-repo", repo2, "-trust", otherPub, "-trust", pub, sporePath)
	if code != 0 || strings.TrimSpace(stdout) != want {
		t.Fatalf("trusted publish: exit %d, stdout %q, stderr %s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "verified billing v1") {
		t.Errorf("stderr lacks the verification note: %s", stderr)
	}
	repo3 := filepath.Join(dir, "repo3")
	code, stdout, stderr = runConfigMesh(t, bin, dir, "publish", "-repo", repo3, "-trust", otherPub, sporePath)
	if code != 1 || stdout != "" || !strings.HasPrefix(stderr, "Error: ") {
		t.Fatalf("untrusted publish: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, err := os.Stat(repo3); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused spore still touched the repo: %v", err)
	}

	// Usage errors and missing files.
	if code, _, _ := runConfigMesh(t, bin, dir, "publish", "-repo", repoDir); code != 2 {
		t.Errorf("publish without a file: exit %d, want 2", code)
	}
	code, _, stderr = runConfigMesh(t, bin, dir, "publish", "-repo", repoDir, filepath.Join(dir, "missing.spore"))
	if code != 1 || !strings.Contains(stderr, "missing.spore") {
		t.Errorf("publish of a missing file: exit %d, stderr %q", code, stderr)
	}
}
