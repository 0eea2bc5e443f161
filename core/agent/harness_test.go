package agent

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/repo"
	"github.com/mycelium-mesh/mesh/core/spore"
	"github.com/mycelium-mesh/mesh/internal/testutil"
	"github.com/mycelium-mesh/mesh/plugins/healthhttp"
)

// Shared by every test: the sample workload built once, and a signing key.
var (
	helloBin string
	testKey  ed25519.PrivateKey
	testPub  ed25519.PublicKey
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	if os.Getenv(shimEnv) != "" && len(os.Args) > 1 && os.Args[1] == ShimArg {
		// The test binary stands in for `mesh cgroup-exec`.
		fmt.Fprintln(os.Stderr, RunShim(os.Args[2:]))
		os.Exit(127)
	}
	if len(os.Args) > 1 && os.Args[1] == LogRelayArg {
		// The test binary stands in for `mesh log-relay`.
		if err := RunLogRelay(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	bins, cleanup := testutil.BuildForMain("./workloads/hello")
	defer cleanup()
	helloBin = bins[0]
	var err error
	testPub, testKey, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// syncBuffer collects log output of a test, shown only when it fails.
type syncBuffer = testutil.SyncBuffer

// env is one test's mesh: a fabric, a repo and a run directory.
type env struct {
	t      testing.TB
	fab    *fabric.Fabric
	repo   *repo.Repo
	runDir string
	log    hclog.Logger
	logs   *syncBuffer
}

func newEnv(t testing.TB) *env {
	t.Helper()
	logs := &syncBuffer{}
	log := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug, Name: "mesh"})
	f, err := fabric.New(fabric.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, fab: f, repo: r, runDir: t.TempDir(), log: log, logs: logs}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("mesh log:\n%s", logs.String())
		}
		_ = f.Close()
	})
	return e
}

// spore packs the hello workload with the given version and extra env,
// stores it in the repo and returns its digest.
func (e *env) spore(version string, extra map[string]string) string {
	e.t.Helper()
	return packInto(e.t, e.repo, version, extra)
}

func packInto(t testing.TB, r *repo.Repo, version string, extra map[string]string) string {
	t.Helper()
	envs := map[string]string{"HELLO_VERSION": version}
	for k, v := range extra {
		envs[k] = v
	}
	m := spore.Manifest{
		Identity:  spore.Identity{Name: "billing", Version: version},
		Runtime:   spore.Runtime{Args: []string{}, Env: envs},
		Resources: spore.Resources{Nutrients: spore.Nutrients{CPUMilli: 100, MemoryMB: 64}},
		SLO:       spore.SLO{P99BudgetMS: 50},
		Security:  spore.Security{LSMProfile: "default"},
	}
	path := filepath.Join(t.TempDir(), "billing-"+version+".spore")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spore.Pack(out, helloBin, m, testKey); err != nil {
		t.Fatalf("pack: %v", err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := r.Put(path)
	if err != nil {
		t.Fatalf("repo put: %v", err)
	}
	return d
}

func (e *env) publish(p fabric.Plan) {
	e.t.Helper()
	if p.AppName == "" {
		p.AppName = "billing"
	}
	if err := e.fab.PublishPlan(p); err != nil {
		e.t.Fatalf("publish: %v", err)
	}
}

// running is an agent whose Start runs in the background.
type running struct {
	*Agent
	cancel context.CancelFunc
	done   chan error
}

// startAgent starts an agent on node with test-sized timings; it is stopped
// (and checked to leave no workload behind) when the test ends.
func (e *env) startAgent(node string, tweak func(*Options)) *running {
	e.t.Helper()
	opts := Options{
		NodeID:        node,
		Fabric:        e.fab,
		Repo:          e.repo,
		Trusted:       []ed25519.PublicKey{testPub},
		RunDir:        e.runDir,
		Health:        healthhttp.New(),
		HealthTimeout: 5 * time.Second, // generous: a loaded machine may start slowly
		Warmup:        300 * time.Millisecond,
		Grace:         2 * time.Second,
		Logger:        e.log,
	}
	if tweak != nil {
		tweak(&opts)
	}
	a, err := New(opts)
	if err != nil {
		e.t.Fatalf("agent.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Agent: a, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Start(ctx) }()
	e.t.Cleanup(func() { r.stop(e.t) })
	return r
}

// stop cancels the agent, waits for Start to return and checks that none of
// the processes it reported, nor anything left in their groups, still runs.
func (r *running) stop(t testing.TB) {
	t.Helper()
	seen := r.Instances()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("agent %s Start: %v", r.opts.NodeID, err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("agent %s did not stop", r.opts.NodeID)
	}
	for _, s := range append(seen, r.Instances()...) {
		if s.PID > 0 && pidAlive(s.PID) {
			t.Errorf("agent %s stopped but workload %s pid %d still runs", r.opts.NodeID, s.Instance, s.PID)
		}
		if s.PID > 0 {
			// SIGKILL is delivered asynchronously: give the kernel a moment
			// to finish killing what was signalled.
			left := groupMembers(s.PID, 0)
			for deadline := time.Now().Add(2 * time.Second); len(left) > 0 && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
				left = groupMembers(s.PID, 0)
			}
			if len(left) > 0 {
				t.Errorf("agent %s stopped but processes %v of workload %s's group still run", r.opts.NodeID, left, s.Instance)
			}
		}
	}
}

// pidAlive reports whether pid is a live (not zombie) process.
func pidAlive(pid int) bool {
	st, err := readProcStat(pid)
	return err == nil && st.State != 'Z' && st.State != 'X'
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// live returns the instances of app on r in the given state.
func (r *running) inState(app, state string) []InstanceStatus {
	var out []InstanceStatus
	for _, s := range r.Instances() {
		if s.App == app && s.State == state {
			out = append(out, s)
		}
	}
	return out
}

// finished reports whether instance id has stopped or failed on r; an
// instance no longer listed (pruned after it finished) counts as finished.
func (r *running) finished(id string) bool {
	for _, s := range r.Instances() {
		if s.Instance == id {
			return s.State == StateStopped || s.State == StateFailed
		}
	}
	return true
}

// readyWith waits until r has exactly one ready instance of app with digest
// and returns it.
func (r *running) readyWith(t testing.TB, app, digest string, timeout time.Duration) InstanceStatus {
	t.Helper()
	return r.readyOther(t, app, digest, "", timeout)
}

// readyOther is readyWith for an instance other than the one named not.
func (r *running) readyOther(t testing.TB, app, digest, not string, timeout time.Duration) InstanceStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ready := r.inState(app, StateReady)
		if len(ready) == 1 && ready[0].Digest == digest && ready[0].Instance != not {
			return ready[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s ready on %s with %s; instances: %+v",
				timeout, app, r.opts.NodeID, digest, r.Instances())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func endpointOf(f *fabric.Fabric, app, node string) (fabric.Endpoint, bool) {
	for _, e := range f.Endpoints(app) {
		if e.NodeID == node {
			return e, true
		}
	}
	return fabric.Endpoint{}, false
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

func get(url string) (string, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: status %d: %s", url, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return string(body), nil
}
