package mesh_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/mycelium-mesh/mesh/internal/testutil"
)

// chromiumPath is Debian's headless-capable Chromium binary (the
// /usr/bin/chromium wrapper script prints a shell error here), or
// $MESH_CHROMIUM.
func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("MESH_CHROMIUM")
	if p == "" {
		p = "/usr/lib/chromium/chromium"
	}
	if _, err := os.Stat(p); err != nil {
		msg := fmt.Sprintf("Chromium not found at %s (apt-get install --no-install-recommends chromium, as .ci/run does, or set MESH_CHROMIUM): %v", p, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Log("SKIPPING THE BROWSER TESTS OF THE CONSOLE: " + msg)
		t.Skip(msg)
	}
	return p
}

// browser is one headless Chromium page with what it reported: console
// errors, uncaught exceptions, log errors and every URL it requested.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	problems []string
	requests []string
}

// newBrowser starts Chromium with no network beyond loopback: every host
// name resolves to nothing and every connection that is not to loopback
// goes to a proxy that refuses it.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	exe := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1500),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"),
		chromedp.Flag("proxy-server", fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))),
		chromedp.Flag("log-level", "3"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // stops the browser process it started
	})
	b := &browser{t: t, ctx: ctx}
	if err := chromedp.Listen(ctx, b.observe); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return b
}

// observe runs on chromedp's reader: it only records.
func (b *browser) observe(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			b.problems = append(b.problems, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
		}
	case *runtime.EventExceptionThrown:
		b.problems = append(b.problems, "exception: "+(&chromedp.ExceptionError{ExceptionDetails: ev.ExceptionDetails}).Error())
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError || ev.Entry.Level == log.EntryLevelWarning {
			b.problems = append(b.problems, fmt.Sprintf("log %s: %s %s", ev.Entry.Level, ev.Entry.Text, ev.Entry.URL))
		}
	case *network.EventRequestWillBeSent:
		b.requests = append(b.requests, ev.Request.URL)
	}
}

// check fails the test for every problem the page reported and every
// request it made anywhere but origin.
func (b *browser) check(origin string) {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Errorf("the console page reported: %s", p)
	}
	for _, u := range b.requests {
		if !strings.HasPrefix(u, origin+"/") {
			b.t.Errorf("the console page requested %s, outside the mesh's %s", u, origin)
		}
	}
	if len(b.requests) == 0 {
		b.t.Error("no request of the page was seen")
	}
}

// poll waits until the JavaScript predicate is true on the page.
func (b *browser) poll(what, predicate string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](predicate,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(45*time.Second))); err != nil {
		shot := b.screenshot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("page never showed %s (%v); screenshot %s", what, err, shot)
	}
}

func (b *browser) eval(expr string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// screenshot writes the page to .artifacts/console/NAME.png at the top of
// the repository (git-ignored) for a person to look at.
func (b *browser) screenshot(name string) string {
	b.t.Helper()
	buf, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return ""
	}
	dir := filepath.Join("..", "..", ".artifacts", "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Errorf("screenshot dir: %v", err)
		return ""
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		b.t.Errorf("write screenshot: %v", err)
	}
	abs, _ := filepath.Abs(path)
	return abs
}

// pacedLoad sends one GET to url every interval until the returned func is
// called (which waits for the sender to end).
func pacedLoad(url string, interval time.Duration) func() {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		hc := &http.Client{Timeout: 5 * time.Second}
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			if resp, err := hc.Get(url); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	}()
	return func() { close(stop); <-done }
}

// TestConsoleInBrowser drives the console of a running mesh in headless
// Chromium, as an operator watches it: the apps are listed; a rollout
// started from the CLI shows its progress and ends ready without a reload;
// an instance killed shows as exited and then comes back; the page talks
// to nothing but the mesh and reports no error.
func TestConsoleInBrowser(t *testing.T) {
	b := newBrowser(t)
	e := newEnv(t)
	e.admin = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	e.minHealthy = "1s" // a rollout stays in progress long enough to be seen
	e.writeConfig()
	e.start()
	origin := "http://" + e.admin

	if err := chromedp.Do(b.ctx, chromedp.Navigate(origin+"/console/")); err != nil {
		t.Fatalf("open the console: %v", err)
	}
	b.poll("billing with 3 of 3 ready", `(() => { const r = document.querySelector('#apps tr[data-app="billing"]');
		return !!r && r.dataset.ready === "3" && r.dataset.desired === "3"; })()`)
	b.poll("3 ready instances", `document.querySelectorAll('tr[data-instance][data-app="billing"][data-state="ready"]').length === 3`)
	b.poll("the plugins", `document.querySelectorAll('#plugins tr[data-plugin]').length >= 2`)
	b.poll("live events", `document.getElementById("live").dataset.live === "live" && document.querySelectorAll('#events li').length > 0`)
	b.poll("the first rollout done", `!document.querySelector('#rollouts-active')
		&& !!document.querySelector('#rollouts-history tr[data-state="succeeded"]')`)
	// Light traffic for the charts, through the rollout and the kill.
	stopLoad := pacedLoad(e.edgeURL+"/billing/hello", 20*time.Millisecond)
	defer stopLoad()
	b.poll("traffic on the chart", `Number(document.querySelector('#apps tr[data-app="billing"] [data-field="requests"] .num').textContent) > 0
		&& document.querySelector('#apps tr[data-app="billing"] [data-field="requests"] path').getAttribute("d").includes("L")`)
	b.screenshot("apps")
	b.eval(`window.meshMarker = "same page"; "ok"`) // gone if the page reloads

	// A rollout from the CLI.
	ctx := t.Context()
	v2, err := e.client().PublishSpore(ctx, e.v2)
	if err != nil {
		t.Fatal(err)
	}
	deploy := exec.Command(meshBin, "deploy", "-config", e.cfgPath, "-app", "billing", "-digest", v2, "-timeout", "60s")
	out := &syncBuffer{}
	deploy.Stdout, deploy.Stderr = out, out
	if err := deploy.Start(); err != nil {
		t.Fatal(err)
	}
	deployDone := make(chan error, 1)
	go func() { deployDone <- deploy.Wait() }()
	t.Cleanup(func() {
		if deploy.ProcessState == nil {
			_ = deploy.Process.Kill()
			<-deployDone
		}
	})
	b.poll("the rollout in progress", fmt.Sprintf(`!!document.querySelector('#rollouts-active tr[data-digest=%q]')
		&& !document.querySelector('#rollouts-history tr[data-digest=%q]')`, v2, v2)) // listed once, not in the history yet
	b.screenshot("rollout-progress")
	b.poll("the rollout succeeded", fmt.Sprintf(`!!document.querySelector('#rollouts-history tr[data-digest=%q][data-state="succeeded"]')
		&& !document.querySelector('#rollouts-active')`, v2))
	b.poll("billing ready on the new digest", fmt.Sprintf(`(() => { const r = document.querySelector('#apps tr[data-app="billing"]');
		return !!r && r.dataset.ready === "3" && r.querySelector('[data-field="digest"]').title === %q; })()`, v2))
	b.screenshot("rollout-done")
	if err := <-deployDone; err != nil {
		t.Fatalf("mesh deploy: %v\n%s", err, out.String())
	}

	// SIGKILL one instance: it shows as exited (failed), then a new one on
	// its node is ready.
	var victim struct {
		id, node string
		pid      int
	}
	for _, in := range e.status().Instances {
		if in.State == "ready" && in.Digest == v2 {
			victim.id, victim.node, victim.pid = in.Instance, in.NodeID, in.PID
			break
		}
	}
	if victim.pid == 0 {
		t.Fatal("no ready instance to kill")
	}
	if err := syscall.Kill(victim.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	b.poll("the killed instance exited", fmt.Sprintf(`!!document.querySelector('tr[data-instance=%q][data-state="failed"]')
		&& !!document.querySelector('#events li[data-type="instance.exited"]')`, victim.id))
	b.poll("a new instance ready on the node", fmt.Sprintf(`[...document.querySelectorAll('tr[data-instance][data-node=%q][data-state="ready"]')]
		.some((r) => r.dataset.instance !== %q)`, victim.node, victim.id))
	b.screenshot("instance-back")

	if got := b.eval(`String(window.meshMarker)`); got != "same page" {
		t.Errorf("the page was reloaded (marker %q)", got)
	}
	b.check(origin)

	// The mesh stops at once with the page still following its events:
	// the stream ends, so the admin listener's shutdown waits for nothing.
	e.stop()
	if strings.Contains(e.logs.String(), "edge shutdown") {
		t.Errorf("the open console held the shutdown up:\n%s", e.logs.String())
	}
}
