package mesh_test

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/mesh"
)

// follower is `mesh events -f -json` running against a test's mesh.
type follower struct {
	t      *testing.T
	cmd    *exec.Cmd
	lines  chan mesh.EventLine
	done   chan struct{}
	seen   []mesh.EventLine
	stderr *syncBuffer
}

func (e *env) followEvents(t *testing.T) *follower {
	t.Helper()
	f := &follower{t: t, lines: make(chan mesh.EventLine, 4096), done: make(chan struct{}), stderr: &syncBuffer{}}
	f.cmd = exec.Command(meshBin, "events", "-f", "-json", "-app", "billing", "-config", e.cfgPath)
	f.cmd.Stderr = f.stderr
	out, err := f.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(f.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var ev mesh.EventLine
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Errorf("mesh events printed %q: %v", sc.Text(), err)
				continue
			}
			f.lines <- ev
		}
	}()
	t.Cleanup(f.stop)
	return f
}

// stop interrupts the follower by its pid and checks it exits cleanly.
func (f *follower) stop() {
	if f.cmd == nil {
		return
	}
	_ = f.cmd.Process.Signal(syscall.SIGINT)
	<-f.done
	if err := f.cmd.Wait(); err != nil {
		f.t.Errorf("mesh events -f after SIGINT: %v\n%s", err, f.stderr.String())
	}
	f.cmd = nil
}

// until collects events until done says the story is complete.
func (f *follower) until(what string, timeout time.Duration, done func([]mesh.EventLine) bool) []mesh.EventLine {
	f.t.Helper()
	deadline := time.After(timeout)
	start := len(f.seen)
	for !done(f.seen[start:]) {
		select {
		case ev := <-f.lines:
			if ev.SchemaVersion != mesh.SchemaVersion {
				f.t.Fatalf("event without schema_version: %+v", ev)
			}
			if n := len(f.seen); n > 0 && ev.Seq <= f.seen[n-1].Seq {
				f.t.Fatalf("event %d after %d: out of order", ev.Seq, f.seen[n-1].Seq)
			}
			f.seen = append(f.seen, ev)
		case <-deadline:
			f.t.Fatalf("timed out after %s waiting for %s; events:\n%s", timeout, what, eventList(f.seen[start:]))
		}
	}
	return f.seen[start:]
}

func eventList(evs []mesh.EventLine) string {
	var b strings.Builder
	for _, e := range evs {
		b.WriteString(e.Type + " node=" + e.Node + " instance=" + e.Instance + " digest=" + e.Digest + " state=" + e.State + " " + e.Detail + "\n")
	}
	return b.String()
}

// index is the position of the first event after from matching ok, or -1.
func index(evs []mesh.EventLine, from int, ok func(mesh.EventLine) bool) int {
	for i := max(from, 0); i < len(evs); i++ {
		if ok(evs[i]) {
			return i
		}
	}
	return -1
}

func is(typ, node, digest string) func(mesh.EventLine) bool {
	return func(e mesh.EventLine) bool {
		return e.Type == typ && (node == "" || e.Node == node) && (digest == "" || e.Digest == digest)
	}
}

// TestEventsFollowBlueGreenAndKill: `mesh events -f` prints, in order, the
// events of a blue/green rollout (the plan, the rollout, on each node the
// new instance launched, healthy and registered before the old one exits,
// the rollout completed) and of a workload killed with SIGKILL (its
// endpoint removed, its exit, the restart, the new instance through to its
// endpoint).
func TestEventsFollowBlueGreenAndKill(t *testing.T) {
	e := newEnv(t)
	e.start()
	f := e.followEvents(t)
	v1 := e.status().Apps[0].Digest

	c := e.client()
	ctx := t.Context()
	v2, err := c.PublishSpore(ctx, e.v2)
	if err != nil {
		t.Fatal(err)
	}
	runCLI(t, "deploy", "-config", e.cfgPath, "-app", "billing", "-digest", v2, "-timeout", "60s")
	nodes := e.status().Nodes
	evs := f.until("the blue/green rollout", 60*time.Second, func(evs []mesh.EventLine) bool {
		if index(evs, 0, func(e mesh.EventLine) bool { return e.Type == "rollout.completed" && e.Digest == v2 }) < 0 {
			return false
		}
		for _, n := range nodes {
			if index(evs, 0, is("instance.exited", n, v1)) < 0 {
				return false
			}
		}
		return true
	})
	plan := index(evs, 0, is("plan.published", "", v2))
	started := index(evs, plan, func(e mesh.EventLine) bool { return e.Type == "rollout.started" && e.Digest == v2 })
	if plan < 0 || started < 0 {
		t.Fatalf("no plan.published then rollout.started for %s:\n%s", v2, eventList(evs))
	}
	completed := index(evs, 0, func(e mesh.EventLine) bool { return e.Type == "rollout.completed" && e.Digest == v2 })
	if evs[completed].State != "succeeded" {
		t.Fatalf("rollout completed as %q:\n%s", evs[completed].State, eventList(evs))
	}
	if index(evs, started, func(e mesh.EventLine) bool { return e.Type == "rollout.progressed" }) > completed {
		t.Errorf("rollout.progressed after its completion:\n%s", eventList(evs))
	}
	for _, n := range nodes {
		at := started
		for _, typ := range []string{"instance.launched", "instance.healthy", "endpoint.registered"} {
			next := index(evs, at, is(typ, n, v2))
			if next < 0 {
				t.Fatalf("node %s: no %s of %s after the previous step:\n%s", n, typ, v2, eventList(evs))
			}
			at = next
		}
		if reg := at; reg > completed {
			t.Errorf("node %s: endpoint registered after the rollout completed:\n%s", n, eventList(evs))
		}
		if exited := index(evs, 0, is("instance.exited", n, v1)); exited < at {
			t.Errorf("node %s: the old instance exited before the new one took traffic:\n%s", n, eventList(evs))
		}
	}
	t.Logf("blue/green: %d events in order", len(evs))

	// SIGKILL one workload of v2.
	var victim mesh.InstanceStatus
	for _, in := range e.status().Instances {
		if in.State == "ready" && in.Digest == v2 {
			victim = in
			break
		}
	}
	if victim.PID == 0 {
		t.Fatal("no ready instance of v2")
	}
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	newOnNode := func(typ string) func(mesh.EventLine) bool {
		return func(e mesh.EventLine) bool {
			return e.Type == typ && e.Node == victim.NodeID && e.Instance != victim.Instance && e.Instance != ""
		}
	}
	evs = f.until("the kill and the restart", 30*time.Second, func(evs []mesh.EventLine) bool {
		return index(evs, 0, newOnNode("endpoint.registered")) >= 0
	})
	at := -1
	for _, step := range []struct {
		name string
		ok   func(mesh.EventLine) bool
	}{
		{"endpoint.removed", func(e mesh.EventLine) bool { return e.Type == "endpoint.removed" && e.Instance == victim.Instance }},
		{"instance.exited", func(e mesh.EventLine) bool {
			return e.Type == "instance.exited" && e.Instance == victim.Instance && e.State == "failed" && e.PID == victim.PID
		}},
		{"instance.restarted", is("instance.restarted", victim.NodeID, v2)},
		{"instance.launched", newOnNode("instance.launched")},
		{"instance.healthy", newOnNode("instance.healthy")},
		{"endpoint.registered", newOnNode("endpoint.registered")},
	} {
		next := index(evs, at+1, step.ok)
		if next < 0 {
			t.Fatalf("no %s after the previous step of the kill:\n%s", step.name, eventList(evs))
		}
		at = next
	}
	t.Logf("kill: %d events in order", len(evs))
}
