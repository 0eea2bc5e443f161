package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/internal/testutil"
)

// provisionWithPlugin sets up a directory with the example hosting plugin
// mapped to localStatic, a site's files and its description.
func provisionWithPlugin(t *testing.T) (bin, dir string) {
	t.Helper()
	bins := t.TempDir()
	bin = buildConfigMesh(t)
	plugin, err := testutil.Build(bins, "./examples/hosting-plugin", "dir-publish")
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	files := map[string]string{
		"mesh.hcl": `data_dir = "./data"
plugin "hosting" "dir-publish" {
  command = "` + plugin + `"
  config {
    sites_root  = "./sites"
    publish_dir = "./www"
  }
}
provision {
  providers = { localStatic = "dir-publish" }
}
`,
		"sites/blog/public/index.html": "<h1>blog v1</h1>",
		"sites/docs/index.html":        "<h1>docs v1</h1>",
		"sites.hcl": `site "blog" {
  build   { output_dir = "public" }
  hosting { provider = "localStatic" }
}
site "docs" {
  hosting { provider = "localStatic" }
}
`,
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return bin, dir
}

func encodeSites(t *testing.T, bin, dir, file string) []byte {
	t.Helper()
	code, out, errOut := runConfigMesh(t, bin, dir, "provision", "encode", file)
	if code != 0 {
		t.Fatalf("encode: %s", errOut)
	}
	return []byte(out)
}

// A slow producer sees the first message applied before it sends the
// second; the same stream again is all unchanged and writes nothing.
func TestProvisionPluginStreamingAndIdempotence(t *testing.T) {
	bin, dir := provisionWithPlugin(t)
	stream := encodeSites(t, bin, dir, "sites.hcl")

	cmd := exec.Command(bin, "provision", "-config", "mesh.hcl")
	cmd.Dir = dir
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr testutil.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := bufio.NewScanner(stdout)
	next := func() map[string]any {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("no result line; stderr:\n%s", stderr.String())
		}
		var m map[string]any
		if err := json.Unmarshal(lines.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	first, second := splitStream(t, bin, dir, stream)
	if _, err := stdin.Write(first); err != nil {
		t.Fatal(err)
	}
	if r := next(); r["site"] != "blog" || r["status"] != "applied" {
		t.Fatalf("first: %v\n%s", r, stderr.String())
	}
	if b, err := os.ReadFile(filepath.Join(dir, "www", "blog", "index.html")); err != nil || string(b) != "<h1>blog v1</h1>" {
		t.Fatalf("blog published before the second message was sent: %q %v", b, err)
	}
	if _, err := stdin.Write(second); err != nil {
		t.Fatal(err)
	}
	if r := next(); r["site"] != "docs" || r["status"] != "applied" {
		t.Fatalf("second: %v", r)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr.String())
	}

	before, _ := os.Stat(filepath.Join(dir, "www", "blog.version"))
	code, out := runProvisionConfig(t, bin, dir, stream)
	if code != 0 {
		t.Fatalf("second run exit %d", code)
	}
	for _, r := range out {
		if r["status"] != "unchanged" {
			t.Fatalf("second run: %v", r)
		}
	}
	after, _ := os.Stat(filepath.Join(dir, "www", "blog.version"))
	if !after.ModTime().Equal(before.ModTime()) {
		t.Fatal("second run rewrote the published site")
	}

	// A change is planned with -plan and not applied.
	if err := os.WriteFile(filepath.Join(dir, "sites", "blog", "public", "index.html"), []byte("<h1>blog v2</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out = runProvisionConfig(t, bin, dir, first, "-plan")
	if code != 0 || len(out) != 1 || out[0]["status"] != "planned" {
		t.Fatalf("plan: %d %v", code, out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "www", "blog", "index.html")); string(b) != "<h1>blog v1</h1>" {
		t.Fatal("-plan changed the site")
	}
	code, out = runProvisionConfig(t, bin, dir, first)
	if code != 0 || out[0]["status"] != "applied" {
		t.Fatalf("apply v2: %d %v", code, out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "www", "blog", "index.html")); string(b) != "<h1>blog v2</h1>" {
		t.Fatalf("v2 not published: %q", b)
	}
}

// splitStream returns the first message and the rest, using `provision
// decode` on growing prefixes: no framing knowledge in the test.
func splitStream(t *testing.T, bin, dir string, stream []byte) ([]byte, []byte) {
	t.Helper()
	for n := 1; n <= len(stream); n++ {
		cmd := exec.Command(bin, "provision", "decode")
		cmd.Dir = dir
		cmd.Stdin = strings.NewReader(string(stream[:n]))
		out, _ := cmd.Output()
		if cmd.ProcessState.ExitCode() == 0 && strings.Count(string(out), "\n") == 1 {
			return stream[:n], stream[n:]
		}
	}
	t.Fatal("no message boundary")
	return nil, nil
}

func runProvisionConfig(t *testing.T, bin, dir string, stdin []byte, args ...string) (int, []map[string]any) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"provision", "-config", "mesh.hcl"}, args...)...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(string(stdin))
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	_ = cmd.Wait()
	return cmd.ProcessState.ExitCode(), out
}

// A hosting plugin killed between messages is restarted by the plugin host
// and the next message is applied.
func TestProvisionPluginRestart(t *testing.T) {
	bin, dir := provisionWithPlugin(t)
	stream := encodeSites(t, bin, dir, "sites.hcl")
	first, _ := splitStream(t, bin, dir, stream)
	sock := filepath.Join(dir, "p.sock")
	cmd := exec.Command(bin, "provision", "-config", "mesh.hcl", "-listen", "unix://"+sock)
	cmd.Dir = dir
	var stderr testutil.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	send := func(msg []byte) map[string]any {
		t.Helper()
		var c net.Conn
		var err error
		for i := 0; i < 200; i++ { // until the daemon listens
			if c, err = net.Dial("unix", sock); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("dial: %v\n%s", err, stderr.String())
		}
		defer c.Close()
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		_ = c.(*net.UnixConn).CloseWrite()
		sc := bufio.NewScanner(c)
		if !sc.Scan() {
			t.Fatalf("no reply\n%s", stderr.String())
		}
		var m map[string]any
		_ = json.Unmarshal(sc.Bytes(), &m)
		return m
	}
	if r := send(first); r["status"] != "applied" {
		t.Fatalf("first: %v", r)
	}
	kids := testutil.Children(cmd.Process.Pid)
	if len(kids) != 1 {
		t.Fatalf("plugin processes %v", kids)
	}
	if err := syscall.Kill(kids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if gone := testutil.WaitGone(kids, 5*time.Second); len(gone) != 0 {
		t.Fatalf("plugin %v still running", gone)
	}
	if err := os.WriteFile(filepath.Join(dir, "sites", "blog", "public", "index.html"), []byte("<h1>blog v2</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := send(first); r["status"] != "applied" {
		t.Fatalf("after the plugin was killed: %v\n%s", r, stderr.String())
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "www", "blog", "index.html")); string(b) != "<h1>blog v2</h1>" {
		t.Fatalf("v2 not published: %q", b)
	}
}
