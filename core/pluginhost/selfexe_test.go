package pluginhost_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/pluginhost"
	"github.com/mycelium-mesh/mesh/sdk"
)

// copyExec copies an executable to dst.
func copyExec(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// Replacing the mesh binary on disk (an upgrade under a running mesh) does
// not change the code a restarted bundled plugin runs: the host executes
// the binary it was started with.
func TestBundledRestartRunsPinnedBinary(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(web.Close)
	dir := t.TempDir()
	exe := filepath.Join(dir, "mesh")
	copyExec(t, serveBin, exe)
	h, logs := newHost(t, func(o *pluginhost.Options) { o.SelfExe = exe; o.MaxBackoff = 100 * time.Millisecond })
	p, err := h.Load(ctxT(t), pluginhost.Spec{Kind: sdk.KindHealth, Name: "http"})
	if err != nil {
		t.Fatal(err)
	}
	check := func() error {
		hc, _ := p.Health()
		res, err := hc.Check(ctxT(t), sdk.HealthCheck{URL: web.URL, Timeout: time.Second})
		if err == nil && !res.Healthy {
			t.Fatalf("unhealthy: %+v", res)
		}
		return err
	}
	if err := check(); err != nil {
		t.Fatal(err)
	}
	// Install a "new version" that is not a plugin at all, the way
	// installers do: write beside, rename over.
	next := filepath.Join(dir, "mesh.new")
	if err := os.WriteFile(next, []byte("#!/bin/sh\necho replaced >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, exe); err != nil {
		t.Fatal(err)
	}
	old := p.Status().PID
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := check()
		if err == nil && p.Status().PID != old {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin not back on the pinned binary within 15s: %v; status %+v\n%s", err, p.Status(), logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if strings.Contains(logs.String(), "replaced") {
		t.Fatalf("the replaced file was executed:\n%s", logs)
	}
}

// No plugin process sees the control token: not as MESH_TOKEN, not in any
// variable carrying its value.
func TestPluginEnvScrubsToken(t *testing.T) {
	const secret = "tok-9f8e7d"
	t.Setenv("MESH_TOKEN", secret)
	t.Setenv("MESH_TEST_DSN", "postgres://u:"+secret+"@db")
	t.Setenv("MESH_TEST_KEEP", "kept")
	h, _ := newHost(t, func(o *pluginhost.Options) { o.Secrets = []string{secret} })
	p, err := h.Load(ctxT(t), pluginhost.Spec{Kind: sdk.KindHealth, Name: "ext", Command: testPlugin})
	if err != nil {
		t.Fatal(err)
	}
	hc, _ := p.Health()
	res, err := hc.Check(ctxT(t), sdk.HealthCheck{URL: "env", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	env := res.Reason
	if strings.Contains(env, secret) || strings.Contains(env, "MESH_TOKEN=") || strings.Contains(env, "MESH_TEST_DSN=") {
		t.Fatalf("plugin environment carries the token:\n%s", env)
	}
	if !strings.Contains(env, "MESH_TEST_KEEP=kept") {
		t.Fatalf("plugin environment lost the host's other variables:\n%s", env)
	}
}
