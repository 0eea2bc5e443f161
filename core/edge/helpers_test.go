package edge

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/internal/testutil"
	"github.com/mycelium-mesh/mesh/plugins/leastloaded"
	"github.com/mycelium-mesh/mesh/plugins/roundrobin"
)

// helloBin is the sample workload, built once for the package's tests.
var helloBin string

func TestMain(m *testing.M) {
	bins, cleanup := testutil.BuildForMain("./workloads/hello")
	helloBin = bins[0]
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// startHello runs the hello workload as instance name in its own process
// group and returns its base URL once it answers /health.
func startHello(t testing.TB, name string) string {
	t.Helper()
	port := testutil.FreePort(t)
	cmd := exec.Command(helloBin)
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "MESH_INSTANCE="+name, "HELLO_VERSION=v1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start hello: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("hello %s never got healthy: %v\n%s", name, err, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// closedURL returns the URL of a loopback port nothing listens on.
func closedURL(t testing.TB) string {
	return "http://127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
}

func newFabric(t testing.TB) *fabric.Fabric {
	t.Helper()
	f, err := fabric.New(fabric.Options{})
	if err != nil {
		t.Fatalf("fabric: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func roundRobin(string) Balancer  { return roundrobin.New() }
func leastLoaded(string) Balancer { return leastloaded.New() }

// startEdge starts an edge on a loopback port; the test's cleanup shuts it
// down.
func startEdge(t testing.TB, opts Options) *Edge {
	t.Helper()
	if opts.Balancers == nil {
		opts.Balancers = roundRobin
	}
	e, err := New(opts)
	if err != nil {
		t.Fatalf("edge.New: %v", err)
	}
	if err := e.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("edge.Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return e
}

func edgeURL(e *Edge) string { return "http://" + e.Addr().String() }

// waitEndpoints waits until app routes to n endpoints.
func waitEndpoints(t testing.TB, e *Edge, app string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for e.Counters()[app].Endpoints != n {
		if time.Now().After(deadline) {
			t.Fatalf("app %s: want %d endpoints, have %+v", app, n, e.Counters()[app])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type syncBuffer = testutil.SyncBuffer

func bufLogger(w *syncBuffer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "test", Output: w, Level: hclog.Info})
}

func listenLoopback(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
