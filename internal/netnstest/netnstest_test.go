package netnstest

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serveEnv makes the test binary an HTTP server on the address it names
// (the helper process a host runs in TestNet).
const serveEnv = "NETNSTEST_SERVE"

func TestMain(m *testing.M) {
	if addr := os.Getenv(serveEnv); addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "pong")
		}))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestNet: hosts reach each other and are reached from the root namespace
// over the bridge, not through the loopback of another host; a link taken
// down cuts a host off until it is healed; KillAll leaves nothing running;
// the end of the test deletes every namespace and link.
func TestNet(t *testing.T) {
	n := New(t)
	a, b := n.AddHost("a"), n.AddHost("b")
	addr := net.JoinHostPort(b.IP, "8080")
	cmd := b.Command(os.Args[0])
	cmd.Env = append(os.Environ(), serveEnv+"="+addr)
	p := b.Start(cmd)

	hc := &http.Client{Timeout: 500 * time.Millisecond}
	get := func() error {
		resp, err := hc.Get("http://" + addr + "/")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if string(body) != "pong" {
			return fmt.Errorf("body %q", body)
		}
		return nil
	}
	waitFor(t, 10*time.Second, "server on host b reachable from the root namespace", func() bool { return get() == nil })

	// From host a: over the bridge, and its own loopback does not have it.
	out, err := a.Command("curl", "-s", "--max-time", "2", "http://"+addr+"/").CombinedOutput()
	if err != nil || string(out) != "pong" {
		t.Fatalf("from host a: %v %s", err, out)
	}
	if out, err := a.Command("curl", "-s", "--max-time", "1", "http://127.0.0.1:8080/").CombinedOutput(); err == nil {
		t.Fatalf("host a's loopback reached host b's server: %s", out)
	}
	if pids := b.Pids(); len(pids) != 1 || pids[0] != p.Pid() {
		t.Fatalf("pids on host b %v, want [%d]", pids, p.Pid())
	}

	b.LinkDown()
	if err := get(); err == nil {
		t.Fatal("host b still reachable with its link down")
	}
	b.LinkUp()
	waitFor(t, 10*time.Second, "host b reachable again after its link healed", func() bool { return get() == nil })

	b.KillAll()
	select {
	case <-p.Exited():
	default:
		t.Fatal("server still running after KillAll")
	}
	if pids := b.Pids(); len(pids) != 0 {
		t.Fatalf("processes left on host b: %v", pids)
	}
}

// TestTeardown: a Net leaves no namespace or link behind.
func TestTeardown(t *testing.T) {
	var ns, bridge, veth string
	t.Run("net", func(t *testing.T) {
		n := New(t)
		h := n.AddHost("x")
		ns, bridge, veth = h.NS, n.bridge, h.hostSide
	})
	if ns == "" {
		return // skipped
	}
	out := run(t, "ip", "netns", "list")
	if strings.Contains(out, ns) {
		t.Errorf("namespace %s left: %s", ns, out)
	}
	out = run(t, "ip", "-o", "link")
	for _, l := range []string{bridge, veth} {
		if strings.Contains(out, l+":") || strings.Contains(out, l+"@") {
			t.Errorf("link %s left", l)
		}
	}
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := osexec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// recorder is a testing.TB that records how Require ended the test.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Fatal(args ...any)         { r.fatal = fmt.Sprint(args...) }
func (r *recorder) Skip(args ...any)          { r.skip = fmt.Sprint(args...) }
func (r *recorder) Fatalf(f string, a ...any) { r.fatal = fmt.Sprintf(f, a...) }

// TestRequire: a machine without the harness's features fails the test
// under CI=true and skips it otherwise, both saying what is missing; it
// never passes silently.
func TestRequire(t *testing.T) {
	defer func(p func() string) { probe = p }(probe)
	probe = func() string { return "not running as root" }
	tests := []struct {
		ci          string
		fatal, skip bool
	}{{"true", true, false}, {"", false, true}, {"false", false, true}}
	for _, tt := range tests {
		t.Run("CI="+tt.ci, func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			r := &recorder{TB: t}
			Require(r)
			if (r.fatal != "") != tt.fatal || (r.skip != "") != tt.skip {
				t.Fatalf("fatal %q skip %q", r.fatal, r.skip)
			}
			if !strings.Contains(r.fatal+r.skip, "not running as root") {
				t.Fatalf("message does not name the missing feature: %q", r.fatal+r.skip)
			}
		})
	}
	probe = func() string { return "" }
	r := &recorder{TB: t}
	Require(r)
	if r.fatal != "" || r.skip != "" {
		t.Fatalf("a capable machine was refused: %q %q", r.fatal, r.skip)
	}
}

// TestDialFromHost: a connection dialled from a host leaves from its
// address, and reaches nothing on another host's loopback.
func TestDialFromHost(t *testing.T) {
	n := New(t)
	a, b := n.AddHost("a"), n.AddHost("b")
	addr := net.JoinHostPort(b.IP, "8081")
	cmd := b.Command(os.Args[0])
	cmd.Env = append(os.Environ(), serveEnv+"="+addr)
	b.Start(cmd)
	var c net.Conn
	waitFor(t, 10*time.Second, "server on host b reachable from host a", func() bool {
		var err error
		c, err = a.DialContext(t.Context(), "tcp", addr)
		return err == nil
	})
	defer c.Close()
	if got, _, _ := net.SplitHostPort(c.LocalAddr().String()); got != a.IP {
		t.Fatalf("connection from %s, want host a's %s", got, a.IP)
	}
	if c2, err := a.DialContext(t.Context(), "tcp", "127.0.0.1:8081"); err == nil {
		c2.Close()
		t.Fatal("host a's loopback reached host b's server")
	}
}

// TestSweep: what a killed test process left (its owner record names a
// process that is gone) is deleted by the next New; a live owner's net is
// left alone.
func TestSweep(t *testing.T) {
	Require(t)
	dead := newTag()
	run(t, "ip", "netns", "add", "mn"+dead+"-x")
	run(t, "ip", "link", "add", "mb"+dead, "type", "bridge")
	if err := os.MkdirAll(ownersDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A pid that cannot exist (above pid_max) stands for the killed owner.
	if err := os.WriteFile(filepath.Join(ownersDir, dead), []byte("999999999 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	live := New(t) // sweeps
	if out := run(t, "ip", "netns", "list"); strings.Contains(out, "mn"+dead) {
		t.Errorf("namespace of the dead owner left: %s", out)
	}
	if out := run(t, "ip", "-o", "link"); strings.Contains(out, "mb"+dead) {
		t.Error("bridge of the dead owner left")
	}
	if _, err := os.Stat(filepath.Join(ownersDir, dead)); !os.IsNotExist(err) {
		t.Errorf("owner record of the dead owner left: %v", err)
	}
	sweep()
	if out := run(t, "ip", "-o", "link"); !strings.Contains(out, live.bridge) {
		t.Error("sweep deleted the bridge of a live owner")
	}
}
