package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSporeCommands(t *testing.T) {
	mesh := buildConfigMesh(t)
	dir := t.TempDir()
	must := func(name string, code int, stdout, stderr string, want int) {
		t.Helper()
		if code != want {
			t.Fatalf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", name, code, want, stdout, stderr)
		}
	}
	write := func(name, body string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("app", "#!/bin/sh\necho hello\n", 0o755)
	write("manifest.json", `{"identity":{"name":"hello","version":"1.0.0"},"runtime":{"args":["-v"],"env":{"MODE":"test"}},
		"resources":{"nutrients":{"cpu_milli":100,"memory_mb":16}},"slo":{"p99_budget_ms":20},"security":{"lsm_profile":"","read_only_fs":true}}`, 0o644)

	code, out, errOut := runConfigMesh(t, mesh, dir, "keygen", "-out", "signer")
	must("keygen", code, out, errOut, 0)
	pubText, err := os.ReadFile(filepath.Join(dir, "signer.pub"))
	if err != nil {
		t.Fatal(err)
	}
	var signer string
	for _, l := range strings.Split(string(pubText), "\n") {
		if strings.HasPrefix(l, "ed25519:") {
			signer = l
		}
	}
	if signer == "" || !strings.Contains(out, signer) {
		t.Fatalf("keygen printed %q, pub file holds %q", out, pubText)
	}
	if st, err := os.Stat(filepath.Join(dir, "signer.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v %v", st, err)
	}
	code, out, errOut = runConfigMesh(t, mesh, dir, "keygen", "-out", "signer")
	must("keygen again", code, out, errOut, 1)

	code, out, errOut = runConfigMesh(t, mesh, dir, "pack", "-binary", "app", "-manifest", "manifest.json", "-key", "signer.key", "-out", "hello.spore")
	must("pack", code, out, errOut, 0)
	// sha256 of "#!/bin/sh\necho hello\n"
	const digest = "bfdeaeb08cffb6a36438bcd12dda25417e3cdd36f1e7e482a2849d539225288b"
	if !strings.Contains(out, digest) || !strings.Contains(out, signer) {
		t.Fatalf("pack output lacks digest or signer:\n%s", out)
	}

	for _, trust := range []string{"signer.pub", signer} {
		code, out, errOut = runConfigMesh(t, mesh, dir, "verify", "-trust", trust, "hello.spore")
		must("verify -trust "+trust, code, out, errOut, 0)
		if want := "OK hello 1.0.0 " + signer + "\n"; out != want {
			t.Fatalf("verify printed %q, want %q", out, want)
		}
	}

	code, out, errOut = runConfigMesh(t, mesh, dir, "inspect", "hello.spore")
	must("inspect", code, out, errOut, 0)
	if !strings.Contains(strings.ToLower(errOut), "not verified") {
		t.Fatalf("inspect does not say it did not verify: %q", errOut)
	}
	var m struct {
		Identity  struct{ Kind, Name, Version string }
		Runtime   struct{ Command string }
		Integrity struct {
			BinarySHA256 string `json:"binary_sha256"`
			PublicKey    string `json:"public_key"`
		}
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("inspect output is not JSON: %v\n%s", err, out)
	}
	if m.Identity.Kind != "Spore" || m.Identity.Name != "hello" || m.Runtime.Command != "./binary" ||
		m.Integrity.BinarySHA256 != digest || m.Integrity.PublicKey != signer {
		t.Fatalf("inspect printed %+v", m)
	}

	// A key that did not sign the spore: refused, exit 1.
	code, out, errOut = runConfigMesh(t, mesh, dir, "keygen", "-out", "other")
	must("keygen other", code, out, errOut, 0)
	code, out, errOut = runConfigMesh(t, mesh, dir, "verify", "-trust", "other.pub", "hello.spore")
	must("verify untrusted", code, out, errOut, 1)
	if out != "" || !strings.Contains(errOut, "not trusted") {
		t.Fatalf("untrusted verify: stdout %q stderr %q", out, errOut)
	}
	code, out, errOut = runConfigMesh(t, mesh, dir, "verify", "-trust", "ed25519:garbage", "hello.spore")
	must("verify bad key text", code, out, errOut, 1)

	// Operator-written manifests may not carry integrity.
	write("signed.json", `{"identity":{"name":"a","version":"1"},"integrity":{"signature":"x"}}`, 0o644)
	code, out, errOut = runConfigMesh(t, mesh, dir, "pack", "-binary", "app", "-manifest", "signed.json", "-key", "signer.key", "-out", "x.spore")
	must("pack with integrity", code, out, errOut, 1)
	if _, err := os.Stat(filepath.Join(dir, "x.spore")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("failed pack left a spore behind")
	}

	// Usage errors: exit 2.
	for _, args := range [][]string{
		{"verify", "hello.spore"},
		{"verify", "-trust", "signer.pub"},
		{"pack", "-binary", "app", "-out", "y.spore"},
		{"keygen"},
		{"inspect"},
		{"verify", "-bogus", "hello.spore"},
	} {
		code, out, errOut = runConfigMesh(t, mesh, dir, args...)
		must(strings.Join(args, " "), code, out, errOut, 2)
		if !strings.Contains(errOut, "Usage: mesh "+args[0]) {
			t.Errorf("%v: no usage text in %q", args, errOut)
		}
	}
	code, _, errOut = runConfigMesh(t, mesh, dir, "pack", "-h")
	must("pack -h", code, "", errOut, 0)
}
