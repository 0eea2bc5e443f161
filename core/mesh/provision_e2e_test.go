package mesh_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
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

	"github.com/mycelium-mesh/mesh/internal/testutil"
)

// provisionDaemon is a running `mesh provision -listen`.
type provisionDaemon struct {
	sock string
	cmd  *exec.Cmd
	logs *testutil.SyncBuffer
}

func startProvisionDaemon(t *testing.T, e *env) *provisionDaemon {
	t.Helper()
	d := &provisionDaemon{sock: filepath.Join(e.dir, "provision.sock"), logs: &testutil.SyncBuffer{}}
	d.cmd = exec.Command(meshBin, "provision", "-config", e.cfgPath, "-listen", "unix://"+d.sock)
	d.cmd.Dir = e.dir
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Stdout = io.Discard
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		_ = d.cmd.Wait()
		if t.Failed() {
			t.Logf("provision logs:\n%s", d.logs.String())
		}
	})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			d.logs.Write([]byte(sc.Text() + "\n"))
			if strings.Contains(sc.Text(), "accepting producers") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(15 * time.Second):
		t.Fatalf("provision daemon not ready:\n%s", d.logs.String())
	}
	return d
}

// send writes one packed stream on a new producer connection and returns
// the result lines the daemon writes back.
func (d *provisionDaemon) send(t *testing.T, stream []byte, want int) []map[string]any {
	t.Helper()
	c, err := net.Dial("unix", d.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(stream); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.UnixConn).CloseWrite()
	var out []map[string]any
	sc := bufio.NewScanner(c)
	for len(out) < want && sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	if len(out) != want {
		t.Fatalf("%d results, want %d: %v\n%s", len(out), want, out, d.logs.String())
	}
	return out
}

func writeSiteFile(t *testing.T, dir, rel, body string) {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func getSite(c *http.Client, edgeURL, host, path string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, edgeURL+path, nil)
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// A producer pipes messages into `mesh provision -listen` beside a running
// `mesh run`; the edge serves the site by Host; an updated message switches
// the content under continuous load with no failed request and no mixed
// version; the site survives a mesh restart.
func TestProvisionLocalStaticEndToEnd(t *testing.T) {
	e := newEnv(t)
	e.extraApp = `plugin "hosting" "local-static" {
  config { sites_root = "sites" }
}
`
	e.writeConfig()
	page := func(v string) string { return strings.Repeat("<p>"+v+"</p>", 500) }
	writeSiteFile(t, e.dir, "sites/blog/public/index.html", page("v1"))
	writeSiteFile(t, e.dir, "sites/blog/public/404.html", "<h1>lost</h1>")
	writeSiteFile(t, e.dir, "sites.hcl", `site "blog" {
  build   { output_dir = "blog/public" }
  domains {
    primary = "blog.example.test"
    aliases = ["www.blog.example.test"]
  }
  hosting { provider = "localStatic" }
}
`)
	cmd := exec.Command(meshBin, "provision", "encode", filepath.Join(e.dir, "sites.hcl"))
	stream, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	e.start()
	d := startProvisionDaemon(t, e)

	res := d.send(t, stream, 1)
	if res[0]["status"] != "applied" {
		t.Fatalf("first apply: %v", res[0])
	}
	client := &http.Client{Transport: &http.Transport{}}
	for _, host := range []string{"blog.example.test", "www.blog.example.test:80"} {
		code, body, err := getSite(client, e.edgeURL, host, "/")
		if err != nil || code != 200 || body != page("v1") {
			t.Fatalf("GET / Host %s: %d %v %.40q", host, code, err, body)
		}
	}
	if code, body, _ := getSite(client, e.edgeURL, "blog.example.test", "/nope"); code != 404 || body != "<h1>lost</h1>" {
		t.Fatalf("404 page: %d %q", code, body)
	}
	// The same message again: unchanged.
	if res := d.send(t, stream, 1); res[0]["status"] != "unchanged" {
		t.Fatalf("second send: %v", res[0])
	}

	// Switch versions under load.
	var stop atomic.Bool
	var ok, failed, mixed atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				code, body, err := getSite(client, e.edgeURL, "blog.example.test", "/")
				switch {
				case err != nil || code != 200:
					failed.Add(1)
				case body != page("v1") && body != page("v2") && body != page("v3"):
					mixed.Add(1)
				default:
					ok.Add(1)
				}
			}
		}()
	}
	for _, v := range []string{"v2", "v3"} {
		writeSiteFile(t, e.dir, "sites/blog/public/index.html", page(v))
		if res := d.send(t, stream, 1); res[0]["status"] != "applied" {
			t.Fatalf("apply %s: %v", v, res[0])
		}
		waitFor(t, 5*time.Second, v+" served", func() bool {
			_, body, _ := getSite(client, e.edgeURL, "blog.example.test", "/")
			return body == page(v)
		})
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d requests during two switches", ok.Load())
	if failed.Load() != 0 || mixed.Load() != 0 {
		t.Fatalf("%d failed and %d mixed requests during the switches", failed.Load(), mixed.Load())
	}

	// Desired state survives a restart of the mesh.
	e.stop()
	e.start()
	if code, body, err := getSite(client, e.edgeURL, "blog.example.test", "/"); err != nil || code != 200 || body != page("v3") {
		t.Fatalf("after restart: %d %v %.40q", code, err, body)
	}
}

// A build type other than staticPrebuilt runs the configured build command
// (here a shell script standing in for hugo); without one it is refused
// with exit code 78. A rebuild that reproduces what is served is unchanged.
func TestProvisionBuildCommand(t *testing.T) {
	e := newEnv(t)
	e.extraApp = `plugin "hosting" "local-static" {
  config { sites_root = "sites" }
}
`
	e.writeConfig()
	writeSiteFile(t, e.dir, "sites/docs/build.sh", "mkdir -p public && echo '<h1>built</h1>' > public/index.html\n")
	writeSiteFile(t, e.dir, "sites.hcl", `site "docs" {
  build   {
    type       = "hugoNix"
    output_dir = "docs/public"
  }
  domains { primary = "docs.example.test" }
  hosting { provider = "localStatic" }
}
`)
	stream, err := exec.Command(meshBin, "provision", "encode", filepath.Join(e.dir, "sites.hcl")).Output()
	if err != nil {
		t.Fatal(err)
	}
	e.start()
	run := func(args ...string) (int, string) {
		cmd := exec.Command(meshBin, append([]string{"provision", "-config", e.cfgPath}, args...)...)
		cmd.Dir = e.dir
		cmd.Stdin = strings.NewReader(string(stream))
		out, _ := cmd.Output()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	if code, out := run(); code != 78 || !strings.Contains(out, "needs a build command") {
		t.Fatalf("without -build: exit %d %s", code, out)
	}
	if code, out := run("-build", "hugoNix=sh build.sh"); code != 0 || !strings.Contains(out, `"status":"applied"`) {
		t.Fatalf("with -build: exit %d %s", code, out)
	}
	client := &http.Client{Transport: &http.Transport{}}
	if code, body, err := getSite(client, e.edgeURL, "docs.example.test", "/"); err != nil || code != 200 || body != "<h1>built</h1>\n" {
		t.Fatalf("built site: %d %v %q", code, err, body)
	}
	if code, out := run("-build", "hugoNix=sh build.sh"); code != 0 || !strings.Contains(out, `"status":"unchanged"`) {
		t.Fatalf("rebuild: exit %d %s", code, out)
	}
}

// A criomosHost site becomes a mesh app: its files bundled with the static
// server, packed into a spore signed with the operator's key, rolled out to
// the site's app, routed by Host; it survives a workload SIGKILL like any
// app.
func TestProvisionMeshAppEndToEnd(t *testing.T) {
	e := newEnv(t)
	server, err := testutil.Build(t.TempDir(), "./workloads/siteserve", "siteserve")
	if err != nil {
		t.Fatal(err)
	}
	e.extraApp = `plugin "hosting" "mesh-app" {
  config {
    sites_root = "sites"
    server     = "` + server + `"
    key        = "dev.key"
  }
}
app "site-shop" {
  spore = "billing-v1.spore"
  max   = 3
}
`
	e.writeConfig()
	writeSiteFile(t, e.dir, "sites/shop/index.html", "<h1>shop v1</h1>")
	writeSiteFile(t, e.dir, "sites/shop/404.html", "<h1>no such page</h1>")
	writeSiteFile(t, e.dir, "sites.hcl", `site "shop" {
  domains { primary = "shop.example.test" }
  hosting { provider = "criomosHost" }
}
`)
	stream, err := exec.Command(meshBin, "provision", "encode", filepath.Join(e.dir, "sites.hcl")).Output()
	if err != nil {
		t.Fatal(err)
	}
	e.start()
	run := func() (int, string) {
		cmd := exec.Command(meshBin, "provision", "-config", e.cfgPath)
		cmd.Dir = e.dir
		cmd.Stdin = strings.NewReader(string(stream))
		var errOut testutil.SyncBuffer
		cmd.Stderr = &errOut
		out, _ := cmd.Output()
		if cmd.ProcessState.ExitCode() != 0 {
			t.Logf("provision stderr:\n%s", errOut.String())
		}
		return cmd.ProcessState.ExitCode(), string(out)
	}
	if code, out := run(); code != 0 || !strings.Contains(out, `"status":"applied"`) {
		t.Fatalf("provision: exit %d %s", code, out)
	}
	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	if code, body, err := getSite(client, e.edgeURL, "shop.example.test", "/"); err != nil || code != 200 || body != "<h1>shop v1</h1>" {
		t.Fatalf("GET / Host shop.example.test: %d %v %q", code, err, body)
	}
	if code, body, _ := getSite(client, e.edgeURL, "shop.example.test", "/gone"); code != 404 || body != "<h1>no such page</h1>" {
		t.Fatalf("404 page: %d %q", code, body)
	}
	if code, out := run(); code != 0 || !strings.Contains(out, `"status":"unchanged"`) {
		t.Fatalf("second provision: exit %d %s", code, out)
	}

	// SIGKILL one of the site's instances under load.
	var pid int
	var node string
	for _, in := range e.status().Instances {
		if in.App == "site-shop" && in.State == "ready" {
			pid, node = in.PID, in.NodeID
			break
		}
	}
	if pid == 0 {
		t.Fatalf("no ready site-shop instance: %+v", e.status().Instances)
	}
	var stop atomic.Bool
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				code, body, err := getSite(client, e.edgeURL, "shop.example.test", "/")
				if err != nil || code != 200 || body != "<h1>shop v1</h1>" {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %v %.80q", code, err, body))
					continue
				}
				ok.Add(1)
			}
		}()
	}
	waitFor(t, 5*time.Second, "load running", func() bool { return ok.Load() > 20 })
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
	n := ok.Load()
	waitFor(t, 5*time.Second, "requests after the respawn", func() bool { return ok.Load() > n+20 })
	stop.Store(true)
	wg.Wait()
	t.Logf("%d requests around the SIGKILL", ok.Load())
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed around the SIGKILL (first: %v)", failed.Load(), firstErr.Load())
	}
}
