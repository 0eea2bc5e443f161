package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const testSites = `site "blog" {
  title = "A Blog"
  domains { primary = "blog.example.test" }
  build {
    output_dir = "blog"
  }
  hosting { provider = "localStatic" }
}

site "docs" {
  hosting { provider = "criomosHost" }
  purchase {
    provider = "gandi"
    domain   = "docs.example.test"
  }
}
`

func TestProvisionEncodeDecode(t *testing.T) {
	bin := buildConfigMesh(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sites.hcl"), []byte(testSites), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stream, errOut := runConfigMesh(t, bin, dir, "provision", "encode", "sites.hcl")
	if code != 0 {
		t.Fatalf("encode: exit %d: %s", code, errOut)
	}
	if err := os.WriteFile(filepath.Join(dir, "stream.bin"), []byte(stream), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runConfigMesh(t, bin, dir, "provision", "decode", "stream.bin")
	if code != 0 {
		t.Fatalf("decode: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"id":"blog"`) || !strings.Contains(lines[1], `"purchase":{"provider":"gandi"`) {
		t.Fatalf("decoded:\n%s", out)
	}

	// A broken description is refused with file and line, nothing written.
	bad := strings.Replace(testSites, `primary = "blog.example.test"`, `primary = "blog..test"`, 1)
	if err := os.WriteFile(filepath.Join(dir, "bad.hcl"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runConfigMesh(t, bin, dir, "provision", "encode", "bad.hcl")
	if code != 1 || out != "" || !strings.Contains(errOut, "bad.hcl line 3") || !strings.Contains(errOut, "domains.primary") {
		t.Fatalf("encode bad: exit %d\nstdout %q\nstderr %s", code, out, errOut)
	}
}

// provisionRun runs `mesh provision` on stdin and returns the exit code and
// the JSON lines it printed.
func provisionRun(t *testing.T, bin, dir string, stdin []byte, args ...string) (int, []map[string]any, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"provision", "-data-dir", filepath.Join(dir, "data")}, args...)...)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("stdout line %q is not JSON: %v", l, err)
		}
		lines = append(lines, m)
	}
	return code, lines, errOut.String()
}

func TestProvisionExitCodes(t *testing.T) {
	bin := buildConfigMesh(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sites.hcl"), []byte(testSites), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stream, _ := runConfigMesh(t, bin, dir, "provision", "encode", "sites.hcl")
	tests := []struct {
		name   string
		stdin  []byte
		args   []string
		code   int
		lines  int
		status string
	}{
		{"empty stream", nil, nil, 0, 0, ""},
		// No backend is mapped: configuration missing.
		{"no backend", []byte(stream), nil, 78, 2, "failed"},
		{"truncated", []byte(stream[:len(stream)-3]), nil, 2, 2, ""},
		{"garbage", []byte("not a capnp stream at all"), nil, 2, 1, "invalid"},
		{"oversized", []byte(stream), []string{"-max-message-size", "64"}, 1, 2, "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, lines, errOut := provisionRun(t, bin, dir, tt.stdin, tt.args...)
			if code != tt.code || len(lines) != tt.lines {
				t.Fatalf("exit %d with %d lines %v, want %d with %d\n%s", code, len(lines), lines, tt.code, tt.lines, errOut)
			}
			for _, l := range lines {
				if tt.status != "" && l["status"] != tt.status {
					t.Fatalf("line %v, want status %s", l, tt.status)
				}
			}
		})
	}
}

// The daemon stops on SIGTERM, removes its socket and exits 0.
func TestProvisionDaemonSIGTERM(t *testing.T) {
	bin := buildConfigMesh(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "p.sock")
	cmd := exec.Command(bin, "provision", "-data-dir", filepath.Join(dir, "data"), "-listen", "unix://"+sock)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && !strings.Contains(sc.Text(), "accepting producers") {
	}
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("socket: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, stderr)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
}
