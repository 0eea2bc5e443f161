package agent

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/fabric"
)

// adopting turns on adoption with the test binary as the log relay.
func adopting(t testing.TB, noCgroups bool) func(*Options) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return func(o *Options) {
		o.Adopt, o.LogRelayCommand, o.NoCgroups = true, []string{exe, LogRelayArg}, noCgroups
	}
}

// detachStop stops an agent with Adopt and waits for Start to return; its
// ready workloads keep running.
func (r *running) detachStop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("agent %s Start: %v", r.opts.NodeID, err)
		}
		close(r.done) // the cleanup's stop sees it closed
	case <-time.After(15 * time.Second):
		t.Fatalf("agent %s did not stop", r.opts.NodeID)
	}
}

// sweep starts an agent without Adopt on node, which stops every leftover
// of the earlier runs, and waits until the given pids are gone.
func (e *env) sweep(node string, pids ...int) {
	e.t.Helper()
	e.startAgent(node, nil)
	for _, pid := range pids {
		waitFor(e.t, 10*time.Second, "leftover stopped", func() bool { return !pidAlive(pid) })
	}
}

// A workload survives the restart of its agent: the next run adopts the same
// process, registers it again, and supervises it (a kill is seen and the
// workload restarted; what it logged after the restart is in its log files).
func TestAdoptAfterAgentRestart(t *testing.T) {
	for _, tc := range []struct {
		name      string
		noCgroups bool
		host      string // the address workloads listen on; "" is the default
	}{
		{"cgroup when available", false, ""},
		{"process group", true, ""},
		// In a cluster workloads listen on the host's advertise address:
		// the adopted one is checked and registered there, not on 127.0.0.1.
		{"process group, on the host's advertise address", true, "127.0.0.2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			d := e.spore("v1", nil)
			e.publish(fabric.Plan{Digest: d, Restart: fabric.RestartAlways})
			opts := func(o *Options) {
				adopting(t, tc.noCgroups)(o)
				if tc.host != "" {
					o.Host = tc.host
				}
			}
			a1 := e.startAgent("n1", opts)
			s1 := a1.readyWith(t, "billing", d, 10*time.Second)
			if _, err := get(s1.URL + "/hello"); err != nil {
				t.Fatal(err)
			}

			a1.detachStop(t)
			if !pidAlive(s1.PID) {
				t.Fatalf("workload pid %d did not survive its agent", s1.PID)
			}
			if _, err := get(s1.URL + "/hello"); err != nil {
				t.Fatalf("workload stopped serving while no agent ran: %v", err)
			}
			if ep, ok := endpointOf(e.fab, "billing", "n1"); !ok || ep.URL != s1.URL {
				t.Fatalf("endpoint withdrawn when the agent stopped: %+v %v", ep, ok)
			}

			a2 := e.startAgent("n1", opts)
			select {
			case <-a2.Adopted():
			case <-time.After(10 * time.Second):
				t.Fatal("adoption never settled")
			}
			s2 := a2.readyWith(t, "billing", d, time.Second)
			if s2.PID != s1.PID || s2.Instance != s1.Instance || s2.URL != s1.URL {
				t.Fatalf("not adopted: before %d %s %s, after %d %s %s", s1.PID, s1.Instance, s1.URL, s2.PID, s2.Instance, s2.URL)
			}
			if ep, ok := endpointOf(e.fab, "billing", "n1"); !ok || ep.URL != s1.URL {
				t.Fatalf("adopted endpoint not registered: %+v %v", ep, ok)
			}

			// The adopted workload is supervised: it is seen to exit, and it
			// logs (through its relay) after its first agent is gone.
			if err := syscall.Kill(s1.PID, syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			s3 := a2.readyOther(t, "billing", d, s1.Instance, 10*time.Second)
			if s3.PID == s1.PID {
				t.Fatalf("restarted with the same pid %d", s3.PID)
			}
			var old InstanceStatus
			for _, s := range a2.Instances() {
				if s.Instance == s1.Instance {
					old = s
				}
			}
			if old.State != StateFailed || !strings.Contains(old.LastError, "status unknown: adopted") {
				t.Errorf("adopted exit reported as %s %q", old.State, old.LastError)
			}
			waitFor(t, 5*time.Second, "shutdown line in stderr.log", func() bool {
				data, _ := os.ReadFile(filepath.Join(s1.Dir, "stderr.log"))
				return strings.Contains(string(data), "received, shutting down")
			})
			if tail := strings.Join(old.StderrTail, "\n"); !strings.Contains(tail, "listening on") {
				t.Errorf("stderr tail of the adopted instance not read back from its log: %q", tail)
			}

			a2.detachStop(t)
			e.sweep("n1", s3.PID)
		})
	}
}

// A record is adopted only when its process, plan and containment still
// match; otherwise the recorded process is stopped as a leftover (when it
// is still the recorded process) or left alone (when its pid now belongs
// to someone else), and a fresh instance is launched.
func TestAdoptRefused(t *testing.T) {
	tests := []struct {
		name string
		// damage changes the world between the two runs; it returns the
		// pid that must not be adopted and whether it must survive.
		damage      func(t *testing.T, e *env, s InstanceStatus) (pid int, survives bool)
		noCgroups   bool
		secondNoCgr bool
	}{
		{
			name: "pid reused by another process",
			damage: func(t *testing.T, e *env, s InstanceStatus) (int, bool) {
				// The workload is gone and another process holds a pid
				// the record names (as after a reboot or pid wrap): the
				// record is rewritten to name that process with the
				// start time the workload had.
				other := sleeper(t)
				rec := readRecord(t, e, s.Instance)
				st, err := readProcStat(other)
				if err != nil {
					t.Fatal(err)
				}
				rec.PID, rec.PGID, rec.StartTime = other, other, st.StartTime-1
				writeRecordFile(t, e, rec)
				_ = syscall.Kill(s.PID, syscall.SIGKILL)
				waitFor(t, 5*time.Second, "workload gone", func() bool { return !pidAlive(s.PID) })
				return other, true
			},
			noCgroups: true, secondNoCgr: true,
		},
		{
			name: "plan changed",
			damage: func(t *testing.T, e *env, s InstanceStatus) (int, bool) {
				e.publish(fabric.Plan{Digest: e.spore("v2", nil), Restart: fabric.RestartAlways})
				return s.PID, false
			},
		},
		{
			name: "damaged record",
			damage: func(t *testing.T, e *env, s InstanceStatus) (int, bool) {
				writeRaw(t, e, s.Instance, []byte(`{"pid":`))
				return s.PID, false // killed with its cgroup, which no record names
			},
		},
		{
			name: "containment changed",
			damage: func(t *testing.T, e *env, s InstanceStatus) (int, bool) {
				return s.PID, false
			},
			noCgroups: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			d := e.spore("v1", nil)
			e.publish(fabric.Plan{Digest: d, Restart: fabric.RestartAlways})
			a1 := e.startAgent("n1", adopting(t, tc.noCgroups))
			s1 := a1.readyWith(t, "billing", d, 10*time.Second)
			a1.detachStop(t)
			pid, survives := tc.damage(t, e, s1)

			a2 := e.startAgent("n1", adopting(t, tc.secondNoCgr))
			want := e.fab.Plans()[0].Digest
			s2 := a2.readyOther(t, "billing", want, s1.Instance, 10*time.Second)
			if s2.PID == pid {
				t.Fatalf("pid %d adopted", pid)
			}
			if survives {
				time.Sleep(50 * time.Millisecond)
				if !pidAlive(pid) {
					t.Fatalf("pid %d, not the recorded process, was signalled", pid)
				}
			} else {
				waitFor(t, 10*time.Second, "unadoptable workload stopped", func() bool { return !pidAlive(pid) })
			}
			a2.detachStop(t)
			e.sweep("n1", s2.PID)
		})
	}
}

// sleeper starts a process that is not a workload; it is killed when the
// test ends.
func sleeper(t *testing.T) int {
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	return cmd.Process.Pid
}

func recordFile(e *env, instance string) string {
	return filepath.Join(e.runDir, "n1", "instances", instance+".json")
}

func readRecord(t *testing.T, e *env, instance string) record {
	data, err := os.ReadFile(recordFile(e, instance))
	if err != nil {
		t.Fatal(err)
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func writeRecordFile(t *testing.T, e *env, r record) {
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	writeRaw(t, e, r.Instance, data)
}

func writeRaw(t *testing.T, e *env, instance string, data []byte) {
	if err := os.WriteFile(recordFile(e, instance), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A workload whose signer is no longer trusted is not kept by adoption: its
// spore is verified again against the keys of the new run, the workload is
// stopped, and nothing is launched in its place.
func TestAdoptVerifiesTrustAgain(t *testing.T) {
	e := newEnv(t)
	d := e.spore("v1", nil)
	e.publish(fabric.Plan{Digest: d, Restart: fabric.RestartAlways})
	a1 := e.startAgent("n1", adopting(t, false))
	s1 := a1.readyWith(t, "billing", d, 10*time.Second)
	a1.detachStop(t)

	other, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	adopt := adopting(t, false)
	a2 := e.startAgent("n1", func(o *Options) {
		adopt(o)
		o.Trusted = []ed25519.PublicKey{other}
	})
	select {
	case <-a2.Adopted():
	case <-time.After(10 * time.Second):
		t.Fatal("adoption never settled")
	}
	waitFor(t, 10*time.Second, "untrusted workload stopped", func() bool { return !pidAlive(s1.PID) })
	waitFor(t, 10*time.Second, "fresh start refused", func() bool { return len(a2.inState("billing", StateFailed)) > 0 })
	if ready := a2.inState("billing", StateReady); len(ready) > 0 {
		t.Fatalf("an instance of an untrusted spore is ready: %+v", ready)
	}
	var adopted InstanceStatus
	for _, s := range a2.Instances() {
		if s.Instance == s1.Instance {
			adopted = s
		}
	}
	if !strings.Contains(adopted.LastError, "verify") {
		t.Errorf("adopted instance given up with %q, want the verification error", adopted.LastError)
	}
}
