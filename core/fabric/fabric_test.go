package fabric

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func digest(n int) string {
	return fmt.Sprintf("sha256:%064x", n)
}

func newFabric(t *testing.T, dir string) *Fabric {
	t.Helper()
	f, err := New(Options{DataDir: dir})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func recvPlan(t *testing.T, ch <-chan Plan) Plan {
	t.Helper()
	select {
	case p, ok := <-ch:
		if !ok {
			t.Fatal("plan channel closed")
		}
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("no plan within 5s")
	}
	return Plan{}
}

func TestPlanValidate(t *testing.T) {
	tests := []struct {
		name string
		plan Plan
		ok   bool
	}{
		{"good", Plan{AppName: "billing", Digest: digest(1), Min: 1, Max: 2}, true},
		{"restart always", Plan{AppName: "billing", Digest: digest(1), Restart: RestartAlways}, true},
		{"empty app", Plan{Digest: digest(1)}, false},
		{"slash in app", Plan{AppName: "a/b", Digest: digest(1)}, false},
		{"dot app", Plan{AppName: "..", Digest: digest(1)}, false},
		{"bad digest", Plan{AppName: "a", Digest: "sha256:zz"}, false},
		{"no digest", Plan{AppName: "a"}, false},
		{"min above max", Plan{AppName: "a", Digest: digest(1), Min: 3, Max: 2}, false},
		{"negative", Plan{AppName: "a", Digest: digest(1), Max: -1}, false},
		{"port range", Plan{AppName: "a", Digest: digest(1), Port: 70000}, false},
		{"restart unknown", Plan{AppName: "a", Digest: digest(1), Restart: "sometimes"}, false},
	}
	f := newFabric(t, "")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := f.PublishPlan(tc.plan)
			if tc.ok != (err == nil) {
				t.Fatalf("PublishPlan(%+v) = %v, want ok=%v", tc.plan, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestSubscribeGetsCurrentPlansFirst(t *testing.T) {
	f := newFabric(t, "")
	for i, app := range []string{"b", "a", "c"} {
		if err := f.PublishPlan(Plan{AppName: app, Digest: digest(i)}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := f.Subscribe(ctx)
	var got []string
	for range 3 {
		got = append(got, recvPlan(t, ch).AppName)
	}
	if strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("initial plans %v, want a,b,c", got)
	}
	if err := f.PublishPlan(Plan{AppName: "d", Digest: digest(9)}); err != nil {
		t.Fatal(err)
	}
	if p := recvPlan(t, ch); p.AppName != "d" || p.Digest != digest(9) {
		t.Fatalf("got %+v, want plan d", p)
	}
	if err := f.DeletePlan("a"); err != nil {
		t.Fatal(err)
	}
	if p := recvPlan(t, ch); p.AppName != "a" || !p.Deleted() {
		t.Fatalf("got %+v, want deletion of a", p)
	}
	if err := f.DeletePlan("a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("received a plan after cancel instead of close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed after ctx cancel")
	}
}

// A subscriber that does not read while 1000 plans over 10 apps are published
// then receives exactly the newest plan of each app, and PublishPlan never
// waited for it.
func TestSlowSubscriberCoalescesPerApp(t *testing.T) {
	f := newFabric(t, "")
	slow := f.SubscribePlans()
	const apps, total = 10, 1000
	latest := map[string]string{}
	start := make(chan struct{})
	done := make(chan struct{})
	go func() {
		<-start
		for i := range total {
			app := fmt.Sprintf("app%d", i%apps)
			if err := f.PublishPlan(Plan{AppName: app, Digest: digest(i)}); err != nil {
				t.Error(err)
			}
		}
		close(done)
	}()
	for i := range total {
		latest[fmt.Sprintf("app%d", i%apps)] = digest(i)
	}
	close(start)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("PublishPlan blocked on a subscriber that does not read")
	}
	got := map[string]string{}
	for range apps {
		p := recvPlan(t, slow)
		if _, dup := got[p.AppName]; dup {
			t.Fatalf("app %s delivered twice; want one coalesced plan per app", p.AppName)
		}
		got[p.AppName] = p.Digest
	}
	for app, d := range latest {
		if got[app] != d {
			t.Errorf("app %s: got %s, want latest %s", app, got[app], d)
		}
	}
	select {
	case p := <-slow:
		t.Fatalf("extra plan %+v after the coalesced set", p)
	case <-time.After(50 * time.Millisecond):
	}
}

// A reader that reads while a publisher runs sees every app's final plan.
func TestConcurrentPublishAndReadConverges(t *testing.T) {
	f := newFabric(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := f.Subscribe(ctx)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				_ = f.PublishPlan(Plan{AppName: fmt.Sprintf("w%d", w), Digest: digest(i)})
			}
		}()
	}
	seen := map[string]string{}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case p := <-ch:
			seen[p.AppName] = p.Digest
			continue
		case <-deadline:
			t.Fatalf("did not converge: %v", seen)
		case <-finished:
		}
		break
	}
	for len(seen) < 4 || seen["w0"] != digest(199) || seen["w1"] != digest(199) || seen["w2"] != digest(199) || seen["w3"] != digest(199) {
		select {
		case p := <-ch:
			seen[p.AppName] = p.Digest
		case <-deadline:
			t.Fatalf("did not converge to the last plans: %v", seen)
		}
	}
}

func TestClaimNeverOvershoots(t *testing.T) {
	tests := []struct {
		name       string
		plan       Plan
		budget     Budget
		cpu, mem   int
		wantGrants int
	}{
		{"plan max", Plan{Max: 3}, Budget{}, 100, 64, 3},
		{"budget max below plan", Plan{Max: 5}, Budget{MaxInstances: 2}, 100, 64, 2},
		{"cpu budget", Plan{}, Budget{CPUmilli: 1000}, 300, 64, 3},
		{"memory budget", Plan{Max: 10}, Budget{MemoryMB: 512}, 100, 128, 4},
		{"unlimited", Plan{}, Budget{}, 100, 64, 40},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFabric(t, "")
			tc.plan.AppName, tc.plan.Digest = "app", digest(1)
			tc.budget.AppName = "app"
			if err := f.PublishPlan(tc.plan); err != nil {
				t.Fatal(err)
			}
			if err := f.SetBudget(tc.budget); err != nil {
				t.Fatal(err)
			}
			var granted, refused atomic.Int64
			var releases sync.Map
			var wg sync.WaitGroup
			start := make(chan struct{})
			for n := range 40 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					rel, err := f.Claim("app", fmt.Sprintf("node%d", n), tc.cpu, tc.mem)
					switch {
					case err == nil:
						granted.Add(1)
						releases.Store(n, rel)
					case errors.Is(err, ErrBudgetExceeded):
						refused.Add(1)
					default:
						t.Errorf("claim: %v", err)
					}
				}()
			}
			close(start)
			wg.Wait()
			if got := granted.Load(); got != int64(tc.wantGrants) {
				t.Fatalf("granted %d claims, want %d (refused %d)", got, tc.wantGrants, refused.Load())
			}
			u := f.Usage("app")
			if u.Instances != tc.wantGrants || u.CPUmilli != tc.wantGrants*tc.cpu || u.MemoryMB != tc.wantGrants*tc.mem {
				t.Fatalf("usage %+v after %d grants", u, tc.wantGrants)
			}
			// Release every claim twice: idempotent, usage back to zero.
			releases.Range(func(_, v any) bool {
				v.(func())()
				v.(func())()
				return true
			})
			if u := f.Usage("app"); u != (Usage{}) {
				t.Fatalf("usage %+v after releasing everything", u)
			}
		})
	}
}

// A node's rollout successor does not count as a second instance, and its
// resources count as the larger of the two claims.
func TestClaimSuccessorOnSameNode(t *testing.T) {
	f := newFabric(t, "")
	if err := f.PublishPlan(Plan{AppName: "app", Digest: digest(1), Max: 2}); err != nil {
		t.Fatal(err)
	}
	if err := f.SetBudget(Budget{AppName: "app", CPUmilli: 500}); err != nil {
		t.Fatal(err)
	}
	r1, err := f.Claim("app", "n1", 200, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Claim("app", "n2", 200, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Claim("app", "n3", 100, 0); !errors.Is(err, ErrBudgetExceeded) {
		t.Fatalf("third node: %v, want ErrBudgetExceeded", err)
	}
	succ, err := f.Claim("app", "n1", 200, 0)
	if err != nil {
		t.Fatalf("successor on n1: %v", err)
	}
	if u := f.Usage("app"); u.Instances != 2 || u.CPUmilli != 400 {
		t.Fatalf("usage with successor %+v, want 2 instances 400m", u)
	}
	if _, err := f.Claim("app", "n1", 400, 0); !errors.Is(err, ErrBudgetExceeded) {
		t.Fatalf("bigger successor over cpu budget: %v, want ErrBudgetExceeded", err)
	}
	r1()
	if u := f.Usage("app"); u.Instances != 2 || u.CPUmilli != 400 {
		t.Fatalf("usage after old released %+v", u)
	}
	succ()
	if u := f.Usage("app"); u.Instances != 1 {
		t.Fatalf("usage after n1 gone %+v", u)
	}
}

func TestEndpoints(t *testing.T) {
	f := newFabric(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := f.WatchEndpoints(ctx)
	first := <-w
	if len(first.Apps) != 0 {
		t.Fatalf("initial snapshot %+v, want empty", first)
	}
	if err := f.PublishPlan(Plan{AppName: "a", Digest: digest(1), Min: 2}); err != nil {
		t.Fatal(err)
	}
	if !f.Degraded("a") {
		t.Fatal("app with no endpoints and min 2 not degraded")
	}
	a1 := Endpoint{AppName: "a", URL: "http://127.0.0.1:1", NodeID: "n2"}
	a2 := Endpoint{AppName: "a", URL: "http://127.0.0.1:2", NodeID: "n1"}
	f.RegisterEndpoint(a1)
	f.RegisterEndpoint(a2)
	if got := f.Endpoints("a"); len(got) != 2 || got[0] != a2 || got[1] != a1 {
		t.Fatalf("Endpoints = %+v, want sorted by node", got)
	}
	if f.Degraded("a") || f.Degraded("unplanned") {
		t.Fatal("degraded with min endpoints registered, or without a plan")
	}
	// The watcher did not read: it gets only the newest snapshot.
	snap := <-w
	if snap.Version <= first.Version || len(snap.Apps["a"]) != 2 {
		t.Fatalf("snapshot %+v, want both endpoints at a newer version", snap)
	}
	select {
	case s := <-w:
		t.Fatalf("stale snapshot %+v delivered after the newest", s)
	default:
	}
	replaced := Endpoint{AppName: "a", URL: "http://127.0.0.1:3", NodeID: "n1"}
	f.RegisterEndpoint(replaced)
	if got := f.Endpoints("a"); len(got) != 2 || got[0] != replaced {
		t.Fatalf("after replace %+v", got)
	}
	if f.RemoveEndpoint(a2) {
		t.Fatal("RemoveEndpoint removed a replaced endpoint")
	}
	if !f.RemoveEndpoint(replaced) {
		t.Fatal("RemoveEndpoint did not remove the current endpoint")
	}
	f.DeregisterEndpoint("a", "n2")
	if got := f.Endpoints("a"); len(got) != 0 {
		t.Fatalf("after deregister %+v", got)
	}
	snap = <-w
	if _, ok := snap.Apps["a"]; ok {
		t.Fatalf("newest snapshot still lists app a: %+v", snap)
	}
	// Many registrations never block on a watcher that does not read.
	done := make(chan struct{})
	go func() {
		for i := range 10000 {
			f.RegisterEndpoint(Endpoint{AppName: "b", URL: fmt.Sprint(i), NodeID: "n"})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("RegisterEndpoint blocked on a watcher")
	}
	if s := <-w; s.Apps["b"][0].URL != "9999" {
		t.Fatalf("watcher got %+v, want the newest", s.Apps["b"])
	}
	cancel()
	for range w {
	}
}

func TestReloadAfterRestart(t *testing.T) {
	dir := t.TempDir()
	f, err := New(Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	plans := []Plan{
		{AppName: "billing", Digest: digest(7), Min: 1, Max: 3, Port: 0, Restart: RestartAlways},
		{AppName: "gone", Digest: digest(8)},
		{AppName: "web", Digest: digest(9), Max: 1, Port: 8081},
	}
	for _, p := range plans {
		if err := f.PublishPlan(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.DeletePlan("gone"); err != nil {
		t.Fatal(err)
	}
	budget := Budget{AppName: "billing", MaxInstances: 2, CPUmilli: 500, MemoryMB: 256}
	if err := f.SetBudget(budget); err != nil {
		t.Fatal(err)
	}
	f.RegisterEndpoint(Endpoint{AppName: "billing", URL: "http://127.0.0.1:1", NodeID: "n1"})
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.PublishPlan(plans[0]); !errors.Is(err, ErrClosed) {
		t.Fatalf("publish after close: %v, want ErrClosed", err)
	}

	g := newFabric(t, dir)
	got := g.Plans()
	want := []Plan{plans[0], plans[2]}
	if len(got) != len(want) {
		t.Fatalf("reloaded plans %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("reloaded plan %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if b, ok := g.GetBudget("billing"); !ok || b != budget {
		t.Fatalf("reloaded budget %+v %v, want %+v", b, ok, budget)
	}
	if eps := g.Endpoints("billing"); len(eps) != 0 {
		t.Fatalf("endpoints survived a restart: %+v", eps)
	}
	ch := g.SubscribePlans()
	if p := recvPlan(t, ch); p != plans[0] {
		t.Fatalf("first plan after reload %+v", p)
	}
}
