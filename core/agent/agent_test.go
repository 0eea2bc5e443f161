package agent

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/plugins/healthhttp"
)

func TestNewRefusesIncompleteOptions(t *testing.T) {
	e := newEnv(t)
	good := Options{
		NodeID: "n1", Fabric: e.fab, Repo: e.repo, Trusted: []ed25519.PublicKey{testPub},
		RunDir: e.runDir, Health: healthhttp.New(),
	}
	tests := []struct {
		name  string
		tweak func(*Options)
	}{
		{"no node", func(o *Options) { o.NodeID = "" }},
		{"bad node", func(o *Options) { o.NodeID = "../x" }},
		{"no fabric", func(o *Options) { o.Fabric = nil }},
		{"no repo", func(o *Options) { o.Repo = nil }},
		{"no trust", func(o *Options) { o.Trusted = nil }},
		{"no run dir", func(o *Options) { o.RunDir = "" }},
		{"no health", func(o *Options) { o.Health = nil }},
		{"negative grace", func(o *Options) { o.Grace = -time.Second }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.tweak(&o)
			if _, err := New(o); err == nil {
				t.Fatal("New accepted incomplete options")
			}
		})
	}
	if _, err := New(good); err != nil {
		t.Fatalf("New(good): %v", err)
	}
	byFunc := good
	byFunc.Trusted = nil
	byFunc.TrustedFunc = func() []ed25519.PublicKey { return []ed25519.PublicKey{testPub} }
	if _, err := New(byFunc); err != nil {
		t.Fatalf("New with TrustedFunc only: %v", err)
	}
}

func TestLaunchRegistersEndpoint(t *testing.T) {
	e := newEnv(t)
	d := e.spore("v1", nil)
	a1 := e.startAgent("n1", nil)
	a2 := e.startAgent("n2", nil)
	e.publish(fabric.Plan{Digest: d})

	for _, a := range []*running{a1, a2} {
		st := a.readyWith(t, "billing", d, 10*time.Second)
		ep, ok := endpointOf(e.fab, "billing", a.opts.NodeID)
		if !ok || ep.URL != st.URL {
			t.Fatalf("node %s: endpoint %+v, instance URL %s", a.opts.NodeID, ep, st.URL)
		}
		body, err := get(ep.URL + "/hello")
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("hello from billing v1 (%s)", st.Instance)
		if strings.TrimSpace(body) != want {
			t.Fatalf("GET /hello = %q, want %q", body, want)
		}
		instDir := filepath.Join(e.runDir, a.opts.NodeID, st.Instance)
		for _, f := range []string{"stdout.log", "stderr.log"} {
			if _, err := os.Stat(filepath.Join(instDir, f)); err != nil {
				t.Errorf("instance %s: %v", st.Instance, err)
			}
		}
		hex := strings.TrimPrefix(d, "sha256:")
		// Every node runs the digest from the one shared, read-only copy.
		shared, err := os.Stat(filepath.Join(e.runDir, ".spores", hex, "binary"))
		if err != nil {
			t.Fatalf("shared copy: %v", err)
		}
		if shared.Mode().Perm()&0o222 != 0 {
			t.Errorf("shared binary is writable: %v", shared.Mode())
		}
		if exe, err := os.Stat(fmt.Sprintf("/proc/%d/exe", st.PID)); err != nil || !os.SameFile(exe, shared) {
			t.Errorf("node %s: instance runs %v (%v), not the shared copy", a.opts.NodeID, exe, err)
		}
		if st.PID <= 0 || st.Port <= 0 || st.Since.IsZero() {
			t.Errorf("incomplete status %+v", st)
		}
		recs, _ := filepath.Glob(filepath.Join(e.runDir, a.opts.NodeID, "instances", "*.json"))
		if len(recs) != 1 {
			t.Errorf("node %s: %d instance records, want 1", a.opts.NodeID, len(recs))
		}
	}
	if got := len(e.fab.Endpoints("billing")); got != 2 {
		t.Fatalf("%d endpoints, want 2", got)
	}

	// Withdrawing the plan stops the app everywhere.
	pids := []int{a1.inState("billing", StateReady)[0].PID, a2.inState("billing", StateReady)[0].PID}
	if err := e.fab.DeletePlan("billing"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "workloads stopped and claims released after the plan was deleted", func() bool {
		return !pidAlive(pids[0]) && !pidAlive(pids[1]) && len(e.fab.Endpoints("billing")) == 0 &&
			e.fab.Usage("billing") == fabric.Usage{} &&
			len(a1.inState("billing", StateStopped)) == 1 && len(a2.inState("billing", StateStopped)) == 1
	})
	// No plan names the digest and nothing runs it: its copy goes.
	waitFor(t, 10*time.Second, "shared copy removed after the plan was deleted", func() bool {
		_, err := os.Stat(filepath.Join(e.runDir, ".spores", strings.TrimPrefix(d, "sha256:")))
		return errors.Is(err, os.ErrNotExist)
	})
}

func TestHealthFailureLeavesNothing(t *testing.T) {
	tests := []struct {
		mode string
	}{
		{"never"}, // /health hangs
		{"fail"},  // /health answers 500
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			e := newEnv(t)
			d := e.spore("v1-"+tc.mode, map[string]string{"HELLO_HEALTH": tc.mode})
			a := e.startAgent("n1", func(o *Options) { o.HealthTimeout = 500 * time.Millisecond })
			e.publish(fabric.Plan{Digest: d, Restart: fabric.RestartNever})
			var failed InstanceStatus
			waitFor(t, 10*time.Second, "instance marked failed", func() bool {
				f := a.inState("billing", StateFailed)
				if len(f) == 1 {
					failed = f[0]
					return true
				}
				return false
			})
			if failed.PID <= 0 {
				t.Fatalf("failed instance never launched: %+v", failed)
			}
			if !strings.Contains(failed.LastError, "not healthy") {
				t.Errorf("LastError %q does not say why", failed.LastError)
			}
			if pidAlive(failed.PID) {
				t.Errorf("unhealthy workload pid %d still runs", failed.PID)
			}
			if eps := e.fab.Endpoints("billing"); len(eps) != 0 {
				t.Errorf("endpoints registered for an unhealthy workload: %+v", eps)
			}
			if u := e.fab.Usage("billing"); u.Instances != 0 {
				t.Errorf("claim kept by a failed instance: %+v", u)
			}
			// Restart "never": once the agent has decided so, no second
			// attempt exists.
			waitFor(t, 10*time.Second, "restart decision", func() bool {
				return strings.Contains(e.logs.String(), "not restarting")
			})
			if n := len(a.Instances()); n != 1 {
				t.Errorf("%d instances after a failed start with restart never, want 1", n)
			}
		})
	}
}

func TestCrashDeregistersAndFollowsPolicy(t *testing.T) {
	tests := []struct {
		restart   string
		relaunch  bool
		signal    syscall.Signal
		cleanExit bool
	}{
		{fabric.RestartAlways, true, syscall.SIGKILL, false},
		{fabric.RestartNever, false, syscall.SIGKILL, false},
		{fabric.RestartOnFailure, true, syscall.SIGKILL, false},
		{fabric.RestartOnFailure, false, syscall.SIGTERM, true}, // hello exits 0 on SIGTERM
	}
	for _, tc := range tests {
		t.Run(tc.restart+"-"+tc.signal.String(), func(t *testing.T) {
			e := newEnv(t)
			d := e.spore("v1", nil)
			a := e.startAgent("n1", nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			watch := e.fab.WatchEndpoints(ctx)
			e.publish(fabric.Plan{Digest: d, Restart: tc.restart})
			first := a.readyWith(t, "billing", d, 10*time.Second)
			// Wait until the watcher sees the endpoint, then kill the workload
			// behind the agent's back and time how long the endpoint stays.
			for s := range watch {
				if len(s.Apps["billing"]) == 1 {
					break
				}
			}
			killed := time.Now()
			if err := syscall.Kill(first.PID, tc.signal); err != nil {
				t.Fatal(err)
			}
			deregistered := false
			timeout := time.After(10 * time.Second)
			for !deregistered {
				select {
				case s := <-watch:
					if ep, ok := findNode(s.Apps["billing"], "n1"); !ok || ep.URL != first.URL {
						deregistered = true
					}
				case <-timeout:
					t.Fatal("endpoint of the killed workload still registered after 10s")
				}
			}
			t.Logf("endpoint withdrawn %s after the kill", time.Since(killed))

			if tc.relaunch {
				second := a.readyOther(t, "billing", d, first.Instance, 10*time.Second)
				if second.PID == first.PID || second.Instance == first.Instance {
					t.Fatalf("not relaunched: %+v", second)
				}
				if second.Restarts != 1 {
					t.Errorf("Restarts = %d, want 1", second.Restarts)
				}
				ep, ok := endpointOf(e.fab, "billing", "n1")
				if !ok || ep.URL != second.URL {
					t.Fatalf("endpoint %+v, want the relaunched %s", ep, second.URL)
				}
				if _, err := get(ep.URL + "/hello"); err != nil {
					t.Fatal(err)
				}
				return
			}
			// Stays down: the agent decided not to restart, and nothing runs.
			waitFor(t, 10*time.Second, "restart decision", func() bool {
				return strings.Contains(e.logs.String(), "not restarting")
			})
			if ready := a.inState("billing", StateReady); len(ready) != 0 {
				t.Fatalf("relaunched against policy %s: %+v", tc.restart, ready)
			}
			if _, ok := endpointOf(e.fab, "billing", "n1"); ok {
				t.Fatal("endpoint registered while the app is down")
			}
			want := StateFailed
			if tc.cleanExit {
				want = StateStopped
			}
			if st := a.inState("billing", want); len(st) != 1 {
				t.Fatalf("instances %+v, want one %s", a.Instances(), want)
			}
		})
	}
}

func findNode(eps []fabric.Endpoint, node string) (fabric.Endpoint, bool) {
	for _, e := range eps {
		if e.NodeID == node {
			return e, true
		}
	}
	return fabric.Endpoint{}, false
}

// Three agents contend for two slots: exactly two instances run, and when
// one goes away for good the third node takes the free slot.
func TestBudgetContention(t *testing.T) {
	tests := []struct {
		name   string
		plan   fabric.Plan
		budget fabric.Budget
	}{
		{"plan max", fabric.Plan{Max: 2}, fabric.Budget{}},
		{"budget instances", fabric.Plan{}, fabric.Budget{MaxInstances: 2}},
		{"budget cpu", fabric.Plan{Max: 5}, fabric.Budget{CPUmilli: 250}}, // 100m each
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			d := e.spore("v1", nil)
			tc.budget.AppName = "billing"
			if err := e.fab.SetBudget(tc.budget); err != nil {
				t.Fatal(err)
			}
			var agents []*running
			for _, n := range []string{"n1", "n2", "n3"} {
				agents = append(agents, e.startAgent(n, nil))
			}
			tc.plan.Digest, tc.plan.Restart = d, fabric.RestartNever
			e.publish(tc.plan)
			readyCount := func() (n int, idle *running) {
				for _, a := range agents {
					if len(a.inState("billing", StateReady)) > 0 {
						n++
					} else {
						idle = a
					}
				}
				return n, idle
			}
			waitFor(t, 10*time.Second, "two instances", func() bool { n, _ := readyCount(); return n == 2 })
			// The third node is refused, retries after claimRetry and is
			// refused again.
			waitFor(t, 10*time.Second, "a refused claim retried", func() bool {
				return strings.Count(e.logs.String(), "budget refusal") >= 2
			})
			n, idle := readyCount()
			if n != 2 || len(e.fab.Endpoints("billing")) != 2 {
				t.Fatalf("%d ready instances and %d endpoints, want 2", n, len(e.fab.Endpoints("billing")))
			}
			for _, a := range agents {
				for _, s := range a.Instances() {
					if s.State == StateStarting {
						t.Fatalf("node %s holds a starting instance beyond the budget: %+v", a.opts.NodeID, s)
					}
				}
			}
			if !strings.Contains(e.logs.String(), "budget refusal") {
				t.Error("no budget refusal logged")
			}
			// One instance dies for good: the idle node fills the slot.
			var victim InstanceStatus
			for _, a := range agents {
				if a != idle {
					victim = a.inState("billing", StateReady)[0]
					break
				}
			}
			if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			idle.readyWith(t, "billing", d, 10*time.Second)
			time.Sleep(100 * time.Millisecond)
			if n, _ := readyCount(); n != 2 {
				t.Fatalf("%d ready instances after the refill, want 2", n)
			}
		})
	}
}

// loadClients sends GET /hello continuously, each request to one of the
// endpoints the fabric lists at that moment. Any failure counts.
type loadClients struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
	versions   map[string]bool
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startLoad(f *fabric.Fabric, app string, workers int) *loadClients {
	l := &loadClients{stop: make(chan struct{}), versions: map[string]bool{}}
	client := &http.Client{Timeout: 5 * time.Second}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := w; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				eps := f.Endpoints(app)
				if len(eps) == 0 {
					time.Sleep(time.Millisecond)
					continue
				}
				url := eps[i%len(eps)].URL + "/hello"
				resp, err := client.Get(url)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					if len(l.errs) < 10 {
						l.errs = append(l.errs, fmt.Sprintf("%s: %v", url, err))
					}
					l.mu.Unlock()
					continue
				}
				l.ok.Add(1)
				l.mu.Lock()
				l.versions[resp.Header.Get("X-Hello-Version")] = true
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *loadClients) finish() {
	close(l.stop)
	l.wg.Wait()
}

func TestBlueGreenUnderLoad(t *testing.T) {
	e := newEnv(t)
	const warmup, grace = 300 * time.Millisecond, 500 * time.Millisecond
	tweak := func(o *Options) { o.Warmup, o.Grace = warmup, grace }
	agents := []*running{e.startAgent("n1", tweak), e.startAgent("n2", tweak)}
	// The design bar is 20 consecutive updates; -short runs 3.
	updates := 20
	if testing.Short() {
		updates = 3
	}
	versions := make([]string, updates+1)
	digests := make([]string, len(versions))
	for i := range versions {
		versions[i] = fmt.Sprintf("v%d", i+1)
		digests[i] = e.spore(versions[i], nil)
	}
	e.publish(fabric.Plan{Digest: digests[0], Restart: fabric.RestartAlways})
	prev := map[string]InstanceStatus{}
	for _, a := range agents {
		prev[a.opts.NodeID] = a.readyWith(t, "billing", digests[0], 10*time.Second)
	}
	load := startLoad(e.fab, "billing", 4)
	for i := 1; i < len(versions); i++ {
		began := time.Now()
		e.publish(fabric.Plan{Digest: digests[i], Restart: fabric.RestartAlways})
		for _, a := range agents {
			cur := a.readyWith(t, "billing", digests[i], 10*time.Second)
			ep, _ := endpointOf(e.fab, "billing", a.opts.NodeID)
			if ep.URL != cur.URL {
				t.Fatalf("node %s: endpoint %s, want the new instance %s", a.opts.NodeID, ep.URL, cur.URL)
			}
			// The process can be reaped a moment before the agent records
			// the instance as stopped: wait for both, so that the count of
			// live instances below sees settled states.
			old := prev[a.opts.NodeID]
			waitFor(t, warmup+grace+3*time.Second, fmt.Sprintf("old instance %s (pid %d) stopped on %s", old.Instance, old.PID, a.opts.NodeID), func() bool {
				return !pidAlive(old.PID) && a.finished(old.Instance)
			})
			prev[a.opts.NodeID] = cur
		}
		t.Logf("update %d: new version ready and old processes gone after %s", i, time.Since(began))
		time.Sleep(100 * time.Millisecond) // some traffic on the new version alone
	}
	load.finish()
	t.Logf("%d requests during %d updates, %d failed", load.ok.Load(), len(versions)-1, load.failed.Load())
	if n := load.failed.Load(); n != 0 {
		t.Fatalf("%d failed requests during blue/green: %v", n, load.errs)
	}
	if load.ok.Load() < 100 {
		t.Fatalf("only %d requests made; the load did not run", load.ok.Load())
	}
	for _, v := range versions {
		if !load.versions[v] {
			t.Errorf("version %s never served (served: %v)", v, load.versions)
		}
	}
	for _, a := range agents {
		live := 0
		for _, s := range a.Instances() {
			if s.State != StateStopped && s.State != StateFailed {
				live++
			}
		}
		if live != 1 {
			t.Errorf("node %s: %d live instances, want 1: %+v", a.opts.NodeID, live, a.Instances())
		}
	}
}

func TestBrokenNewVersionKeepsOldServing(t *testing.T) {
	e := newEnv(t)
	good := e.spore("v1", nil)
	bad := e.spore("v2", map[string]string{"HELLO_HEALTH": "fail"})
	a := e.startAgent("n1", func(o *Options) { o.HealthTimeout = 500 * time.Millisecond })
	e.publish(fabric.Plan{Digest: good})
	old := a.readyWith(t, "billing", good, 10*time.Second)
	e.publish(fabric.Plan{Digest: bad})
	waitFor(t, 10*time.Second, "broken version marked failed", func() bool {
		for _, s := range a.inState("billing", StateFailed) {
			if s.Digest == bad && s.LastError != "" {
				return true
			}
		}
		return false
	})
	ep, ok := endpointOf(e.fab, "billing", "n1")
	if !ok || ep.URL != old.URL {
		t.Fatalf("endpoint %+v, want the old instance %s", ep, old.URL)
	}
	body, err := get(ep.URL + "/hello")
	if err != nil || !strings.Contains(body, "v1") {
		t.Fatalf("old instance not serving: %q %v", body, err)
	}
	if st := a.readyWith(t, "billing", good, time.Second); st.PID != old.PID {
		t.Fatalf("old instance replaced: %+v", st)
	}
	for _, s := range a.Instances() {
		if s.Digest == bad && pidAlive(s.PID) {
			t.Fatalf("broken instance pid %d still runs", s.PID)
		}
	}
	if !strings.Contains(e.logs.String(), "health fail") {
		t.Error("health failure not logged")
	}
}

// v2 is slow to get healthy; v3 arrives before it is: the agent converges on
// v3 and no process of v1 or v2 is left.
func TestRapidUpdatesConverge(t *testing.T) {
	e := newEnv(t)
	v1 := e.spore("v1", nil)
	v2 := e.spore("v2", map[string]string{"HELLO_READY_DELAY": "1s"})
	v3 := e.spore("v3", nil)
	a := e.startAgent("n1", func(o *Options) { o.Warmup = 100 * time.Millisecond })
	e.publish(fabric.Plan{Digest: v1})
	first := a.readyWith(t, "billing", v1, 10*time.Second)
	e.publish(fabric.Plan{Digest: v2})
	var slow InstanceStatus
	waitFor(t, 10*time.Second, "v2 launched", func() bool {
		for _, s := range a.inState("billing", StateStarting) {
			if s.Digest == v2 && s.PID > 0 {
				slow = s
				return true
			}
		}
		return false
	})
	e.publish(fabric.Plan{Digest: v3})
	last := a.readyWith(t, "billing", v3, 10*time.Second)
	waitFor(t, 5*time.Second, "v1 and v2 processes gone", func() bool {
		return !pidAlive(first.PID) && !pidAlive(slow.PID)
	})
	ep, _ := endpointOf(e.fab, "billing", "n1")
	if ep.URL != last.URL {
		t.Fatalf("endpoint %s, want v3 at %s", ep.URL, last.URL)
	}
	for _, s := range a.Instances() {
		if s.Digest == v2 && s.State == StateReady {
			t.Fatalf("superseded v2 became ready: %+v", s)
		}
		if s.Instance != last.Instance && pidAlive(s.PID) {
			t.Fatalf("leaked instance %+v", s)
		}
	}
}

func TestUntrustedSporeRefused(t *testing.T) {
	e := newEnv(t)
	d := e.spore("v1", nil)
	other, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	a := e.startAgent("n1", func(o *Options) { o.Trusted = []ed25519.PublicKey{other} })
	e.publish(fabric.Plan{Digest: d})
	waitFor(t, 10*time.Second, "untrusted spore marked failed", func() bool {
		f := a.inState("billing", StateFailed)
		return len(f) == 1 && strings.Contains(f[0].LastError, "trust")
	})
	if st := a.inState("billing", StateFailed)[0]; st.PID != 0 {
		t.Fatalf("untrusted spore was launched: %+v", st)
	}
	if _, err := os.Stat(filepath.Join(e.runDir, sharedDirName, strings.TrimPrefix(d, "sha256:"))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("untrusted spore extracted: %v", err)
	}
}

// Plan.Port is used when free; a node that cannot bind it (here: another
// node on the same host already does) falls back to a free port.
func TestPreferredPort(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	d := e.spore("v1", nil)
	a1 := e.startAgent("n1", nil)
	e.publish(fabric.Plan{Digest: d, Port: port})
	s1 := a1.readyWith(t, "billing", d, 10*time.Second)
	if s1.Port != port {
		t.Fatalf("first node on port %d, want the preferred %d", s1.Port, port)
	}
	a2 := e.startAgent("n2", nil)
	s2 := a2.readyWith(t, "billing", d, 10*time.Second)
	if s2.Port == port || s2.Port == 0 {
		t.Fatalf("second node on port %d, want a free port other than %d", s2.Port, port)
	}
	for _, s := range []InstanceStatus{s1, s2} {
		ep, _ := endpointOf(e.fab, "billing", s.NodeID)
		if ep.URL != s.URL {
			t.Fatalf("endpoint %s, want %s", ep.URL, s.URL)
		}
		if _, err := get(ep.URL + "/hello"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSameNodeTwiceRefused(t *testing.T) {
	e := newEnv(t)
	e.startAgent("n1", nil)
	waitFor(t, 5*time.Second, "first agent holding its node", func() bool {
		_, err := os.Stat(filepath.Join(e.runDir, "n1", "agent.lock"))
		return err == nil
	})
	time.Sleep(20 * time.Millisecond)
	second, err := New(Options{
		NodeID: "n1", Fabric: e.fab, Repo: e.repo, Trusted: []ed25519.PublicKey{testPub},
		RunDir: e.runDir, Health: healthhttp.New(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := second.Start(ctx); !errors.Is(err, ErrNodeInUse) {
		t.Fatalf("second agent on the same node: %v, want ErrNodeInUse", err)
	}
}

// A plan's HealthPath replaces the agent's default: a workload whose /health
// fails but whose /hello answers becomes ready when the plan says /hello.
func TestPlanHealthPath(t *testing.T) {
	e := newEnv(t)
	d := e.spore("v1-healthpath", map[string]string{"HELLO_HEALTH": "fail"})
	a := e.startAgent("n1", func(o *Options) { o.HealthTimeout = 2 * time.Second })
	e.publish(fabric.Plan{Digest: d, HealthPath: "/hello"})
	st := a.readyWith(t, "billing", d, 10*time.Second)
	if ep, ok := endpointOf(e.fab, "billing", "n1"); !ok || ep.URL != st.URL {
		t.Fatalf("endpoint %+v, want %s", ep, st.URL)
	}
}

// Instance directories left by earlier runs are pruned to the newest few per
// planned app when an agent starts, those of apps no longer planned are
// removed; other directories are left alone.
func TestOldInstanceDirsPruned(t *testing.T) {
	e := newEnv(t)
	e.publish(fabric.Plan{Digest: e.spore("v1", nil), Restart: fabric.RestartNever})
	node := filepath.Join(e.runDir, "n1")
	var retired []string
	for i := 0; i < 2; i++ {
		dir := filepath.Join(node, fmt.Sprintf("retired-%08x", i))
		if err := os.MkdirAll(filepath.Join(dir, "x"), 0o700); err != nil {
			t.Fatal(err)
		}
		retired = append(retired, dir)
	}
	now := time.Now()
	var names []string
	for i := 0; i < 8; i++ {
		name := fmt.Sprintf("billing-%08x", i)
		dir := filepath.Join(node, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		when := now.Add(time.Duration(i-10) * time.Minute) // i=7 is the newest
		if err := os.Chtimes(dir, when, when); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	keep := filepath.Join(node, "notes-not-an-instance")
	if err := os.MkdirAll(keep, 0o700); err != nil {
		t.Fatal(err)
	}
	e.startAgent("n1", nil)
	waitFor(t, 5*time.Second, "old instance dirs pruned", func() bool {
		for _, name := range names[:3] {
			if _, err := os.Stat(filepath.Join(node, name)); !os.IsNotExist(err) {
				return false
			}
		}
		for _, dir := range retired {
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				return false
			}
		}
		return true
	})
	for i, name := range names {
		_, err := os.Stat(filepath.Join(node, name))
		if gone := os.IsNotExist(err); gone != (i < 3) {
			t.Errorf("%s: gone=%v, want %v", name, gone, i < 3)
		}
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("unrelated directory removed: %v", err)
	}
	for _, dir := range retired {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("directory of an app no longer planned kept: %s (%v)", dir, err)
		}
	}
}
