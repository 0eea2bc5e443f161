package agent

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/repo"
	"github.com/mycelium-mesh/mesh/core/spore"
	"github.com/mycelium-mesh/mesh/plugins/healthhttp"
)

// Environment of the child mode of the test binary: a mesh that runs one
// workload, reports it and waits to be killed.
const (
	childEnv          = "AGENT_TEST_CHILD_RUNDIR"
	childRepoEnv      = "AGENT_TEST_CHILD_REPO"
	childDigestEnv    = "AGENT_TEST_CHILD_DIGEST"
	childPubEnv       = "AGENT_TEST_CHILD_PUB"
	childNoDeathEnv   = "AGENT_TEST_CHILD_NO_PDEATHSIG"
	childReadyPrefix  = "READY"
	childStartTimeout = 20 * time.Second
)

func runChild() int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	if os.Getenv(childNoDeathEnv) != "" {
		// Let the workload outlive this process so that the next run must
		// find and stop it.
		deathSignal = 0
	}
	pub, err := spore.ParsePublicKey(os.Getenv(childPubEnv))
	if err != nil {
		return fail(err)
	}
	r, err := repo.Open(os.Getenv(childRepoEnv))
	if err != nil {
		return fail(err)
	}
	f, err := fabric.New(fabric.Options{})
	if err != nil {
		return fail(err)
	}
	a, err := New(Options{
		NodeID: "n1", Fabric: f, Repo: r, Trusted: []ed25519.PublicKey{pub},
		RunDir: os.Getenv(childEnv), Health: healthhttp.New(),
		Logger: hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Debug}),
	})
	if err != nil {
		return fail(err)
	}
	go func() { _ = a.Start(context.Background()) }()
	if err := f.PublishPlan(fabric.Plan{AppName: "billing", Digest: os.Getenv(childDigestEnv)}); err != nil {
		return fail(err)
	}
	deadline := time.Now().Add(childStartTimeout)
	for time.Now().Before(deadline) {
		for _, s := range a.Instances() {
			if s.State == StateReady {
				st, err := readProcStat(s.PID)
				if err != nil {
					return fail(err)
				}
				fmt.Printf("%s %d %d %s\n", childReadyPrefix, s.PID, st.StartTime, s.URL)
				select {} // wait to be killed
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fail(fmt.Errorf("workload not ready within %s", childStartTimeout))
}

// sameStart reports whether pid is alive and started at start.
func sameStart(pid int, start uint64) bool {
	st, err := readProcStat(pid)
	return err == nil && st.StartTime == start && st.State != 'Z' && st.State != 'X'
}

// A mesh killed with SIGKILL leaves no workload behind once it is restarted
// on the same run directory: either the workload died with the mesh, or the
// next run finds its record and stops it.
func TestNoWorkloadOutlivesKilledMesh(t *testing.T) {
	tests := []struct {
		name      string
		pdeathsig bool
		fork      bool // the workload forks a child that ignores SIGTERM
		setsid    bool // the workload double-forks a child into a session of its own
	}{
		{"workload dies with the mesh", true, false, false},
		{"next run stops the leftover", false, false, false},
		{"next run kills the forked child of a workload that died with the mesh", true, true, false},
		{"next run stops the leftover and its forked child", false, true, false},
		{"next run kills the setsid escapee of a workload that died with the mesh", true, false, true},
		{"next run kills the leftover and its setsid escapee", false, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			var extra map[string]string
			if tc.fork {
				extra = map[string]string{"HELLO_FORK": "1"}
			}
			d := e.spore("v1", extra)
			if tc.setsid {
				d = scriptSpore(t, e.repo, setsidScript, nil)
			}
			child := exec.Command(os.Args[0], "-test.run=^$")
			child.Env = append(os.Environ(),
				childEnv+"="+e.runDir,
				childRepoEnv+"="+e.repo.Dir(),
				childDigestEnv+"="+d,
				childPubEnv+"="+spore.FormatPublicKey(testPub),
			)
			if !tc.pdeathsig {
				child.Env = append(child.Env, childNoDeathEnv+"=1")
			}
			child.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			var stderr syncBuffer
			child.Stderr = &stderr
			out, err := child.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := child.Start(); err != nil {
				t.Fatal(err)
			}
			waited := false
			t.Cleanup(func() {
				if !waited {
					_ = child.Process.Kill()
					_ = child.Wait()
				}
				if t.Failed() {
					t.Logf("child log:\n%s", stderr.String())
				}
			})
			lines := make(chan string, 1)
			go func() {
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					if strings.HasPrefix(sc.Text(), childReadyPrefix) {
						lines <- sc.Text()
						return
					}
				}
				close(lines)
			}()
			var line string
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("child exited without a ready workload")
				}
				line = l
			case <-time.After(childStartTimeout + 5*time.Second):
				t.Fatal("child did not report a ready workload")
			}
			fields := strings.Fields(line)
			pid, _ := strconv.Atoi(fields[1])
			start, _ := strconv.ParseUint(fields[2], 10, 64)
			if pid <= 0 || start == 0 || !sameStart(pid, start) {
				t.Fatalf("bad report %q", line)
			}
			t.Cleanup(func() {
				if sameStart(pid, start) {
					_ = syscall.Kill(-pid, syscall.SIGKILL)
				}
			})
			gpid, gstart := 0, uint64(0)
			if tc.fork {
				gpid, gstart = forkedChild(t, fields[3])
			}
			if tc.setsid {
				dir, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd")
				if err != nil {
					t.Fatal(err)
				}
				gpid, gstart = escapee(t, dir, pid)
			}

			if err := child.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = child.Wait()
			waited = true

			if tc.pdeathsig {
				waitFor(t, 5*time.Second, "workload to die with the mesh", func() bool { return !sameStart(pid, start) })
				if tc.fork || tc.setsid {
					time.Sleep(100 * time.Millisecond)
					if !sameStart(gpid, gstart) {
						t.Fatal("forked child died with the mesh; the leftover path is not exercised")
					}
				}
			} else {
				time.Sleep(100 * time.Millisecond)
				if !sameStart(pid, start) {
					t.Fatal("workload died with the mesh although no death signal was set; the leftover path is not exercised")
				}
			}

			next := e.startAgent("n1", nil)
			if tc.setsid {
				requireCgroupPath(t, next)
			}
			records := filepath.Join(e.runDir, "n1", "instances")
			waitFor(t, 10*time.Second, "leftover cleared by the next run", func() bool {
				left, _ := filepath.Glob(filepath.Join(records, "*.json"))
				return !sameStart(pid, start) && len(left) == 0
			})
			if tc.fork || tc.setsid {
				waitFor(t, 5*time.Second, "forked child of the leftover killed", func() bool { return !sameStart(gpid, gstart) })
			}
		})
	}
}

// The next run signals a recorded workload only while the pid still belongs
// to the recorded process.
func TestLeftoverRecordChecksStartTime(t *testing.T) {
	tests := []struct {
		name        string
		startOffset uint64
		wantStopped bool
	}{
		{"same process is stopped", 0, true},
		{"reused pid is left alone", 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			sleeper := exec.Command("sleep", "60")
			sleeper.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := sleeper.Start(); err != nil {
				t.Fatal(err)
			}
			pid := sleeper.Process.Pid
			exited := make(chan struct{})
			go func() { _ = sleeper.Wait(); close(exited) }()
			t.Cleanup(func() {
				select {
				case <-exited:
				default:
					_ = syscall.Kill(-pid, syscall.SIGKILL)
					<-exited
				}
			})
			st, err := readProcStat(pid)
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(e.runDir, "n1", "instances")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			rec, _ := json.Marshal(record{PID: pid, PGID: pid, StartTime: st.StartTime + tc.startOffset, App: "billing", Instance: "billing-0000"})
			recPath := filepath.Join(dir, "billing-0000.json")
			if err := os.WriteFile(recPath, rec, 0o600); err != nil {
				t.Fatal(err)
			}
			e.startAgent("n1", func(o *Options) { o.Grace = 500 * time.Millisecond })
			waitFor(t, 10*time.Second, "record consumed", func() bool {
				_, err := os.Stat(recPath)
				return os.IsNotExist(err)
			})
			if tc.wantStopped {
				select {
				case <-exited:
				case <-time.After(5 * time.Second):
					t.Fatal("recorded workload not stopped")
				}
				return
			}
			time.Sleep(100 * time.Millisecond)
			select {
			case <-exited:
				t.Fatal("a process whose start time does not match the record was signalled")
			default:
			}
		})
	}
}

// forkedChild asks a hello started with HELLO_FORK=1 at url for its child's
// pid and returns it with its start time. The child is killed (by pid, if it
// is still the same process) when the test ends.
func forkedChild(t testing.TB, url string) (int, uint64) {
	t.Helper()
	body, err := get(url + "/child")
	if err != nil {
		t.Fatalf("ask the workload for its child: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(body))
	if err != nil || pid <= 1 {
		t.Fatalf("bad child pid %q", body)
	}
	st, err := readProcStat(pid)
	if err != nil {
		t.Fatalf("forked child %d: %v", pid, err)
	}
	t.Cleanup(func() {
		if sameStart(pid, st.StartTime) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return pid, st.StartTime
}
