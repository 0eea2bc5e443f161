package mesh_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mycelium-mesh/mesh/core/mesh"
	"github.com/mycelium-mesh/mesh/internal/testutil"
)

// These are the spec's acceptance tests, automated: they build the real mesh
// binary and the sample workload, pack and publish spores with the CLI, start
// `mesh run` as a process and talk to it over loopback.

var (
	meshBin string
	helloBn string
)

func TestMain(m *testing.M) {
	bins, cleanup := testutil.BuildForMain("./cmd/mesh", "./workloads/hello")
	meshBin, helloBn = bins[0], bins[1]
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// env is one test's mesh: its directory, spores and the running process.
type env struct {
	t            testing.TB
	dir          string
	cfgPath      string
	edgeURL      string
	v1, v2       string // spore files
	cmd          *exec.Cmd
	exited       chan struct{}
	logs         *syncBuffer
	restart      string
	warmup       string
	maxInst      int
	extraApp     string
	appExtra     string
	admin        string // admin listener, "" = none
	controlExtra string
	edgeExtra    string // more attributes of the edge block
	nofile       int    // open file limit (soft and hard) of mesh run; 0 = inherited
	minHealthy   string // the top-level min_healthy; "0s" (off) unless a test sets it
	agentsExtra  string // more attributes of the agents block
}

type syncBuffer = testutil.SyncBuffer

func runCLI(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command(meshBin, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mesh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func newEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, restart: "on-failure", warmup: "300ms", maxInst: 3, minHealthy: "0s"}
	runCLI(t, "keygen", "-out", filepath.Join(dir, "dev"))
	for _, v := range []string{"v1", "v2"} {
		man := fmt.Sprintf(`{"identity":{"kind":"Spore","name":"billing","version":"%s.0.0"},
"runtime":{"command":"./binary","args":[],"env":{"HELLO_VERSION":"%s"}},
"resources":{"nutrients":{"cpu_milli":100,"memory_mb":64}},"slo":{"p99_budget_ms":50},
"security":{"lsm_profile":"","read_only_fs":false}}`, v, v)
		mf := filepath.Join(dir, v+".json")
		if err := os.WriteFile(mf, []byte(man), 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "billing-"+v+".spore")
		runCLI(t, "pack", "-binary", helloBn, "-manifest", mf, "-key", filepath.Join(dir, "dev.key"), "-out", out)
		if v == "v1" {
			e.v1 = out
		} else {
			e.v2 = out
		}
	}
	e.edgeURL = fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t))
	e.cfgPath = filepath.Join(dir, "mesh.hcl")
	e.writeConfig()
	return e
}

func (e *env) writeConfig() {
	cfg := fmt.Sprintf(`
data_dir = "data"
run_dir  = "run"
warmup   = %q
grace    = "2s"
min_healthy = %q
trusted_keys = ["dev.pub"]
repo { dir = "repo" }
control {
  socket = "control.sock"
%s}
edge {
  listen = %q
  admin  = %q
%s}
agents {
  count = 3
%s}
app "billing" {
  spore   = "billing-v1.spore"
  max     = %d
  restart = %q
%s}
%s
`, e.warmup, e.minHealthy, e.controlExtra, strings.TrimPrefix(e.edgeURL, "http://"), e.admin, e.edgeExtra, e.agentsExtra, e.maxInst, e.restart, e.appExtra, e.extraApp)
	if err := os.WriteFile(e.cfgPath, []byte(cfg), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// start runs `mesh run` and waits until the edge serves billing on every node.
func (e *env) start() {
	e.t.Helper()
	e.launch()
	e.waitReady(15 * time.Second)
}

// launch runs `mesh run` without waiting for anything.
func (e *env) launch() {
	t := e.t
	t.Helper()
	e.logs = &syncBuffer{}
	cmd := exec.Command(meshBin, "run", "-config", e.cfgPath)
	if e.nofile > 0 {
		// prlimit (util-linux) sets the limit and then execs mesh, so
		// the pid is still mesh's.
		pl, err := exec.LookPath("prlimit")
		if err != nil {
			t.Fatalf("a low open file limit needs prlimit: %v", err)
		}
		cmd = exec.Command(pl, fmt.Sprintf("--nofile=%d:%d", e.nofile, e.nofile), "--", meshBin, "run", "-config", e.cfgPath)
	}
	cmd.Stdout = e.logs
	cmd.Stderr = e.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mesh: %v", err)
	}
	e.cmd = cmd
	e.exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(e.exited) }()
	t.Cleanup(e.stop)
}

func (e *env) stop() {
	if e.cmd == nil {
		return
	}
	select {
	case <-e.exited:
	default:
		_ = e.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-e.exited:
		case <-time.After(20 * time.Second):
			_ = e.cmd.Process.Kill()
			<-e.exited
			e.t.Errorf("mesh did not stop within 20s of SIGTERM")
		}
	}
	e.cmd = nil
	if e.t.Failed() {
		e.t.Logf("mesh logs:\n%s", e.logs.String())
	}
}

func (e *env) client() *mesh.Client {
	c, err := mesh.NewClient("unix://"+filepath.Join(e.dir, "control.sock"), "")
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) status() mesh.Status {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, _, err := e.client().Status(ctx)
	if err != nil {
		e.t.Fatalf("status: %v", err)
	}
	return st
}

func (e *env) waitReady(d time.Duration) {
	t := e.t
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case <-e.exited:
			t.Fatalf("mesh exited early:\n%s", e.logs.String())
		default:
		}
		if _, err := os.Stat(filepath.Join(e.dir, "control.sock")); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, _, err := e.client().Status(ctx)
			cancel()
			if err == nil && len(st.Apps) > 0 && st.Apps[0].Ready >= st.Apps[0].Desired && st.Apps[0].Desired > 0 {
				if resp, err := http.Get(e.edgeURL + "/billing/hello"); err == nil {
					resp.Body.Close()
					if resp.StatusCode == 200 {
						return
					}
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("mesh not ready within %s:\n%s", d, e.logs.String())
}

// rollOut publishes a spore through the control API, deploys it to billing
// and waits until the rollout is ready; it returns the digest.
func (e *env) rollOut(sporePath string) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := e.client()
	d, err := c.PublishSpore(ctx, sporePath)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := c.Deploy(ctx, "billing", d); err != nil {
		e.t.Fatal(err)
	}
	if rs, err := c.WaitRollout(ctx, "billing", d, nil); err != nil || rs.State != "ready" {
		e.t.Fatalf("rollout of %s: %+v %v", d, rs, err)
	}
	return d
}

// pids returns the pids of billing instances in the given states.
func pids(st mesh.Status, states ...string) []int {
	var out []int
	for _, in := range st.Instances {
		for _, s := range states {
			if in.App == "billing" && in.State == s {
				out = append(out, in.PID)
			}
		}
	}
	return out
}

// load runs clients that GET /billing/hello until stop is closed, counting
// failures and versions seen.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	versions   map[string]int
	firstErr   atomic.Value
	wg         sync.WaitGroup
	stop       chan struct{}
}

func startLoad(url string, clients int) *load {
	l := &load{versions: map[string]int{}, stop: make(chan struct{})}
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for i := 0; i < clients; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				resp, err := hc.Get(url)
				if err != nil {
					l.failed.Add(1)
					l.firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					l.failed.Add(1)
					l.firstErr.CompareAndSwap(nil, resp.Status)
					continue
				}
				l.ok.Add(1)
				v := resp.Header.Get("X-Hello-Version")
				l.mu.Lock()
				l.versions[v]++
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *load) finish() {
	close(l.stop)
	l.wg.Wait()
}

func (l *load) seen(v string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.versions[v]
}

// Acceptance 1: build, pack, publish, run → GET /billing/hello is 200 with
// X-Mycelium-Edge.
func TestAcceptanceServe(t *testing.T) {
	e := newEnv(t)
	e.admin = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	e.writeConfig()
	e.start()
	resp, err := http.Get(e.edgeURL + "/billing/hello")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	h := resp.Header.Get("X-Mycelium-Edge")
	if _, err := time.Parse(time.RFC3339, h); err != nil {
		t.Fatalf("X-Mycelium-Edge %q is not RFC3339: %v", h, err)
	}
	if !strings.Contains(string(body), "hello from billing v1") {
		t.Fatalf("unexpected body %q", body)
	}
	st := e.status()
	if got := len(pids(st, "ready")); got != 3 {
		t.Fatalf("want 3 ready instances, got %d: %+v", got, st.Instances)
	}
	if out := runCLI(t, "status", "-config", e.cfgPath); !strings.Contains(out, "billing") {
		t.Fatalf("mesh status output lacks the app:\n%s", out)
	}

	// /metrics on the admin listener: edge counters and the mesh's own state.
	mresp, err := http.Get("http://" + e.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer mresp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(mresp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	sum := func(name string, match map[string]string) float64 {
		var total float64
		fam, ok := fams[name]
		if !ok {
			t.Fatalf("/metrics lacks %s", name)
		}
	next:
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := match[l.GetName()]; ok && want != l.GetValue() {
					continue next
				}
			}
			switch {
			case m.GetGauge() != nil:
				total += m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				total += m.GetCounter().GetValue()
			}
		}
		return total
	}
	if n := sum("mesh_edge_requests_total", map[string]string{"app": "billing", "code_class": "2xx"}); n < 1 {
		t.Errorf("mesh_edge_requests_total{app=billing,2xx} = %v", n)
	}
	if n := sum("mesh_instances", map[string]string{"app": "billing", "state": "ready"}); n != 3 {
		t.Errorf("mesh_instances{app=billing,state=ready} = %v, want 3", n)
	}
	if n := sum("mesh_plugin_up", map[string]string{"kind": "balancer"}); n != 1 {
		t.Errorf("mesh_plugin_up{kind=balancer} = %v, want 1", n)
	}
}

// Acceptance 2: under continuous load, deploy a new digest: zero failed
// requests, responses switch to the new version, and the old instances are
// stopped on every node within warmup plus grace.
func TestAcceptanceBlueGreen(t *testing.T) {
	e := newEnv(t)
	e.start()
	old := pids(e.status(), "ready")
	if len(old) != 3 {
		t.Fatalf("want 3 ready instances before deploy, got %v", old)
	}

	l := startLoad(e.edgeURL+"/billing/hello", 8)
	time.Sleep(300 * time.Millisecond)
	out := runCLI(t, "deploy", "-config", e.cfgPath, "-app", "billing", "-spore", e.v2, "-timeout", "60s")
	if !strings.Contains(out, "ready") {
		t.Fatalf("deploy output: %s", out)
	}
	deployed := time.Now()
	// Old instances stop after warmup (300ms) and at most grace (2s); the
	// wait is generous so a loaded machine does not fail it, and the time it
	// took is logged (benchmarks measure, tests do not time).
	if alive := testutil.WaitGone(old, 15*time.Second); len(alive) > 0 {
		t.Errorf("old instances still alive %s after rollout: %v", time.Since(deployed), alive)
	}
	t.Logf("old instances gone %s after the rollout was ready", time.Since(deployed))
	time.Sleep(300 * time.Millisecond)
	l.finish()

	if n := l.failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed during blue/green (first: %v)", n, n+l.ok.Load(), l.firstErr.Load())
	}
	if l.ok.Load() < 500 {
		t.Fatalf("load too thin to mean anything: %d requests", l.ok.Load())
	}
	if l.seen("v2") == 0 {
		t.Fatalf("never saw v2: %v", l.versions)
	}
	resp, err := http.Get(e.edgeURL + "/billing/hello")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v := resp.Header.Get("X-Hello-Version"); v != "v2" {
		t.Fatalf("after rollout got version %q", v)
	}
	t.Logf("blue/green: %d requests, 0 failed, versions %v", l.ok.Load(), l.versions)
}

// Acceptance 3: SIGKILL a workload under load: zero failed idempotent
// requests while other endpoints exist, the endpoint is deregistered at once
// and the instance is respawned per its restart policy.
func TestAcceptanceWorkloadKill(t *testing.T) {
	e := newEnv(t)
	e.start()
	st := e.status()
	var pid int
	var node, url string
	for _, in := range st.Instances {
		if in.State == "ready" {
			pid, node, url = in.PID, in.NodeID, in.URL
			break
		}
	}
	if pid == 0 {
		t.Fatalf("no ready instance: %+v", st)
	}

	l := startLoad(e.edgeURL+"/billing/hello", 8)
	time.Sleep(300 * time.Millisecond)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	// The dead endpoint leaves the fabric (the time is logged, not
	// asserted: the agent tests and benchmarks measure it).
	waitFor(t, 15*time.Second, "dead endpoint deregistered", func() bool {
		for _, ep := range e.status().Apps[0].Endpoints {
			if ep.URL == url {
				return false
			}
		}
		return true
	})
	t.Logf("endpoint %s gone %s after SIGKILL", url, time.Since(killed))
	// The endpoint of that node must be deregistered promptly or replaced by
	// a respawned instance.
	deadline := time.Now().Add(10 * time.Second)
	respawned := 0
	for time.Now().Before(deadline) {
		st := e.status()
		for _, in := range st.Instances {
			if in.NodeID == node && in.State == "ready" && in.PID != pid && testutil.Alive(in.PID) {
				respawned = in.PID
			}
		}
		if respawned != 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	l.finish()
	if respawned == 0 {
		t.Fatalf("instance on %s not respawned after SIGKILL", node)
	}
	if n := l.failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed after SIGKILL (first: %v)", n, n+l.ok.Load(), l.firstErr.Load())
	}
	t.Logf("workload kill: %d requests, 0 failed; respawned as pid %d", l.ok.Load(), respawned)
}

// SIGKILL of `mesh run` leaves no workload or plugin behind, and a restarted
// mesh comes back with the desired state it had, deployed digests included.
func TestMeshKillAndRestart(t *testing.T) {
	e := newEnv(t)
	e.start()
	d2 := e.rollOut(e.v2)
	st := e.status()
	work := pids(st, "ready", "draining", "starting")
	kids := testutil.Children(e.cmd.Process.Pid)
	if len(work) == 0 {
		t.Fatal("no workloads to watch")
	}
	// SIGKILL the whole mesh process (only it: workloads and plugins have
	// their own process groups or are children we expect to die with it).
	if err := e.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-e.exited
	killed := time.Now()
	if alive := testutil.WaitGone(append(work, kids...), 15*time.Second); len(alive) > 0 {
		for _, p := range alive {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		t.Fatalf("processes survived SIGKILL of mesh: %v (workloads %v, children %v)", alive, work, kids)
	}
	t.Logf("workloads and plugins gone %s after SIGKILL of mesh", time.Since(killed))

	// Restart: the deployed digest is kept (the app block did not change).
	e.start()
	st = e.status()
	if st.Apps[0].Digest != d2 {
		t.Fatalf("after restart app digest is %s, want deployed %s", st.Apps[0].Digest, d2)
	}
	resp, err := http.Get(e.edgeURL + "/billing/hello")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v := resp.Header.Get("X-Hello-Version"); v != "v2" {
		t.Fatalf("after restart version %q, want v2", v)
	}
	e.stop()

	// A changed app block whose spore is the same is applied, and keeps
	// the deployed digest: only a changed spore or digest changes it.
	e.maxInst = 2
	e.writeConfig()
	e.start()
	st = e.status()
	if st.Apps[0].Digest != d2 {
		t.Fatalf("a change of max put digest %s back over the deployed %s", st.Apps[0].Digest, d2)
	}
	if st.Apps[0].Max != 2 {
		t.Fatalf("max = %d, want 2", st.Apps[0].Max)
	}
}

// The control API refuses spores signed by keys the mesh does not trust, and
// `mesh status -json` is valid JSON.
func TestControlAPI(t *testing.T) {
	e := newEnv(t)
	e.start()
	other := filepath.Join(e.dir, "other")
	runCLI(t, "keygen", "-out", other)
	bad := filepath.Join(e.dir, "bad.spore")
	runCLI(t, "pack", "-binary", helloBn, "-manifest", filepath.Join(e.dir, "v1.json"), "-key", other+".key", "-out", bad)
	cmd := exec.Command(meshBin, "deploy", "-config", e.cfgPath, "-app", "billing", "-spore", bad)
	out, err := cmd.CombinedOutput()
	if err == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("deploy of untrusted spore: want exit 1, got %v\n%s", err, out)
	}
	if !strings.Contains(strings.ToLower(string(out)), "trust") {
		t.Fatalf("error does not say why: %s", out)
	}
	js := runCLI(t, "status", "-json", "-config", e.cfgPath)
	var v map[string]any
	if err := json.Unmarshal([]byte(js), &v); err != nil {
		t.Fatalf("status -json: %v\n%s", err, js)
	}
	// A second mesh on the same configuration is refused, saying why.
	second := exec.Command(meshBin, "run", "-config", e.cfgPath)
	out, err = second.CombinedOutput()
	if err == nil || second.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "in use by another running mesh") {
		t.Fatalf("second mesh on the same data_dir: %v\n%s", err, out)
	}
	fi, err := os.Stat(filepath.Join(e.dir, "control.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket mode %v, want 0600", fi.Mode().Perm())
	}
}

// The TCP control listener demands the bearer token; `mesh reload` and SIGHUP
// apply added and removed app blocks.
func TestControlTCPAndReload(t *testing.T) {
	e := newEnv(t)
	port := testutil.FreePort(t)
	e.controlExtra = fmt.Sprintf("  listen = \"127.0.0.1:%d\"\n  token = env(\"E2E_TOKEN\")\n", port)
	t.Setenv("E2E_TOKEN", "s3cret-token")
	e.writeConfig()
	e.start()
	addr := fmt.Sprintf("http://127.0.0.1:%d", port)

	// No token, wrong token: 401. Right token: status.
	for _, tok := range []string{"", "wrong"} {
		req, _ := http.NewRequest(http.MethodGet, addr+"/v1/status", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("token %q: status %d, want 401", tok, resp.StatusCode)
		}
	}
	out := runCLI(t, "status", "-addr", addr, "-token", "s3cret-token")
	if !strings.Contains(out, "billing") {
		t.Fatalf("status over TCP:\n%s", out)
	}

	// Add an app and reload through the API.
	e.extraApp = `app "echo" {
  spore = "billing-v2.spore"
  max = 1
  strip_prefix = true
}`
	e.writeConfig()
	runCLI(t, "reload", "-addr", addr, "-token", "s3cret-token")
	waitFor(t, 15*time.Second, "echo app served", func() bool {
		resp, err := http.Get(e.edgeURL + "/echo/hello")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200 && resp.Header.Get("X-Hello-Version") == "v2"
	})

	// Remove it again and reload with SIGHUP.
	e.extraApp = ""
	e.writeConfig()
	if err := e.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "echo app removed", func() bool {
		for _, a := range e.status().Apps {
			if a.Name == "echo" {
				return false
			}
		}
		for _, in := range e.status().Instances {
			if in.App == "echo" && in.State != "stopped" {
				return false
			}
		}
		return true
	})
	// The withdrawn app is unknown to the edge again.
	waitFor(t, 10*time.Second, "withdrawn app answers 404", func() bool {
		resp, err := http.Get(e.edgeURL + "/echo/hello")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusNotFound
	})
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Killing the balancer and health plugins under load costs no request, and
// both come back (restart counted) within a bounded time.
func TestPluginKillUnderLoad(t *testing.T) {
	e := newEnv(t)
	e.start()
	before := map[string]int{}
	for _, p := range e.status().Plugins {
		before[p.Kind+"/"+p.Name] = p.PID
	}
	if before["balancer/round-robin"] == 0 || before["health/http"] == 0 {
		t.Fatalf("plugins not running: %+v", e.status().Plugins)
	}
	l := startLoad(e.edgeURL+"/billing/hello", 8)
	time.Sleep(200 * time.Millisecond)
	killed := time.Now()
	for _, k := range []string{"balancer/round-robin", "health/http"} {
		if err := syscall.Kill(before[k], syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 15*time.Second, "plugins restarted", func() bool {
		back := 0
		for _, p := range e.status().Plugins {
			k := p.Kind + "/" + p.Name
			if _, watched := before[k]; watched && p.State == "running" && p.PID != 0 && p.PID != before[k] && p.Restarts > 0 {
				back++
			}
		}
		return back == 2
	})
	t.Logf("plugins back %s after SIGKILL", time.Since(killed))
	time.Sleep(300 * time.Millisecond)
	l.finish()
	if n := l.failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed while plugins restarted (first: %v)", n, n+l.ok.Load(), l.firstErr.Load())
	}
	// A workload launched after the restart is health-gated by the new
	// health plugin: roll out v2 and see it served.
	e.rollOut(e.v2)
}

// A rollout capped below one instance per node by a CPU budget completes:
// `mesh deploy` follows it to ready and exits 0.
func TestDeployBudgetCapped(t *testing.T) {
	e := newEnv(t)
	e.appExtra = "  budget {\n    cpu_milli = 150\n  }\n" // one 100m instance fits, two do not
	e.writeConfig()
	e.launch()
	waitFor(t, 15*time.Second, "one instance ready", func() bool {
		if _, err := os.Stat(filepath.Join(e.dir, "control.sock")); err != nil {
			return false
		}
		return len(pids(e.status(), "ready")) == 1
	})
	out := runCLI(t, "deploy", "-config", e.cfgPath, "-app", "billing", "-spore", e.v2, "-timeout", "30s")
	if !strings.Contains(out, "is ready") {
		t.Fatalf("deploy output:\n%s", out)
	}
	st := e.status()
	if n := len(pids(st, "ready")); n != 1 {
		t.Fatalf("budget allows one instance, %d ready: %+v", n, st.Instances)
	}
}

// With the bundled fs repo plugin as backend, published spores are pushed to
// it, and a digest missing from the local store is fetched back through the
// plugin (and re-hashed) when an agent needs it.
func TestRepoBackendPlugin(t *testing.T) {
	e := newEnv(t)
	blobs := filepath.Join(e.dir, "blobs")
	// A relative path in a plugin's config is relative to mesh.hcl.
	e.extraApp = `plugin "repo" "fs" {
  config {
    dir = "blobs"
  }
}
`
	e.writeConfig()
	cfg, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg = []byte(strings.Replace(string(cfg), `repo { dir = "repo" }`, `repo {
  dir     = "repo"
  backend = "fs"
}`, 1))
	if err := os.WriteFile(e.cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	e.start()
	d1 := e.status().Apps[0].Digest
	hex1 := strings.TrimPrefix(d1, "sha256:")
	if _, err := os.Stat(filepath.Join(blobs, hex1+".spore")); err != nil {
		t.Fatalf("spore not pushed to the fs backend: %v", err)
	}

	// Publish v2 through the control API, then drop it from the local store:
	// the agents must get it back through the plugin.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := e.client()
	d2, err := c.PublishSpore(ctx, e.v2)
	if err != nil {
		t.Fatal(err)
	}
	hex2 := strings.TrimPrefix(d2, "sha256:")
	if _, err := os.Stat(filepath.Join(blobs, hex2+".spore")); err != nil {
		t.Fatalf("v2 not pushed to the fs backend: %v", err)
	}
	if err := os.Remove(filepath.Join(e.dir, "repo", hex2+".spore")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Deploy(ctx, "billing", d2); err != nil {
		t.Fatal(err)
	}
	if rs, err := c.WaitRollout(ctx, "billing", d2, nil); err != nil || rs.State != "ready" {
		t.Fatalf("rollout from backend: %+v %v", rs, err)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "repo", hex2+".spore")); err != nil {
		t.Fatalf("fetched spore not cached locally: %v", err)
	}
}

// `mesh run` refuses a configuration whose plugin config block is wrong,
// naming the file and line, before starting anything.
func TestRunRefusesBadPluginConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mesh.hcl")
	src := "control {\n  socket = \"c.sock\"\n}\nedge {\n  listen = \"127.0.0.1:0\"\n  admin  = \"\"\n}\n" +
		"plugin \"health\" \"http\" {\n  config {\n    timeout = 5\n    nope    = true\n  }\n}\n"
	if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(meshBin, "run", "-config", cfg)
	out, err := cmd.CombinedOutput()
	if err == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("want exit 1, got %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "mesh.hcl line 11") || !strings.Contains(string(out), "nope") {
		t.Fatalf("diagnostic does not point at the attribute:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "c.sock")); err == nil {
		t.Fatal("control socket created for a refused configuration")
	}
}

// A deploy whose new version never gets healthy exits 1 and the mesh puts
// the previous digest back in the plan, so a restart does not bring the broken one
// up; a deploy by bare hex digest is followed to ready like a prefixed one.
func TestDeployRollbackAndBareDigest(t *testing.T) {
	e := newEnv(t)
	e.appExtra = "  health_path = \"/health\"\n"
	e.writeConfig()
	e.start()
	d1 := e.status().Apps[0].Digest

	man := `{"identity":{"kind":"Spore","name":"billing","version":"9.0.0"},
"runtime":{"command":"./binary","args":[],"env":{"HELLO_VERSION":"broken","HELLO_HEALTH":"fail"}},
"resources":{"nutrients":{"cpu_milli":100,"memory_mb":64}},"slo":{"p99_budget_ms":50},
"security":{"lsm_profile":"","read_only_fs":false}}`
	mf := filepath.Join(e.dir, "broken.json")
	if err := os.WriteFile(mf, []byte(man), 0o644); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(e.dir, "broken.spore")
	runCLI(t, "pack", "-binary", helloBn, "-manifest", mf, "-key", filepath.Join(e.dir, "dev.key"), "-out", broken)

	cmd := exec.Command(meshBin, "deploy", "-config", e.cfgPath, "-app", "billing", "-spore", broken, "-timeout", "60s")
	out, err := cmd.CombinedOutput()
	if err == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("deploy of a never-healthy spore: want exit 1, got %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "the mesh reverted it to "+d1) {
		t.Fatalf("no revert reported:\n%s", out)
	}
	if got := e.status().Apps[0].Digest; got != d1 {
		t.Fatalf("plan names %s after rollback, want %s", got, d1)
	}
	resp, err := http.Get(e.edgeURL + "/billing/hello")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v := resp.Header.Get("X-Hello-Version"); resp.StatusCode != 200 || v != "v1" {
		t.Fatalf("after rollback: %d %q, want 200 v1", resp.StatusCode, v)
	}

	// Bare hex digest of v2, published first.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d2, err := e.client().PublishSpore(ctx, e.v2)
	if err != nil {
		t.Fatal(err)
	}
	out2 := runCLI(t, "deploy", "-config", e.cfgPath, "-app", "billing", "-digest", strings.TrimPrefix(d2, "sha256:"), "-timeout", "60s")
	if !strings.Contains(out2, "is ready on "+d2) {
		t.Fatalf("bare-digest deploy:\n%s", out2)
	}

	// An unknown app is refused before anything is uploaded.
	cmd = exec.Command(meshBin, "deploy", "-config", e.cfgPath, "-app", "biling", "-spore", e.v2)
	out, _ = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || strings.Contains(string(out), "published") || !strings.Contains(string(out), "unknown app") {
		t.Fatalf("unknown app: exit %d\n%s", cmd.ProcessState.ExitCode(), out)
	}
}
