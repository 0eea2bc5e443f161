package mesh_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/mycelium-mesh/mesh/core/console"
	"github.com/mycelium-mesh/mesh/core/mesh"
	"github.com/mycelium-mesh/mesh/core/pluginhost"
	"github.com/mycelium-mesh/mesh/core/rollout"
)

// troubledSnapshot is a mesh with something wrong everywhere: an app
// degraded by a crashing version, a plugin restarting, a rollout
// reverted; and a cluster's app with an instance on another host.
func troubledSnapshot() mesh.ConsoleSnapshot {
	now := time.Now().UTC()
	d1 := "sha256:" + strings.Repeat("1", 64)
	d2 := "sha256:" + strings.Repeat("2", 64)
	crash := "exit status 3; last stderr: panic: open /etc/echo/config.toml: no such file or directory " + strings.Repeat("(more detail) ", 8)
	return mesh.ConsoleSnapshot{
		SchemaVersion: mesh.SchemaVersion,
		Roles:         []string{"control", "agents", "edge"},
		Status: mesh.Status{
			SchemaVersion: mesh.SchemaVersion, Started: now.Add(-time.Hour), Nodes: []string{"n1"},
			Apps: []mesh.AppStatus{
				{Name: "billing", Digest: d1, Min: 2, Max: 2, Desired: 2, Ready: 2, Endpoints: []mesh.Endpoint{
					{AppName: "billing", URL: "http://127.0.0.1:41001", NodeID: "n1", Digest: d1},
					{AppName: "billing", URL: "http://10.0.0.3:40017", NodeID: "host-b", Digest: d1},
				}},
				{Name: "echo", Digest: d2, Min: 1, Max: 1, Desired: 1, Ready: 0, Degraded: true},
			},
			Instances: []mesh.InstanceStatus{
				{App: "billing", NodeID: "n1", Instance: "billing-0a1b2c3d", Digest: d1, State: "ready", PID: 4242, Port: 41001, Since: now.Add(-90 * time.Second)},
				{App: "billing", NodeID: "n1", Instance: "billing-9f8e7d6c", Digest: d2, State: "stopped", PID: 4100, Port: 40999, Since: now.Add(-2 * time.Minute)},
				{App: "echo", NodeID: "n1", Instance: "echo-5e6f7a8b", Digest: d2, State: "failed", PID: 4300, Port: 41002, Restarts: 5, LastError: crash, Since: now.Add(-5 * time.Second)},
			},
			Plugins: []pluginhost.Status{
				{Kind: "balancer", Name: "round-robin", State: pluginhost.StateRunning, PID: 4001, Since: now.Add(-time.Hour)},
				{Kind: "health", Name: "http", State: pluginhost.StateRestarting, Restarts: 3, LastError: "plugin exited: signal: killed", Since: now.Add(-time.Second)},
			},
		},
		History: map[string][]rollout.Rollout{
			"echo": {{ID: "echo-4", Seq: 4, App: "echo", Digest: d2, State: rollout.Reverted, Who: "root (uid 0)", Started: now.Add(-3 * time.Minute),
				Progress: rollout.Progress{Desired: 1}, Detail: "no instance of the new version became healthy before the progress deadline"}},
		},
		Sites: []mesh.SiteView{{ID: "docs", Domains: []string{"docs.example.test"}, Snapshot: "sha256:" + strings.Repeat("3", 64), Updated: now.Add(-time.Minute)}},
	}
}

// fakeEvents serves server-sent events as the mesh does, but the way a
// page meets them across a reconnect: the first stream sends two events
// and ends; the next one, ignoring Last-Event-ID (a new EventSource after
// one gave up sends none), starts with the same two again.
func fakeEvents(stop <-chan struct{}) http.Handler {
	var conns atomic.Int32
	line := func(w http.ResponseWriter, seq int, typ string) {
		fmt.Fprintf(w, "id: run1.%d\ndata: {\"schema_version\":1,\"seq\":%d,\"time\":%q,\"type\":%q,\"app\":\"echo\"}\n\n",
			seq, seq, time.Now().UTC().Format(time.RFC3339Nano), typ)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "retry: 100\n\n")
		line(w, 1, "instance.launched")
		line(w, 2, "instance.exited")
		if conns.Add(1) == 1 {
			return
		}
		line(w, 3, "instance.restarted")
		http.NewResponseController(w).Flush()
		select { // the test's server closes only once every stream ended
		case <-r.Context().Done():
		case <-stop:
		}
	})
}

// TestConsolePageShowsWhatIsWrong opens the console on a troubled mesh,
// as a person would at a desk and on a phone: what is wrong is said at the
// top in words; an instance on another host of a cluster is listed; a
// reconnected event stream shows no event twice; the page never scrolls
// sideways (wide tables scroll in their own region, reachable with Tab);
// and a mesh that stops answering, or wants the token again, says so.
func TestConsolePageShowsWhatIsWrong(t *testing.T) {
	b := newBrowser(t)
	stop := make(chan struct{})
	var mode atomic.Value // "", "down" or "signed-out"
	mode.Store("")
	con := console.New(console.Options{
		Snapshot: func() any {
			doc := troubledSnapshot()
			if mode.Load() == "edge-only" { // `mesh edge` in a cluster
				doc.Roles, doc.History = []string{"edge"}, nil
			}
			return doc
		},
		Events:   fakeEvents(stop),
		Loopback: true,
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/console/api/snapshot") {
			switch mode.Load() {
			case "down":
				http.Error(w, "bad gateway", http.StatusBadGateway)
				return
			case "signed-out":
				http.Error(w, "missing or wrong control token", http.StatusUnauthorized)
				return
			}
		}
		con.ServeHTTP(w, r)
	}))
	defer srv.Close()
	defer close(stop)

	if err := chromedp.Do(b.ctx, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(srv.URL+"/console/")); err != nil {
		t.Fatalf("open the console: %v", err)
	}
	b.poll("the degraded app explained", `(() => { const li = document.querySelector('#attention li[data-app="echo"]');
		return !document.getElementById("attention").hidden && !!li && li.textContent.includes("degraded")
			&& li.textContent.includes("config.toml: no such file"); })()`)
	b.poll("the restarting plugin explained", `(() => { const li = document.querySelector('#attention li[data-plugin="health/http"]');
		return !!li && li.textContent.includes("restarting") && li.textContent.includes("signal: killed"); })()`)
	b.poll("the reverted rollout explained", `(() => { const li = document.querySelector('#attention li[data-rollout="echo-4"]');
		return !!li && li.textContent.includes("progress deadline"); })()`)
	b.poll("the instance on another host", `(() => { const r = document.querySelector('tr[data-remote][data-app="billing"][data-node="host-b"]');
		return !!r && r.textContent.includes("10.0.0.3:40017"); })()`)
	b.poll("each event once after the reconnect", `(() => { const li = [...document.querySelectorAll('#events li')];
		return li.length === 3 && li[0].dataset.type === "instance.restarted"; })()`)
	b.screenshot("troubled-1280x800")
	noSideways := func(width int) {
		t.Helper()
		if got := b.eval(`String(document.documentElement.scrollWidth <= document.documentElement.clientWidth || document.documentElement.scrollWidth)`); got != "true" {
			t.Errorf("at %d px wide the page scrolls sideways: %s px of content", width, got)
		}
	}
	noSideways(1280)

	if err := chromedp.Do(b.ctx, chromedp.EmulateViewport(390, 844)); err != nil {
		t.Fatal(err)
	}
	b.poll("the phone layout", `document.documentElement.clientWidth === 390`)
	noSideways(390)
	b.screenshot("troubled-phone")

	// Keyboard: the first Tab reaches the apps table's scrolling region.
	if err := chromedp.Do(b.ctx, chromedp.KeyEvent(kb.Tab)); err != nil {
		t.Fatal(err)
	}
	if got := b.eval(`String(document.activeElement && document.activeElement.getAttribute("aria-label"))`); got != "apps" {
		t.Errorf("the first Tab focused %q, want the apps region", got)
	}

	mode.Store("down")
	b.poll("the mesh out of reach", `(() => { const p = document.getElementById("problem");
		return !p.hidden && p.textContent.includes("Cannot reach the mesh") && p.textContent.includes("502"); })()`)
	b.screenshot("troubled-unreachable")
	mode.Store("signed-out")
	b.poll("signed out", `(() => { const p = document.getElementById("problem");
		return !p.hidden && p.textContent.includes("Signed out") && !!p.querySelector('a[href="/console/login"]'); })()`)
	mode.Store("")
	b.poll("the problem gone once it answers", `document.getElementById("problem").hidden`)
	mode.Store("edge-only")
	b.poll("an edge saying rollouts are not its own", `(() => { const p = document.getElementById("no-control");
		return !!p && p.textContent.includes("-roles control,edge") && !document.getElementById("no-active-rollouts"); })()`)

	b.mu.Lock()
	var kept []string
	for _, p := range b.problems {
		// The 502 and 401 above are the browser's to log.
		if !strings.Contains(p, "/console/api/snapshot") {
			kept = append(kept, p)
		}
	}
	b.problems = kept
	b.mu.Unlock()
	b.check(srv.URL)
}
