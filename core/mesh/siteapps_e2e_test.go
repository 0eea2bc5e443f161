package mesh_test

import (
	"context"
	"fmt"
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

	"github.com/mycelium-mesh/mesh/core/mesh"
	"github.com/mycelium-mesh/mesh/core/rollout"
	"github.com/mycelium-mesh/mesh/core/siteapi"
	"github.com/mycelium-mesh/mesh/internal/testutil"
)

// siteLoad requests a Host-routed page from 4 goroutines until stopped,
// counting requests answered with one of the accepted bodies and every
// other outcome as a failure.
type siteLoad struct {
	stop     atomic.Bool
	ok, fail atomic.Int64
	firstErr atomic.Value
	wg       sync.WaitGroup
}

func startSiteLoad(c *http.Client, edgeURL, host string, accept ...string) *siteLoad {
	l := &siteLoad{}
	for i := 0; i < 4; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for !l.stop.Load() {
				code, body, err := getSite(c, edgeURL, host, "/")
				good := err == nil && code == 200
				if good {
					good = false
					for _, a := range accept {
						good = good || body == a
					}
				}
				if !good {
					l.fail.Add(1)
					l.firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %v %.80q", code, err, body))
					continue
				}
				l.ok.Add(1)
			}
		}()
	}
	return l
}

// end stops the load and fails the test on any failed request.
func (l *siteLoad) end(t *testing.T, what string) {
	t.Helper()
	l.stop.Store(true)
	l.wg.Wait()
	t.Logf("%d requests %s", l.ok.Load(), what)
	if l.fail.Load() != 0 {
		t.Fatalf("%d requests failed %s (first: %v)", l.fail.Load(), what, l.firstErr.Load())
	}
}

// more waits until the load has done n more good requests.
func (l *siteLoad) more(t *testing.T, n int64, what string) {
	t.Helper()
	from := l.ok.Load()
	waitFor(t, 10*time.Second, what, func() bool { return l.ok.Load() >= from+n })
}

func appStatus(st mesh.Status, name string) (mesh.AppStatus, bool) {
	for _, a := range st.Apps {
		if a.Name == name {
			return a, true
		}
	}
	return mesh.AppStatus{}, false
}

// A criomosHost site with no app block in mesh.hcl: the mesh creates its
// app, owned by the site. It is served by Host, survives a workload SIGKILL
// under load, a `mesh reload` after an unrelated edit (shown as site-owned,
// never removed) and a mesh restart; an update rolls out blue/green with no
// failed request; an app block of its name is refused; deleting the site
// withdraws the app.
func TestSiteOwnedAppEndToEnd(t *testing.T) {
	e := newEnv(t)
	server, err := testutil.Build(t.TempDir(), "./workloads/siteserve", "siteserve")
	if err != nil {
		t.Fatal(err)
	}
	hosting := `plugin "hosting" "mesh-app" {
  config {
    sites_root = "sites"
    server     = "` + server + `"
    key        = "dev.key"
  }
}
`
	e.extraApp = hosting
	e.writeConfig()
	page := func(v string) string { return strings.Repeat("<p>shop "+v+"</p>", 200) }
	writeSiteFile(t, e.dir, "sites/shop/index.html", page("v1"))
	encode := func(hosting string) []byte {
		t.Helper()
		writeSiteFile(t, e.dir, "sites.hcl", `site "shop" {
  domains { primary = "shop.example.test" }
  hosting {
    provider = "criomosHost"
`+hosting+`  }
}
`)
		stream, err := exec.Command(meshBin, "provision", "encode", filepath.Join(e.dir, "sites.hcl")).Output()
		if err != nil {
			t.Fatal(err)
		}
		return stream
	}
	stream := encode("")
	provision := func(want string) {
		t.Helper()
		cmd := exec.Command(meshBin, "provision", "-config", e.cfgPath)
		cmd.Dir = e.dir
		cmd.Stdin = strings.NewReader(string(stream))
		var errOut testutil.SyncBuffer
		cmd.Stderr = &errOut
		out, _ := cmd.Output()
		if cmd.ProcessState.ExitCode() != 0 || !strings.Contains(string(out), `"status":"`+want+`"`) {
			t.Fatalf("provision: exit %d, want %s: %s\n%s", cmd.ProcessState.ExitCode(), want, out, errOut.String())
		}
	}
	e.start()
	provision("applied")

	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	if code, body, err := getSite(client, e.edgeURL, "shop.example.test", "/"); err != nil || code != 200 || body != page("v1") {
		t.Fatalf("GET / Host shop.example.test: %d %v %.40q", code, err, body)
	}
	a, ok := appStatus(e.status(), "site-shop")
	if !ok || a.Site != "shop" || a.Min != 3 || a.Max != 3 || a.Restart != "on-failure" {
		t.Fatalf("site app status %+v (found %v), want owned by shop, min = max = 3, restart on-failure", a, ok)
	}
	waitFor(t, 10*time.Second, "3 ready site instances", func() bool { a, _ := appStatus(e.status(), "site-shop"); return a.Ready == 3 })
	mustContain(t, "mesh status", runCLI(t, "status", "-config", e.cfgPath), "site-shop (site shop)")
	checkHistory := func(n int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h, _, err := e.client().History(ctx, "site-shop", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != n {
			t.Fatalf("history %+v, want %d rollouts", h, n)
		}
		for _, r := range h {
			if r.Trigger != rollout.BySite {
				t.Fatalf("rollout %s trigger %s, want %s", r.ID, r.Trigger, rollout.BySite)
			}
		}
	}
	checkHistory(1)
	provision("unchanged")

	// SIGKILL one of the site's instances under load.
	var pid int
	var node string
	for _, in := range e.status().Instances {
		if in.App == "site-shop" && in.State == "ready" {
			pid, node = in.PID, in.NodeID
			break
		}
	}
	load := startSiteLoad(client, e.edgeURL, "shop.example.test", page("v1"))
	load.more(t, 20, "load running")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "site instance respawned", func() bool {
		for _, in := range e.status().Instances {
			if in.App == "site-shop" && in.NodeID == node && in.State == "ready" && in.PID != pid && testutil.Alive(in.PID) {
				return true
			}
		}
		return false
	})
	load.more(t, 20, "requests after the respawn")
	load.end(t, "around the SIGKILL")

	// An unrelated edit: the reload plan shows the site's app as owned by
	// the site, and the reload keeps it serving.
	load = startSiteLoad(client, e.edgeURL, "shop.example.test", page("v1"))
	e.maxInst = 2
	e.writeConfig()
	plan := runCLI(t, "reload", "-plan", "-config", e.cfgPath)
	t.Logf("mesh reload -plan:\n%s", plan)
	mustContain(t, "plan", plan, `= app "site-shop" (owned by site shop)`, "0 to remove", "1 site-owned app(s) kept")
	runCLI(t, "reload", "-config", e.cfgPath)
	load.more(t, 20, "requests after the reload")
	load.end(t, "around the reload")
	if a, ok := appStatus(e.status(), "site-shop"); !ok || a.Max != 3 {
		t.Fatalf("after the reload: %+v (found %v)", a, ok)
	}

	// A mesh restart: the app and its route are desired state.
	e.stop()
	e.start()
	waitFor(t, 15*time.Second, "site served after the restart", func() bool {
		code, body, err := getSite(client, e.edgeURL, "shop.example.test", "/")
		return err == nil && code == 200 && body == page("v1")
	})
	waitFor(t, 10*time.Second, "3 ready site instances", func() bool { a, _ := appStatus(e.status(), "site-shop"); return a.Ready == 3 })
	provision("unchanged")

	// New files: a blue/green rollout under load.
	load = startSiteLoad(client, e.edgeURL, "shop.example.test", page("v1"), page("v2"))
	load.more(t, 20, "load running")
	writeSiteFile(t, e.dir, "sites/shop/index.html", page("v2"))
	provision("applied")
	waitFor(t, 10*time.Second, "v2 served", func() bool {
		_, body, _ := getSite(client, e.edgeURL, "shop.example.test", "/")
		return body == page("v2")
	})
	load.more(t, 20, "requests after the update")
	load.end(t, "during the blue/green update")
	checkHistory(2)

	// The fabric store is lost (and the applied state with it, so the mesh
	// starts over from mesh.hcl): the site's record names an app the mesh
	// no longer plans, and the next message releases it again.
	e.stop()
	for _, f := range []string{"fabric.db", "applied.json"} {
		if err := os.Remove(filepath.Join(e.dir, "data", f)); err != nil {
			t.Fatal(err)
		}
	}
	e.start()
	if _, ok := appStatus(e.status(), "site-shop"); ok {
		t.Fatal("site-shop planned with an empty fabric store")
	}
	provision("applied")
	if code, body, err := getSite(client, e.edgeURL, "shop.example.test", "/"); err != nil || code != 200 || body != page("v2") {
		t.Fatalf("after the release again: %d %v %.40q", code, err, body)
	}

	// A new hosting.projectName moves the site to a new app under load; the
	// old one, no longer routed to, is withdrawn.
	stream = encode("    project_name = \"shop-next\"\n")
	load = startSiteLoad(client, e.edgeURL, "shop.example.test", page("v2"))
	load.more(t, 20, "load running")
	provision("applied")
	load.more(t, 20, "requests after the move")
	load.end(t, "during the move to another app")
	st := e.status()
	if a, ok := appStatus(st, "shop-next"); !ok || a.Site != "shop" {
		t.Fatalf("shop-next %+v (found %v)", a, ok)
	}
	// The old app is withdrawn once requests routed to it had the warmup to
	// finish.
	waitFor(t, 10*time.Second, "site-shop withdrawn after the site moved to shop-next", func() bool {
		_, ok := appStatus(e.status(), "site-shop")
		return !ok
	})

	// An app block of the site's app's name is refused, naming the site.
	e.extraApp = hosting + "app \"shop-next\" {\n  spore = \"billing-v1.spore\"\n}\n"
	e.writeConfig()
	out, err := exec.Command(meshBin, "reload", "-config", e.cfgPath).CombinedOutput()
	if err == nil || !strings.Contains(string(out), `owned by a site`) || !strings.Contains(string(out), `site "shop"`) {
		t.Fatalf("reload with a site's app declared: %v\n%s", err, out)
	}
	t.Logf("reload with a site's app declared: %s", out)
	// The mesh keeps running as it was; a restart with the file as it is
	// is refused the same way.
	if _, ok := appStatus(e.status(), "shop-next"); !ok {
		t.Fatal("shop-next gone after a refused reload")
	}
	e.stop()
	rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer rcancel()
	out, err = exec.CommandContext(rctx, meshBin, "run", "-config", e.cfgPath).CombinedOutput()
	if err == nil || rctx.Err() != nil || !strings.Contains(string(out), "App owned by a site") {
		t.Fatalf("mesh run with a site's app declared: %v\n%s", err, out)
	}
	e.extraApp = hosting
	e.writeConfig()
	e.start()
	waitFor(t, 15*time.Second, "site served after the restart", func() bool {
		code, body, err := getSite(client, e.edgeURL, "shop.example.test", "/")
		return err == nil && code == 200 && body == page("v2")
	})

	// Deleting the site withdraws its app.
	sc, err := siteapi.NewClient("unix://"+filepath.Join(e.dir, "control.sock"), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var pids []int
	for _, in := range e.status().Instances {
		if in.App == "shop-next" && in.PID > 0 {
			pids = append(pids, in.PID)
		}
	}
	if len(pids) == 0 {
		t.Fatal("no shop-next process before the delete")
	}
	if err := sc.DeleteSite(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	if _, ok := appStatus(e.status(), "shop-next"); ok {
		t.Fatalf("shop-next still planned after its site was deleted: %+v", e.status().Apps)
	}
	waitFor(t, 15*time.Second, "site processes stopped", func() bool {
		for _, pid := range pids {
			if testutil.Alive(pid) {
				return false
			}
		}
		return true
	})
	if code, _, err := getSite(client, e.edgeURL, "shop.example.test", "/"); err != nil || code == 200 {
		t.Fatalf("deleted site still answers: %d %v", code, err)
	}
	mustContain(t, "plan after delete", runCLI(t, "reload", "-plan", "-config", e.cfgPath), "0 to remove")
}
