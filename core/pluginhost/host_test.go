package pluginhost_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/mycelium-mesh/mesh/core/pluginhost"
	"github.com/mycelium-mesh/mesh/sdk"
)

func fileSHA(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Every bundled plugin, through the real subprocess path.
func TestBundledPlugins(t *testing.T) {
	h, _ := newHost(t, nil)
	ctx := ctxT(t)

	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(web.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	state := sdk.AppState{
		App:       "web",
		Endpoints: []sdk.Endpoint{{ID: "a", URL: "http://127.0.0.1:1"}, {ID: "b", URL: "http://127.0.0.1:2"}},
		Loads:     []sdk.EndpointLoad{{ID: "a", LatencyEWMA: 1000, Requests: 10}, {ID: "b", LatencyEWMA: 2000, Requests: 10}},
	}
	repoDir := t.TempDir()

	tests := []struct {
		kind, name string
		config     string
		exercise   func(t *testing.T, p *pluginhost.Plugin)
	}{
		{sdk.KindHealth, "http", `path = "/health"`, func(t *testing.T, p *pluginhost.Plugin) {
			hc, _ := p.Health()
			res, err := hc.Check(ctx, sdk.HealthCheck{URL: web.URL, Timeout: time.Second})
			if err != nil || !res.Healthy {
				t.Fatalf("check /health: %+v %v", res, err)
			}
			res, err = hc.Check(ctx, sdk.HealthCheck{URL: web.URL, Path: "/other", Timeout: time.Second})
			if err != nil || res.Healthy {
				t.Fatalf("check /other: %+v %v, want unhealthy", res, err)
			}
		}},
		{sdk.KindHealth, "tcp", ``, func(t *testing.T, p *pluginhost.Plugin) {
			hc, _ := p.Health()
			res, err := hc.Check(ctx, sdk.HealthCheck{URL: "http://" + ln.Addr().String(), Timeout: time.Second})
			if err != nil || !res.Healthy {
				t.Fatalf("check: %+v %v", res, err)
			}
		}},
		{sdk.KindBalancer, "round-robin", ``, func(t *testing.T, p *pluginhost.Plugin) {
			b, _ := p.Balancer()
			pol, err := b.Balance(ctx, state)
			if err != nil || pol.Mode != sdk.ModeRoundRobin || pol.Weights["a"] != 1 || pol.Weights["b"] != 1 {
				t.Fatalf("policy %+v %v", pol, err)
			}
		}},
		{sdk.KindBalancer, "least-loaded", `max_weight = 50`, func(t *testing.T, p *pluginhost.Plugin) {
			b, _ := p.Balancer()
			pol, err := b.Balance(ctx, state)
			if err != nil || pol.Mode != sdk.ModeP2C || pol.Weights["a"] != 50 || pol.Weights["b"] != 25 {
				t.Fatalf("policy %+v %v, want p2c a=50 b=25", pol, err)
			}
		}},
		{sdk.KindRepo, "fs", `dir = "` + repoDir + `"`, func(t *testing.T, p *pluginhost.Plugin) {
			rb, _ := p.Repo()
			blob := make([]byte, 200_000)
			rand.Read(blob)
			sum := sha256.Sum256(blob)
			d := "sha256:" + hex.EncodeToString(sum[:])
			if err := rb.Put(ctx, d, bytes.NewReader(blob)); err != nil {
				t.Fatal(err)
			}
			if ok, err := rb.Has(ctx, d); err != nil || !ok {
				t.Fatalf("Has = %v %v", ok, err)
			}
			rc, found, err := rb.Get(ctx, d)
			if err != nil || !found {
				t.Fatalf("Get = %v %v", found, err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, blob) {
				t.Fatalf("Get returned %d bytes, err %v", len(got), err)
			}
			if _, err := os.Stat(filepath.Join(repoDir, hex.EncodeToString(sum[:])+".spore")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.kind+"/"+tt.name, func(t *testing.T) {
			p, err := h.Load(ctx, pluginhost.Spec{Kind: tt.kind, Name: tt.name, Config: hclBody(t, tt.config)})
			if err != nil {
				t.Fatal(err)
			}
			st := p.Status()
			if st.State != pluginhost.StateRunning || st.PID == 0 || st.Source != "bundled" || st.Version == "" {
				t.Fatalf("status %+v", st)
			}
			if !alive(st.PID) || st.PID == os.Getpid() {
				t.Fatalf("pid %d is not a separate live process", st.PID)
			}
			if info := p.Info(); info.Kind != tt.kind || info.Name != tt.name {
				t.Fatalf("info %+v", info)
			}
			tt.exercise(t, p)
		})
	}
	if n := len(h.Statuses()); n != len(tests) {
		t.Fatalf("%d statuses, want %d", n, len(tests))
	}
	pids := []int{}
	for _, s := range h.Statuses() {
		pids = append(pids, s.PID)
	}
	h.Close()
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("plugin pid %d alive after Close", pid)
		}
	}
	if _, err := h.Load(ctx, pluginhost.Spec{Kind: sdk.KindHealth, Name: "http"}); !errors.Is(err, pluginhost.ErrClosed) {
		t.Fatalf("Load after Close: %v, want ErrClosed", err)
	}
}

// kill -9 a plugin: the host notices, restarts it, re-configures it, and
// calls succeed again; meanwhile calls fail fast with ErrPluginUnavailable.
func TestRestartAfterKill(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/alive" {
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(web.Close)
	state := sdk.AppState{App: "web", Endpoints: []sdk.Endpoint{{ID: "a"}, {ID: "b"}}}

	tests := []struct {
		name string
		spec pluginhost.Spec
		call func(p *pluginhost.Plugin) error
	}{
		{"balancer stream", pluginhost.Spec{Kind: sdk.KindBalancer, Name: "round-robin"}, func(p *pluginhost.Plugin) error {
			b, _ := p.Balancer()
			pol, err := b.Balance(ctxT(t), state)
			if err == nil && pol.Weights["a"] != 1 {
				t.Errorf("policy %+v", pol)
			}
			return err
		}},
		{"health unary, config survives", pluginhost.Spec{Kind: sdk.KindHealth, Name: "http", Config: hclBody(t, `path = "/alive"`)}, func(p *pluginhost.Plugin) error {
			hc, _ := p.Health()
			res, err := hc.Check(ctxT(t), sdk.HealthCheck{URL: web.URL, Timeout: time.Second})
			if err == nil && !res.Healthy {
				t.Errorf("unhealthy after restart (config lost?): %+v", res)
			}
			return err
		}},
		{"external plugin", pluginhost.Spec{Kind: sdk.KindHealth, Name: "ext", Command: testPlugin, Config: hclBody(t, `greeting = "hello"`)}, func(p *pluginhost.Plugin) error {
			hc, _ := p.Health()
			res, err := hc.Check(ctxT(t), sdk.HealthCheck{URL: "x", Timeout: time.Second})
			if err == nil && !strings.Contains(res.Reason, "greeting=hello") {
				t.Errorf("reason %q: config lost across restart", res.Reason)
			}
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, logs := newHost(t, nil)
			p, err := h.Load(ctxT(t), tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.call(p); err != nil {
				t.Fatal(err)
			}
			old := p.Status().PID
			if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed := time.Now()
			var sawUnavailable bool
			var recovered time.Duration
			for {
				start := time.Now()
				err := tt.call(p)
				// Calls never hang while the plugin is down: each one
				// ends well within the host's call deadline (5s).
				if d := time.Since(start); d > 5*time.Second {
					t.Fatalf("a call during recovery took %s (err %v)", d, err)
				}
				if err == nil && p.Status().PID != old {
					recovered = time.Since(killed)
					break
				}
				if err != nil {
					if !errors.Is(err, pluginhost.ErrPluginUnavailable) {
						t.Fatalf("call during recovery: %v, want ErrPluginUnavailable", err)
					}
					sawUnavailable = true
				}
				if time.Since(killed) > 15*time.Second {
					t.Fatalf("not recovered within 15s; status %+v\n%s", p.Status(), logs)
				}
				time.Sleep(2 * time.Millisecond)
			}
			st := p.Status()
			if st.Restarts != 1 || st.State != pluginhost.StateRunning || st.PID == old || !alive(st.PID) {
				t.Fatalf("status after recovery %+v (old pid %d)", st, old)
			}
			if alive(old) {
				t.Fatalf("old pid %d still alive", old)
			}
			t.Logf("recovered %s after SIGKILL (saw unavailable: %v)", recovered, sawUnavailable)
			if !strings.Contains(logs.String(), "plugin restarted") {
				t.Fatalf("no restart in the host log:\n%s", logs)
			}
		})
	}
}

// SIGKILL the host: no plugin process of it survives.
func TestHostSIGKILLLeavesNoPlugin(t *testing.T) {
	cmd, pids := startChildHost(t)
	t.Cleanup(func() {
		for _, pid := range pids {
			if alive(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	if len(pids) != 3 {
		t.Fatalf("pids %v", pids)
	}
	for _, pid := range pids {
		if !alive(pid) {
			t.Fatalf("plugin %d not running before the kill", pid)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	d := waitFor(t, 2*time.Second, "all plugin processes gone after the host's SIGKILL", func() bool {
		for _, pid := range pids {
			if alive(pid) {
				return false
			}
		}
		return true
	})
	t.Logf("plugins gone %s after the host was killed", d)
}

func TestRefusals(t *testing.T) {
	dir := t.TempDir()
	noExec := filepath.Join(dir, "noexec")
	if err := os.WriteFile(noExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "chatty.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho hello from a script\nsleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	requiredPlugin := filepath.Join(dir, "test-required")
	if err := os.Link(testPlugin, requiredPlugin); err != nil {
		t.Fatal(err)
	}
	meshHCL := filepath.Join(dir, "mesh.hcl")

	tests := []struct {
		name    string
		spec    pluginhost.Spec
		opts    func(*pluginhost.Options)
		want    error
		message []string
	}{
		{"missing executable", pluginhost.Spec{Kind: sdk.KindHealth, Name: "x", Command: filepath.Join(dir, "nope")},
			nil, pluginhost.ErrNotFound, []string{"nope", "not found"}},
		{"not executable", pluginhost.Spec{Kind: sdk.KindHealth, Name: "x", Command: noExec},
			nil, pluginhost.ErrNotExecutable, []string{"no execute bit", "-rw-r--r--"}},
		{"directory", pluginhost.Spec{Kind: sdk.KindHealth, Name: "x", Command: dir},
			nil, pluginhost.ErrNotExecutable, []string{"not a regular file"}},
		{"sha256 mismatch", pluginhost.Spec{Kind: sdk.KindHealth, Name: "x", Command: testPlugin, SHA256: strings.Repeat("0", 64)},
			nil, pluginhost.ErrChecksumMismatch, []string{"sha256", strings.Repeat("0", 64)}},
		{"exits at once (/bin/true)", pluginhost.Spec{Kind: sdk.KindHealth, Name: "x", Command: "/bin/true"},
			nil, pluginhost.ErrNotPlugin, []string{"handshake", "exited without"}},
		{"script that prints", pluginhost.Spec{Kind: sdk.KindHealth, Name: "x", Command: script},
			nil, pluginhost.ErrNotPlugin, []string{"handshake", "hello from a script"}},
		{"wrong kind", pluginhost.Spec{Kind: sdk.KindBalancer, Name: "x", Command: testPlugin},
			nil, pluginhost.ErrWrongKind, []string{"serves a health plugin", "configured as balancer"}},
		{"bundled of another kind", pluginhost.Spec{Kind: sdk.KindBalancer, Name: "http"},
			nil, pluginhost.ErrUnknownBundled, []string{"not bundled", "round-robin"}},
		{"no shared API version", pluginhost.Spec{Kind: sdk.KindHealth, Name: "http"},
			func(o *pluginhost.Options) { o.APIVersions = []uint32{7} }, pluginhost.ErrAPIVersion, []string{"[7]", "incompatible"}},
		{"unknown attribute, bundled (before launch)", pluginhost.Spec{Kind: sdk.KindHealth, Name: "http", Config: hclBody(t, "path = \"/h\"\ncolour = \"red\"\n")},
			nil, pluginhost.ErrConfig, []string{"mesh.hcl:2,", "Unsupported argument", "colour"}},
		{"wrong type, bundled", pluginhost.Spec{Kind: sdk.KindHealth, Name: "http", Config: hclBody(t, "\n\ntimeout = \"fast\"\n")},
			nil, pluginhost.ErrConfig, []string{"mesh.hcl:3,", "not a duration"}},
		{"missing required, bundled", pluginhost.Spec{Kind: sdk.KindRepo, Name: "fs",
			DeclRange: hcl.Range{Filename: meshHCL, Start: hcl.Pos{Line: 9, Column: 1}}},
			nil, pluginhost.ErrConfig, []string{meshHCL + ":9,", "Missing required argument", `"dir"`}},
		{"unknown attribute, external (schema from the plugin)", pluginBlock(t, meshHCL, "plugin \"health\" \"ext\" {\n  command = \""+requiredPlugin+"\"\n  config {\n    token = \"t\"\n    retries = 2\n    colour = 1\n  }\n}\n"),
			nil, pluginhost.ErrConfig, []string{meshHCL + ":6,", "Unsupported argument", "colour"}},
		{"missing required, external", pluginBlock(t, meshHCL, "plugin \"health\" \"ext\" {\n  command = \""+requiredPlugin+"\"\n  config {\n    token = \"t\"\n  }\n}\n"),
			nil, pluginhost.ErrConfig, []string{meshHCL + ":3,", "Missing required argument", `"retries"`}},
		{"unknown kind", pluginhost.Spec{Kind: "cache", Name: "x"},
			nil, nil, []string{"unknown kind", "cache"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := newHost(t, tt.opts)
			start := time.Now()
			p, err := h.Load(ctxT(t), tt.spec)
			if err == nil {
				p.Close()
				t.Fatal("Load succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("error %q does not match %v", err, tt.want)
			}
			for _, m := range tt.message {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
			if errors.Is(err, pluginhost.ErrConfig) {
				var diags hcl.Diagnostics
				if !errors.As(err, &diags) || !diags.HasErrors() {
					t.Errorf("config error carries no diagnostics")
				}
			}
			if n := len(h.Statuses()); n != 0 {
				t.Errorf("refused plugin left in the host: %d statuses", n)
			}
			t.Logf("refused in %s: %v", time.Since(start), err)
		})
	}
}

func TestChecksumMatchLoads(t *testing.T) {
	h, _ := newHost(t, nil)
	for _, sum := range []string{fileSHA(t, testPlugin), "sha256:" + strings.ToUpper(fileSHA(t, testPlugin))} {
		p, err := h.Load(ctxT(t), pluginhost.Spec{Kind: sdk.KindHealth, Name: "ext", Command: testPlugin, SHA256: sum})
		if err != nil {
			t.Fatalf("sha256 %s: %v", sum, err)
		}
		if st := p.Status(); st.Source != testPlugin || st.Version != "0.0.1-test" {
			t.Fatalf("status %+v", st)
		}
		p.Close()
	}
}

// A plugin writing junk to stdout (through os.Stdout and straight to fd 1)
// keeps working, and its log lines reach the host log under its name.
func TestStdoutJunkAndLogs(t *testing.T) {
	junk := filepath.Join(t.TempDir(), "test-junk")
	if err := os.Link(testPlugin, junk); err != nil {
		t.Fatal(err)
	}
	h, logs := newHost(t, nil)
	p, err := h.Load(ctxT(t), pluginhost.Spec{Kind: sdk.KindHealth, Name: "noisy", Command: junk})
	if err != nil {
		t.Fatal(err)
	}
	hc, _ := p.Health()
	for i := 0; i < 20; i++ {
		res, err := hc.Check(ctxT(t), sdk.HealthCheck{URL: "http://127.0.0.1:9", Timeout: time.Second})
		if err != nil || !res.Healthy {
			t.Fatalf("check %d: %+v %v", i, res, err)
		}
	}
	if st := p.Status(); st.Restarts != 0 || st.State != pluginhost.StateRunning {
		t.Fatalf("status %+v", st)
	}
	waitFor(t, 2*time.Second, "plugin log line in host log", func() bool {
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "host.health.noisy:") && strings.Contains(line, "test check served") {
				return true
			}
		}
		return false
	})
}

// The example third-party plugin builds (TestMain) and loads from its
// mesh.hcl, config block included.
func TestExamplePlugin(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(moduleRoot(), "examples", "balancer-plugin", "mesh.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "mesh.hcl")
	if err := os.WriteFile(file, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(examplePlg, filepath.Join(dir, "weighted-static")); err != nil {
		t.Fatal(err)
	}
	spec := pluginBlock(t, file, string(src))
	if spec.Command != "./weighted-static" {
		t.Fatalf("example command %q", spec.Command)
	}
	h, logs := newHost(t, nil)
	b, err := h.Balancer(ctxT(t), spec)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := b.Balance(ctxT(t), sdk.AppState{App: "hello", Endpoints: []sdk.Endpoint{{ID: "node-1"}, {ID: "node-2"}, {ID: "node-3"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint32{"node-1": 5, "node-2": 1, "node-3": 1}
	for id, w := range want {
		if pol.Weights[id] != w {
			t.Fatalf("policy %+v, want weights %v", pol, want)
		}
	}
	if !strings.Contains(logs.String(), "configured") {
		t.Errorf("example plugin's log line missing from host log:\n%s", logs)
	}
}

func TestBalancerConcurrentCalls(t *testing.T) {
	h, _ := newHost(t, nil)
	b, err := h.Balancer(ctxT(t), pluginhost.Spec{Name: "round-robin"})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 16)
	for g := 0; g < 16; g++ {
		go func() {
			for i := 0; i < 50; i++ {
				app := string(rune('a'+g)) + "-app"
				pol, err := b.Balance(ctxT(t), sdk.AppState{App: app, Endpoints: []sdk.Endpoint{{ID: app}}})
				if err != nil {
					errs <- err
					return
				}
				if pol.App != app || pol.Weights[app] != 1 {
					errs <- errors.New("answer matched to the wrong call: " + pol.App)
					return
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 16; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// A plugin that stays up but stops answering is killed after a few calls
// in a row hit the host's deadline, and restarted.
func TestHungPluginRestarted(t *testing.T) {
	h, _ := newHost(t, func(o *pluginhost.Options) { o.CallTimeout = 200 * time.Millisecond })
	p, err := h.Load(ctxT(t), pluginhost.Spec{Kind: sdk.KindHealth, Name: "ext", Command: testPlugin})
	if err != nil {
		t.Fatal(err)
	}
	hc, _ := p.Health()
	old := p.Status().PID
	// A caller's own shorter deadline is not the plugin's fault.
	short, cancel := context.WithTimeout(ctxT(t), 20*time.Millisecond)
	defer cancel()
	for i := 0; i < 5; i++ {
		if _, err := hc.Check(short, sdk.HealthCheck{URL: "hang"}); err == nil {
			t.Fatal("hung check succeeded")
		}
	}
	if st := p.Status(); st.PID != old || st.Restarts != 0 {
		t.Fatalf("plugin restarted for the caller's deadlines: %+v", st)
	}
	for i := 1; i <= 3; i++ {
		_, err := hc.Check(ctxT(t), sdk.HealthCheck{URL: "hang"})
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, pluginhost.ErrPluginUnavailable) {
			t.Fatalf("hung check %d: %v", i, err)
		}
		if i == 3 && !errors.Is(err, pluginhost.ErrPluginUnavailable) {
			t.Fatalf("third timeout: %v, want ErrPluginUnavailable", err)
		}
	}
	waitFor(t, 5*time.Second, "restart of the hung plugin", func() bool {
		res, err := hc.Check(ctxT(t), sdk.HealthCheck{URL: "ok", Timeout: time.Second})
		return err == nil && res.Healthy && p.Status().PID != old
	})
	if st := p.Status(); st.Restarts != 1 {
		t.Fatalf("status %+v", st)
	}
}
