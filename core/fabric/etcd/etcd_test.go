package etcd_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/fabric/etcd"
	"github.com/mycelium-mesh/mesh/core/fabric/fabrictest"
	"github.com/mycelium-mesh/mesh/internal/etcdtest"
)

// leaseTTL is short so that lease tests end quickly; etcd's minimum with
// the test clusters' timings is 1 s.
const leaseTTL = 2 * time.Second

var prefixes atomic.Int64

// open opens a Store on a fresh or given prefix, closed when t ends.
func open(t *testing.T, endpoints []string, prefix string) *etcd.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := etcd.Open(ctx, etcd.Options{Endpoints: endpoints, Prefix: prefix, LeaseTTL: leaseTTL, OpTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open etcd fabric: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newPrefix() string { return fmt.Sprintf("/test/%d/", prefixes.Add(1)) }

// TestMain doubles as the agent process of TestDeadAgentEndpointsExpire.
func TestMain(m *testing.M) {
	if os.Getenv("MESH_ETCD_FABRIC_AGENT") != "" {
		os.Exit(runAgent())
	}
	os.Exit(m.Run())
}

// runAgent registers an endpoint and takes a claim, says "ready" and waits
// to be killed.
func runAgent() int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := etcd.Open(ctx, etcd.Options{
		Endpoints: strings.Split(os.Getenv("MESH_ETCD_FABRIC_AGENT"), ","),
		Prefix:    os.Getenv("MESH_ETCD_FABRIC_PREFIX"),
		LeaseTTL:  leaseTTL,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := s.Acquire("web", "dead", 100, 10); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s.RegisterEndpoint(fabric.Endpoint{AppName: "web", NodeID: "dead", URL: "http://127.0.0.1:1"})
	fmt.Println("ready")
	select {}
}

func TestConformance(t *testing.T) {
	c := etcdtest.Start(t, 3)
	fabrictest.Run(t, func(t *testing.T) func() fabric.Store {
		prefix := newPrefix()
		return func() fabric.Store { return open(t, c.Endpoints(), prefix) }
	})
}

// TestDeadAgentEndpointsExpire SIGKILLs a process holding a claim and an
// endpoint: both vanish with its lease, and the slot can be taken again.
func TestDeadAgentEndpointsExpire(t *testing.T) {
	c := etcdtest.Start(t, 3)
	prefix := newPrefix()
	s := open(t, c.Endpoints(), prefix)
	if err := s.PublishPlan(fabric.Plan{AppName: "web", Digest: fabrictest.Digest(1), Min: 1, Max: 1}); err != nil {
		t.Fatal(err)
	}
	watch := s.WatchEndpoints(t.Context())

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "MESH_ETCD_FABRIC_AGENT="+strings.Join(c.Endpoints(), ","), "MESH_ETCD_FABRIC_PREFIX="+prefix)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start agent process: %v", err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ready <- sc.Scan() && sc.Text() == "ready"
		for sc.Scan() {
		}
		_ = cmd.Wait()
		close(exited)
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("agent process did not get ready")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("agent process did not get ready")
	}
	waitSnap(t, watch, func(snap fabric.Snapshot) bool { return len(snap.Apps["web"]) == 1 })
	if _, err := s.Acquire("web", "alive", 0, 0); err == nil {
		t.Fatal("a second node got the slot the agent holds")
	}

	killed := time.Now()
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitSnap(t, watch, func(snap fabric.Snapshot) bool { return len(snap.Apps["web"]) == 0 })
	t.Logf("endpoint of the killed agent gone %s after SIGKILL (lease TTL %s)", time.Since(killed).Round(10*time.Millisecond), leaseTTL)
	l, err := s.Acquire("web", "alive", 0, 0)
	if err != nil {
		t.Fatalf("slot of the killed agent not free: %v (usage %+v)", err, s.Usage("web"))
	}
	l.Release()
}

// TestLeaderKilled SIGKILLs the etcd leader: plans are still published and
// delivered after the election, and a Store's endpoints survive it.
func TestLeaderKilled(t *testing.T) {
	c := etcdtest.Start(t, 3)
	prefix := newPrefix()
	writer, reader := open(t, c.Endpoints(), prefix), open(t, c.Endpoints(), prefix)
	writer.RegisterEndpoint(fabric.Endpoint{AppName: "web", NodeID: "n1", URL: "http://127.0.0.1:1"})
	plans := reader.Subscribe(t.Context())
	watch := reader.WatchEndpoints(t.Context())
	waitSnap(t, watch, func(snap fabric.Snapshot) bool { return len(snap.Apps["web"]) == 1 })

	leader := c.Leader(t)
	killed := time.Now()
	leader.Kill()
	p := fabric.Plan{AppName: "web", Digest: fabrictest.Digest(7), Min: 1}
	deadline := time.Now().Add(fabrictest.Wait)
	for {
		err := writer.PublishPlan(p)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("plan not published after the leader died: %v", err)
		}
		t.Logf("publish while electing: %v", err)
	}
	for {
		select {
		case got := <-plans:
			if got != p {
				continue
			}
		case <-time.After(fabrictest.Wait):
			t.Fatal("plan published after the leader died was not delivered")
		}
		break
	}
	t.Logf("plan published and delivered %s after the leader was killed", time.Since(killed).Round(10*time.Millisecond))
	// The lease outlives the election: keep-alives reach the new leader
	// well within its TTL, reset by the new leader in any case.
	if eps := reader.Endpoints("web"); len(eps) != 1 {
		t.Fatalf("endpoints after the election = %+v", eps)
	}
}

func waitSnap(t *testing.T, ch <-chan fabric.Snapshot, ok func(fabric.Snapshot) bool) {
	t.Helper()
	timeout := time.After(fabrictest.Wait)
	for {
		select {
		case s, open := <-ch:
			if !open {
				t.Fatal("endpoint watch closed")
			}
			if ok(s) {
				return
			}
		case <-timeout:
			t.Fatal("endpoint table never reached the expected state")
		}
	}
}
