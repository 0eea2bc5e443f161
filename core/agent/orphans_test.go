package agent

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/fabric"
)

// A process the workload forked (here one that ignores SIGTERM) does not
// outlive the workload, however the workload ends.
func TestForkedChildDoesNotOutliveWorkload(t *testing.T) {
	tests := []struct {
		name string
		end  func(t *testing.T, e *env, a *running, st InstanceStatus)
	}{
		{"main process killed", func(t *testing.T, e *env, a *running, st InstanceStatus) {
			// Only the main process, not its group: as if it crashed.
			if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}},
		{"main process exits cleanly on its own", func(t *testing.T, e *env, a *running, st InstanceStatus) {
			if err := syscall.Kill(st.PID, syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
		}},
		{"instance stopped when the plan is withdrawn", func(t *testing.T, e *env, a *running, st InstanceStatus) {
			if err := e.fab.DeletePlan("billing"); err != nil {
				t.Fatal(err)
			}
		}},
		{"agent stopped", func(t *testing.T, e *env, a *running, st InstanceStatus) {
			a.stop(t)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			d := e.spore("v1", map[string]string{"HELLO_FORK": "1"})
			a := e.startAgent("n1", nil)
			e.publish(fabric.Plan{Digest: d, Restart: fabric.RestartNever})
			st := a.readyWith(t, "billing", d, 10*time.Second)
			gpid, gstart := forkedChild(t, st.URL)
			if sg, err := readProcStat(gpid); err != nil || sg.PGID != st.PID {
				t.Fatalf("forked child %d not in the workload's group %d: %+v %v", gpid, st.PID, sg, err)
			}
			tc.end(t, e, a, st)
			waitFor(t, 10*time.Second, "workload to exit", func() bool { return !pidAlive(st.PID) })
			waitFor(t, 5*time.Second, "forked child to be killed", func() bool { return !sameStart(gpid, gstart) })
		})
	}
}

// A crash loop keeps the directories of the last few finished instances of
// the app and removes the older ones.
func TestInstanceDirsPruned(t *testing.T) {
	e := newEnv(t)
	// An unparsable delay makes hello exit at once: every start fails fast.
	bad := []string{
		e.spore("bad1", map[string]string{"HELLO_READY_DELAY": "soon"}),
		e.spore("bad2", map[string]string{"HELLO_READY_DELAY": "soon"}),
	}
	a := e.startAgent("n1", nil)
	const launches = keepFinished + 4
	seen := map[string]bool{}
	for n := range launches {
		// Alternating digests makes every plan a new one, launched at once.
		e.publish(fabric.Plan{Digest: bad[n%2], Restart: fabric.RestartNever})
		waitFor(t, 10*time.Second, "a new failed instance", func() bool {
			for _, s := range a.inState("billing", StateFailed) {
				if !seen[s.Instance] && s.PID > 0 {
					seen[s.Instance] = true
					return true
				}
			}
			return false
		})
	}
	var kept []string
	for _, s := range a.Instances() {
		kept = append(kept, s.Instance)
	}
	sort.Strings(kept)
	dirs, err := filepath.Glob(filepath.Join(e.runDir, "n1", "billing-*"))
	if err != nil {
		t.Fatal(err)
	}
	var onDisk []string
	for _, d := range dirs {
		onDisk = append(onDisk, filepath.Base(d))
	}
	sort.Strings(onDisk)
	if len(seen) != launches || len(kept) != keepFinished || strings.Join(onDisk, ",") != strings.Join(kept, ",") {
		t.Fatalf("after %d failed launches: instance dirs %v, want those of the listed instances %v", len(seen), onDisk, kept)
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "stderr.log")); err != nil {
			t.Fatalf("kept instance dir lost its log: %v", err)
		}
	}
}

// With TrustedFunc a key withdrawn while the agent runs stops new launches
// of the spores it signed, although they are already extracted; trusting it
// again lets them run again.
func TestTrustReload(t *testing.T) {
	e := newEnv(t)
	d := e.spore("v1", nil)
	other, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	var keys atomic.Pointer[[]ed25519.PublicKey]
	set := func(k ...ed25519.PublicKey) { keys.Store(&k) }
	set(other, testPub)
	a := e.startAgent("n1", func(o *Options) {
		o.Trusted = nil
		o.TrustedFunc = func() []ed25519.PublicKey { return *keys.Load() }
	})
	e.publish(fabric.Plan{Digest: d, Restart: fabric.RestartNever})
	first := a.readyWith(t, "billing", d, 10*time.Second)

	set(other)
	// Stop the running instance; republishing relaunches the down app.
	if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the killed instance to be over", func() bool {
		return len(a.inState("billing", StateFailed)) == 1
	})
	e.publish(fabric.Plan{Digest: d, Restart: fabric.RestartNever, Min: 1})
	waitFor(t, 10*time.Second, "the relaunch refused by the reloaded trust", func() bool {
		for _, s := range a.inState("billing", StateFailed) {
			if s.Instance != first.Instance && strings.Contains(s.LastError, "trust") {
				if s.PID != 0 {
					t.Fatalf("spore of a withdrawn key was launched: %+v", s)
				}
				return true
			}
		}
		if r := a.inState("billing", StateReady); len(r) > 0 {
			t.Fatalf("spore of a withdrawn key runs again: %+v", r)
		}
		return false
	})

	set(testPub)
	e.publish(fabric.Plan{Digest: d, Restart: fabric.RestartNever, Min: 2})
	a.readyOther(t, "billing", d, first.Instance, 10*time.Second)
}
