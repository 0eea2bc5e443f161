// Package fabrictest is the conformance suite of fabric.Store: the
// behaviour agents, edges and the control process rely on, run the same way
// against every implementation (the embedded store and the clustered one).
//
// An implementation's test calls Run with a Factory. The factory makes one
// fresh, empty fabric per test and returns a function that opens another
// handle onto it: for the embedded store every handle is the same *Fabric,
// for a clustered store each handle is its own client, as every agent of a
// cluster has. Tests that speak of several agents use several handles, so
// atomicity across clients is checked where it matters.
//
// The suite waits for events (a plan on a subscription, a table on a watch)
// rather than sleeping; a handle must read its own writes at once.
package fabrictest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/fabric"
)

// Factory makes one fresh fabric for t and returns how to open handles
// onto it. The factory closes what it opens when t ends; tests may close a
// handle themselves as well.
type Factory func(t *testing.T) (open func() fabric.Store)

// Wait bounds every wait for an event from another handle; a clustered
// store delivers within milliseconds on loopback, so only a broken one
// reaches it.
const Wait = 20 * time.Second

// Run runs the whole suite against the implementation newFabric makes.
func Run(t *testing.T, newFabric Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open func() fabric.Store)
	}{
		{"PlansReadYourWrites", testPlans},
		{"PlanValidation", testPlanValidation},
		{"SubscribeDeliversCurrentThenChanges", testSubscribe},
		{"SubscribeCoalescesAndNeverBlocks", testCoalesce},
		{"SubscribeAcrossHandles", testSubscribeAcross},
		{"SwapPlan", testSwap},
		{"Budgets", testBudgets},
		{"ClaimLimits", testClaimLimits},
		{"ClaimAtomicAcrossHandles", testClaimAtomic},
		{"LoweredLimitsRevoke", testRevoke},
		{"Endpoints", testEndpoints},
		{"WatchEndpointsAcrossHandles", testWatchAcross},
		{"StartFailuresAcrossHandles", testStartFailures},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newFabric(t))
		})
	}
}

// Digest is a well-formed spore digest numbered n.
func Digest(n int) string {
	h := fmt.Sprintf("%064x", n)
	return "sha256:" + h
}

func plan(app string, n, maxN int) fabric.Plan {
	return fabric.Plan{AppName: app, Digest: Digest(n), Min: 1, Max: maxN}
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// next reads one plan or fails after Wait.
func next(t *testing.T, ch <-chan fabric.Plan) fabric.Plan {
	t.Helper()
	select {
	case p, ok := <-ch:
		if !ok {
			t.Fatal("plan subscription closed early")
		}
		return p
	case <-time.After(Wait):
		t.Fatal("no plan delivered")
	}
	return fabric.Plan{}
}

// until reads plans until ok accepts one.
func until(t *testing.T, ch <-chan fabric.Plan, ok func(fabric.Plan) bool) {
	t.Helper()
	for {
		if ok(next(t, ch)) {
			return
		}
	}
}

func testPlans(t *testing.T, open func() fabric.Store) {
	f := open()
	must(t, f.PublishPlan(plan("b", 1, 0)), "publish b")
	must(t, f.PublishPlan(plan("a", 2, 3)), "publish a")
	if p, ok := f.Plan("a"); !ok || p != plan("a", 2, 3) {
		t.Fatalf("Plan(a) = %+v, %v", p, ok)
	}
	ps := f.Plans()
	if len(ps) != 2 || ps[0].AppName != "a" || ps[1].AppName != "b" {
		t.Fatalf("Plans = %+v, want a then b", ps)
	}
	must(t, f.PublishPlan(plan("a", 3, 3)), "republish a")
	if p, _ := f.Plan("a"); p.Digest != Digest(3) {
		t.Fatalf("Plan(a) after republish = %+v", p)
	}
	must(t, f.DeletePlan("a"), "delete a")
	if _, ok := f.Plan("a"); ok {
		t.Fatal("Plan(a) still there after DeletePlan")
	}
	if err := f.DeletePlan("a"); !errors.Is(err, fabric.ErrNotFound) {
		t.Fatalf("second DeletePlan = %v, want ErrNotFound", err)
	}
}

func testPlanValidation(t *testing.T, open func() fabric.Store) {
	f := open()
	for _, p := range []fabric.Plan{
		{AppName: "", Digest: Digest(1)},
		{AppName: "a/b", Digest: Digest(1)},
		{AppName: "a", Digest: "sha256:xyz"},
		{AppName: "a", Digest: Digest(1), Min: 3, Max: 2},
		{AppName: "a", Digest: Digest(1), Restart: "sometimes"},
	} {
		if err := f.PublishPlan(p); !errors.Is(err, fabric.ErrInvalid) {
			t.Errorf("PublishPlan(%+v) = %v, want ErrInvalid", p, err)
		}
	}
	if err := f.SetBudget(fabric.Budget{AppName: "a", CPUmilli: -1}); !errors.Is(err, fabric.ErrInvalid) {
		t.Errorf("SetBudget negative = %v, want ErrInvalid", err)
	}
	if _, err := f.Acquire("a", "n1", -1, 0); !errors.Is(err, fabric.ErrInvalid) {
		t.Errorf("Acquire negative = %v, want ErrInvalid", err)
	}
	if len(f.Plans()) != 0 {
		t.Errorf("invalid plans were stored: %+v", f.Plans())
	}
}

func testSubscribe(t *testing.T, open func() fabric.Store) {
	f := open()
	must(t, f.PublishPlan(plan("a", 1, 0)), "publish a")
	must(t, f.PublishPlan(plan("b", 1, 0)), "publish b")
	ctx, cancel := context.WithCancel(context.Background())
	ch := f.Subscribe(ctx)
	got := map[string]fabric.Plan{}
	for len(got) < 2 {
		p := next(t, ch)
		got[p.AppName] = p
	}
	must(t, f.PublishPlan(plan("a", 2, 0)), "republish a")
	if p := next(t, ch); p != plan("a", 2, 0) {
		t.Fatalf("after republish got %+v", p)
	}
	must(t, f.DeletePlan("b"), "delete b")
	if p := next(t, ch); p.AppName != "b" || !p.Deleted() {
		t.Fatalf("after delete got %+v, want b deleted", p)
	}
	cancel()
	for range ch {
		// Drained until Subscribe closes it for the ended context.
	}
}

func testCoalesce(t *testing.T, open func() fabric.Store) {
	f := open()
	ch := f.Subscribe(t.Context())
	const versions = 60
	for i := 1; i <= versions; i++ {
		must(t, f.PublishPlan(plan("a", i, 0)), "publish a")
	}
	must(t, f.PublishPlan(plan("b", 1, 0)), "publish b")
	n, lastA, sawB := 0, "", false
	for lastA != Digest(versions) || !sawB {
		p := next(t, ch)
		n++
		switch p.AppName {
		case "a":
			lastA = p.Digest
		case "b":
			sawB = true
		}
	}
	if n > versions/2 {
		t.Fatalf("%d plans delivered for %d publications of one app: not coalesced", n, versions)
	}
}

func testSubscribeAcross(t *testing.T, open func() fabric.Store) {
	writer, reader := open(), open()
	ch := reader.Subscribe(t.Context())
	must(t, writer.PublishPlan(plan("a", 1, 0)), "publish a")
	until(t, ch, func(p fabric.Plan) bool { return p == plan("a", 1, 0) })
	must(t, writer.DeletePlan("a"), "delete a")
	until(t, ch, func(p fabric.Plan) bool { return p.AppName == "a" && p.Deleted() })
	if _, ok := reader.Plan("a"); ok {
		t.Fatal("reader still has the plan after its deletion was delivered")
	}
}

func testSwap(t *testing.T, open func() fabric.Store) {
	f := open()
	must(t, f.SwapPlan(nil, plan("a", 1, 0)), "swap onto nothing")
	if err := f.SwapPlan(nil, plan("a", 2, 0)); !errors.Is(err, fabric.ErrConflict) {
		t.Fatalf("swap onto nothing while a plan exists = %v, want ErrConflict", err)
	}
	stale := plan("a", 9, 0)
	if err := f.SwapPlan(&stale, plan("a", 2, 0)); !errors.Is(err, fabric.ErrConflict) {
		t.Fatalf("swap from a stale plan = %v, want ErrConflict", err)
	}
	cur := plan("a", 1, 0)
	must(t, f.SwapPlan(&cur, plan("a", 2, 0)), "swap from the current plan")
	if p, _ := f.Plan("a"); p.Digest != Digest(2) {
		t.Fatalf("plan after swap = %+v", p)
	}
}

func testBudgets(t *testing.T, open func() fabric.Store) {
	f := open()
	if _, ok := f.GetBudget("a"); ok {
		t.Fatal("budget before any was set")
	}
	b := fabric.Budget{AppName: "a", MaxInstances: 2, CPUmilli: 500, MemoryMB: 64}
	must(t, f.SetBudget(b), "set budget")
	if got, ok := f.GetBudget("a"); !ok || got != b {
		t.Fatalf("GetBudget = %+v, %v", got, ok)
	}
}

// claim is one Acquire of a table row.
type claim struct {
	node     string
	cpu, mem int
	refused  bool
}

func testClaimLimits(t *testing.T, open func() fabric.Store) {
	tests := []struct {
		name   string
		max    int
		budget fabric.Budget
		claims []claim
		want   fabric.Usage
	}{
		{"plan max", 2, fabric.Budget{}, []claim{{node: "n1"}, {node: "n2"}, {node: "n3", refused: true}}, fabric.Usage{Instances: 2}},
		{"budget below plan max", 3, fabric.Budget{MaxInstances: 1}, []claim{{node: "n1"}, {node: "n2", refused: true}}, fabric.Usage{Instances: 1}},
		{"cpu", 0, fabric.Budget{CPUmilli: 300}, []claim{{node: "n1", cpu: 200}, {node: "n2", cpu: 200, refused: true}, {node: "n2", cpu: 100}}, fabric.Usage{Instances: 2, CPUmilli: 300}},
		{"memory", 0, fabric.Budget{MemoryMB: 100}, []claim{{node: "n1", mem: 60}, {node: "n2", mem: 60, refused: true}}, fabric.Usage{Instances: 1, MemoryMB: 60}},
		{"one node counts once", 1, fabric.Budget{}, []claim{{node: "n1", cpu: 10}, {node: "n1", cpu: 20}, {node: "n2", refused: true}}, fabric.Usage{Instances: 1, CPUmilli: 20}},
		{"unlimited", 0, fabric.Budget{}, []claim{{node: "n1"}, {node: "n2"}, {node: "n3"}}, fabric.Usage{Instances: 3}},
	}
	f := open()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			app := fmt.Sprintf("app%d", i)
			must(t, f.PublishPlan(plan(app, 1, tc.max)), "publish")
			if tc.budget != (fabric.Budget{}) {
				tc.budget.AppName = app
				must(t, f.SetBudget(tc.budget), "set budget")
			}
			var leases []*fabric.Lease
			for _, c := range tc.claims {
				l, err := f.Acquire(app, c.node, c.cpu, c.mem)
				switch {
				case c.refused && !errors.Is(err, fabric.ErrBudgetExceeded):
					t.Fatalf("Acquire %+v = %v, want ErrBudgetExceeded", c, err)
				case !c.refused && err != nil:
					t.Fatalf("Acquire %+v: %v", c, err)
				case err == nil:
					leases = append(leases, l)
				}
			}
			if u := f.Usage(app); u != tc.want {
				t.Fatalf("Usage = %+v, want %+v", u, tc.want)
			}
			for _, l := range leases {
				l.Release()
				l.Release()
			}
			if u := f.Usage(app); u != (fabric.Usage{}) {
				t.Fatalf("Usage after every release = %+v, want none", u)
			}
		})
	}
}

func testClaimAtomic(t *testing.T, open func() fabric.Store) {
	const agents = 4
	stores := make([]fabric.Store, agents)
	for i := range stores {
		stores[i] = open()
	}
	must(t, stores[0].PublishPlan(plan("a", 1, 1)), "publish")
	for _, s := range stores {
		until(t, s.Subscribe(t.Context()), func(p fabric.Plan) bool { return p.Max == 1 })
	}
	type result struct {
		l   *fabric.Lease
		err error
	}
	results := make(chan result, agents)
	for i, s := range stores {
		go func() {
			l, err := s.Acquire("a", fmt.Sprintf("n%d", i), 0, 0)
			results <- result{l, err}
		}()
	}
	granted := 0
	for range agents {
		r := <-results
		switch {
		case r.err == nil:
			granted++
			t.Cleanup(r.l.Release)
		case !errors.Is(r.err, fabric.ErrBudgetExceeded):
			t.Fatalf("Acquire: %v", r.err)
		}
	}
	if granted != 1 {
		t.Fatalf("%d agents got the single slot", granted)
	}
}

func testRevoke(t *testing.T, open func() fabric.Store) {
	f := open()
	must(t, f.PublishPlan(plan("a", 1, 2)), "publish max 2")
	l1, err := f.Acquire("a", "n1", 0, 0)
	must(t, err, "acquire n1")
	l2, err := f.Acquire("a", "n2", 0, 0)
	must(t, err, "acquire n2")
	must(t, f.PublishPlan(plan("a", 1, 1)), "publish max 1")
	select {
	case <-l2.Revoked():
	case <-time.After(Wait):
		t.Fatal("the claim of n2, in excess of max 1, was not revoked")
	}
	select {
	case <-l1.Revoked():
		t.Fatal("the claim of n1, within max 1, was revoked")
	default:
	}
	if _, err := f.Acquire("a", "n2", 0, 0); !errors.Is(err, fabric.ErrBudgetExceeded) {
		t.Fatalf("new claim of the excess node = %v, want ErrBudgetExceeded", err)
	}
	l2.Release()
	if u := f.Usage("a"); u.Instances != 1 {
		t.Fatalf("Usage after the revoked claim was released = %+v", u)
	}
	l1.Release()
	l3, err := f.Acquire("a", "n2", 0, 0)
	must(t, err, "acquire n2 once the slot is free")
	l3.Release()
}

func ep(app, node string) fabric.Endpoint {
	return fabric.Endpoint{AppName: app, NodeID: node, URL: "http://127.0.0.1:1/" + node}
}

func testEndpoints(t *testing.T, open func() fabric.Store) {
	f := open()
	must(t, f.PublishPlan(fabric.Plan{AppName: "a", Digest: Digest(1), Min: 2}), "publish")
	w := f.WatchEndpoints(t.Context())
	first := nextSnap(t, w)
	if len(first.Apps) != 0 {
		t.Fatalf("first table = %+v, want empty", first.Apps)
	}
	if !f.Degraded("a") {
		t.Fatal("not degraded without endpoints")
	}
	f.RegisterEndpoint(ep("a", "n2"))
	f.RegisterEndpoint(ep("a", "n1"))
	got := f.Endpoints("a")
	if len(got) != 2 || got[0] != ep("a", "n1") || got[1] != ep("a", "n2") {
		t.Fatalf("Endpoints = %+v, want n1, n2", got)
	}
	if f.Degraded("a") {
		t.Fatal("degraded with min endpoints")
	}
	untilSnap(t, w, func(s fabric.Snapshot) bool { return len(s.Apps["a"]) == 2 })
	moved := ep("a", "n1")
	moved.URL += "-new"
	f.RegisterEndpoint(moved)
	if f.RemoveEndpoint(ep("a", "n1")) {
		t.Fatal("RemoveEndpoint removed a replaced endpoint")
	}
	if !f.RemoveEndpoint(moved) {
		t.Fatal("RemoveEndpoint did not remove the current endpoint")
	}
	f.DeregisterEndpoint("a", "n2")
	f.DeregisterEndpoint("a", "n2")
	if got := f.Endpoints("a"); len(got) != 0 {
		t.Fatalf("Endpoints after removal = %+v", got)
	}
	untilSnap(t, w, func(s fabric.Snapshot) bool { _, ok := s.Apps["a"]; return !ok })
}

func testWatchAcross(t *testing.T, open func() fabric.Store) {
	agent, edge := open(), open()
	w := edge.WatchEndpoints(t.Context())
	agent.RegisterEndpoint(ep("a", "n1"))
	s := untilSnap(t, w, func(s fabric.Snapshot) bool { return len(s.Apps["a"]) == 1 })
	if s.Apps["a"][0] != ep("a", "n1") {
		t.Fatalf("watched endpoint = %+v", s.Apps["a"][0])
	}
	agent.DeregisterEndpoint("a", "n1")
	untilSnap(t, w, func(s fabric.Snapshot) bool { return len(s.Apps["a"]) == 0 })
}

// testStartFailures: an agent's report of a failed start is read back at
// once by its own handle and, in time, by the control process's; a newer
// report of the same node replaces it, and clearing removes it.
func testStartFailures(t *testing.T, open func() fabric.Store) {
	agent, control := open(), open()
	at := time.Now().UTC().Truncate(time.Millisecond)
	report := func(node string, n int, reason string) fabric.StartFailure {
		return fabric.StartFailure{AppName: "a", NodeID: node, Digest: Digest(n), Reason: reason, At: at}
	}
	seen := func(f fabric.Store, want ...fabric.StartFailure) {
		t.Helper()
		deadline := time.Now().Add(Wait)
		for {
			got := f.StartFailures("a")
			if fmt.Sprint(got) == fmt.Sprint(want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("StartFailures = %+v, want %+v", got, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	agent.ReportStartFailure(report("n2", 1, "not healthy"))
	agent.ReportStartFailure(report("n1", 1, "exited"))
	if got := agent.StartFailures("a"); len(got) != 2 || got[0].NodeID != "n1" || !got[0].At.Equal(at) {
		t.Fatalf("own handle reads %+v, want n1 then n2 at once", got)
	}
	seen(control, report("n1", 1, "exited"), report("n2", 1, "not healthy"))
	agent.ReportStartFailure(report("n1", 2, "digest mismatch"))
	seen(control, report("n1", 2, "digest mismatch"), report("n2", 1, "not healthy"))
	agent.ClearStartFailure("a", "n2")
	agent.ClearStartFailure("a", "n2")
	seen(control, report("n1", 2, "digest mismatch"))
	if got := control.StartFailures("b"); len(got) != 0 {
		t.Fatalf("another app's reports = %+v", got)
	}
}

func nextSnap(t *testing.T, ch <-chan fabric.Snapshot) fabric.Snapshot {
	t.Helper()
	select {
	case s, ok := <-ch:
		if !ok {
			t.Fatal("endpoint watch closed early")
		}
		return s
	case <-time.After(Wait):
		t.Fatal("no endpoint table delivered")
	}
	return fabric.Snapshot{}
}

func untilSnap(t *testing.T, ch <-chan fabric.Snapshot, ok func(fabric.Snapshot) bool) fabric.Snapshot {
	t.Helper()
	for {
		if s := nextSnap(t, ch); ok(s) {
			return s
		}
	}
}

func testClose(t *testing.T, open func() fabric.Store) {
	f := open()
	subs := f.Subscribe(context.Background())
	watch := f.WatchEndpoints(context.Background())
	must(t, f.Close(), "close")
	must(t, f.Close(), "second close")
	if err := f.PublishPlan(plan("a", 1, 0)); !errors.Is(err, fabric.ErrClosed) {
		t.Fatalf("PublishPlan after Close = %v, want ErrClosed", err)
	}
	if _, err := f.Acquire("a", "n1", 0, 0); !errors.Is(err, fabric.ErrClosed) {
		t.Fatalf("Acquire after Close = %v, want ErrClosed", err)
	}
	deadline := time.After(Wait)
	for subs != nil || watch != nil {
		select {
		case _, ok := <-subs:
			if !ok {
				subs = nil
			}
		case _, ok := <-watch:
			if !ok {
				watch = nil
			}
		case <-deadline:
			t.Fatal("subscription or watch not closed by Close")
		}
	}
	if _, ok := <-f.Subscribe(context.Background()); ok {
		t.Fatal("Subscribe after Close delivered a plan")
	}
}
