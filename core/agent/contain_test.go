package agent

import (
	"crypto/ed25519"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/cgroup"
	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/repo"
	"github.com/mycelium-mesh/mesh/core/spore"
	"github.com/mycelium-mesh/mesh/plugins/healthhttp"
)

// scriptSpore packs a shell script as the workload binary. The script ends
// by exec'ing the hello workload, so the instance serves /health.
func scriptSpore(t testing.TB, r *repo.Repo, script string, envs map[string]string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "workload.sh")
	body := "#!/bin/sh\n" + script + "\nexec " + helloBin + "\n"
	if err := os.WriteFile(bin, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	m := spore.Manifest{
		Identity:  spore.Identity{Name: "billing", Version: "script"},
		Runtime:   spore.Runtime{Args: []string{}, Env: envs},
		Resources: spore.Resources{Nutrients: spore.Nutrients{CPUMilli: 200, MemoryMB: 48}},
		SLO:       spore.SLO{P99BudgetMS: 50},
		Security:  spore.Security{LSMProfile: "default"},
	}
	path := filepath.Join(t.TempDir(), "script.spore")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spore.Pack(out, bin, m, testKey); err != nil {
		t.Fatalf("pack: %v", err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := r.Put(path)
	if err != nil {
		t.Fatalf("repo put: %v", err)
	}
	return d
}

// setsidScript double-forks a sleeper into a session of its own, out of
// the workload's process group, and records its pid in the instance dir.
const setsidScript = `setsid sh -c 'sleep 300 & echo $! > "$0/escapee.pid"' "$PWD" </dev/null >/dev/null 2>&1`

// escapee waits for the pid the setsid script recorded in dir and checks
// that it really left the workload's process group and session.
func escapee(t testing.TB, dir string, leader int) (int, uint64) {
	t.Helper()
	var pid int
	waitFor(t, 10*time.Second, "escapee pid", func() bool {
		data, err := os.ReadFile(filepath.Join(dir, "escapee.pid"))
		if err != nil || !strings.HasSuffix(string(data), "\n") {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(data)))
		return err == nil
	})
	st, err := readProcStat(pid)
	if err != nil {
		t.Fatalf("escapee %d: %v", pid, err)
	}
	if st.PGID == leader {
		t.Fatalf("escapee %d is still in the workload's group %d: the test does not exercise setsid", pid, leader)
	}
	t.Cleanup(func() {
		if sameStart(pid, st.StartTime) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return pid, st.StartTime
}

// requireCgroupPath fails when cgroups should be usable (root, a cgroup2
// mount) but the agent contained by process group, and skips, saying so,
// where the kernel cannot offer them.
func requireCgroupPath(t *testing.T, a *running) {
	t.Helper()
	waitFor(t, 5*time.Second, "agent started", func() bool { return a.Containment() != "" })
	_, err := cgroup.Detect()
	switch got := a.Containment(); {
	case got == ContainCgroup:
		t.Logf("containment path: %s", got)
	case err == nil || os.Geteuid() == 0 && cgroup2Mounted():
		t.Fatalf("cgroups are available here (detect: %v) but the agent contains by %s", err, got)
	default:
		t.Skipf("CGROUP PATH NOT TESTED: no usable cgroups here (%v); the agent runs on process groups", err)
	}
}

func cgroup2Mounted() bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	return err == nil && strings.Contains(string(data), " - cgroup2 ")
}

// containModes are the cgroup paths the agent can take on this machine:
// the default (cgroup2 tracking where there is one) and the v1 freezer
// with the shim, as on a machine without cgroup2.
var containModes = []struct {
	name  string
	tweak func(*Options)
}{
	{"default", func(*Options) {}},
	{"v1 with shim", func(o *Options) {
		exe, _ := os.Executable()
		o.forceV1, o.ShimCommand = true, []string{exe, ShimArg}
	}},
}

// No process of a workload, setsid double-forked escapees included,
// survives the instance, however it ends.
func TestSetsidEscapeeDoesNotOutliveInstance(t *testing.T) {
	for _, mode := range containModes {
		t.Run(mode.name, func(t *testing.T) { testSetsidEscapee(t, mode.tweak) })
	}
}

func testSetsidEscapee(t *testing.T, tweak func(*Options)) {
	tests := []struct {
		name string
		end  func(t *testing.T, e *env, a *running, st InstanceStatus)
	}{
		{"plan withdrawn", func(t *testing.T, e *env, a *running, st InstanceStatus) {
			if err := e.fab.DeletePlan("billing"); err != nil {
				t.Fatal(err)
			}
		}},
		{"agent stopped", func(t *testing.T, e *env, a *running, st InstanceStatus) { a.stop(t) }},
		{"main process crashes", func(t *testing.T, e *env, a *running, st InstanceStatus) {
			if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			d := scriptSpore(t, e.repo, setsidScript, nil)
			a := e.startAgent("n1", tweak)
			requireCgroupPath(t, a)
			e.publish(fabric.Plan{Digest: d, Restart: fabric.RestartNever})
			st := a.readyWith(t, "billing", d, 10*time.Second)
			if st.Containment != ContainCgroup {
				t.Fatalf("instance containment %q", st.Containment)
			}
			gpid, gstart := escapee(t, filepath.Join(e.runDir, "n1", st.Instance), st.PID)
			tc.end(t, e, a, st)
			waitFor(t, 10*time.Second, "workload to exit", func() bool { return !pidAlive(st.PID) })
			waitFor(t, 5*time.Second, "setsid escapee killed", func() bool { return !sameStart(gpid, gstart) })
		})
	}
}

// Without cgroups the agent says so: it contains by process group and logs
// that a setsid escapee can outlive its instance.
func TestProcessGroupFallbackIsExplicit(t *testing.T) {
	e := newEnv(t)
	d := e.spore("v1", nil)
	a := e.startAgent("n1", func(o *Options) { o.NoCgroups = true })
	e.publish(fabric.Plan{Digest: d})
	st := a.readyWith(t, "billing", d, 10*time.Second)
	t.Logf("containment path: %s (forced)", st.Containment)
	if a.Containment() != ContainProcessGroup || st.Containment != ContainProcessGroup {
		t.Fatalf("containment %q / %q, want %q", a.Containment(), st.Containment, ContainProcessGroup)
	}
	if !strings.Contains(e.logs.String(), "contained by process group only") {
		t.Fatal("no warning that workloads are contained by process group only")
	}
	// Enforcement cannot be promised without cgroups: Start refuses.
	b, err := New(Options{NodeID: "n2", Fabric: e.fab, Repo: e.repo, Trusted: a.opts.Trusted, RunDir: e.runDir,
		Health: a.opts.Health, NoCgroups: true, EnforceNutrients: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "enforce nutrients") {
		t.Fatalf("Start with enforcement and no cgroups: %v", err)
	}
}

// With enforcement on, the manifest's nutrients and the pids limit are in
// the instance's cgroups, and status reports them.
func TestNutrientsEnforced(t *testing.T) {
	for _, mode := range containModes {
		t.Run(mode.name, func(t *testing.T) { testNutrientsEnforced(t, mode.tweak) })
	}
}

func testNutrientsEnforced(t *testing.T, tweak func(*Options)) {
	e := newEnv(t)
	d := scriptSpore(t, e.repo, "", nil)
	a := e.startAgent("n1", func(o *Options) { tweak(o); o.EnforceNutrients = true; o.MaxPids = 77 })
	requireCgroupPath(t, a)
	e.publish(fabric.Plan{Digest: d})
	st := a.readyWith(t, "billing", d, 10*time.Second)
	if want := "mem=48MiB cpu=200m pids=77"; st.Limits != want {
		t.Fatalf("status limits %q, want %q", st.Limits, want)
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(st.PID) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("workload cgroups:\n%s", data)
	recs, _ := filepath.Glob(filepath.Join(e.runDir, "n1", "instances", "*.json"))
	if len(recs) != 1 {
		t.Fatalf("records %v", recs)
	}
	raw, _ := os.ReadFile(recs[0])
	var rec record
	if err := json.Unmarshal(raw, &rec); err != nil || len(rec.Cgroups) == 0 {
		t.Fatalf("record %s: %v", raw, err)
	}
	checked := 0
	for _, dir := range rec.Cgroups {
		for file, want := range map[string]string{
			"memory.limit_in_bytes": "50331648", "memory.max": "50331648",
			"cpu.cfs_quota_us": "20000", "pids.max": "77",
		} {
			got, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil {
				continue
			}
			checked++
			if strings.TrimSpace(string(got)) != want {
				t.Errorf("%s/%s = %q, want %s", dir, file, got, want)
			}
		}
		procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err == nil && !strings.Contains(" "+strings.ReplaceAll(string(procs), "\n", " "), " "+strconv.Itoa(st.PID)+" ") {
			t.Errorf("pid %d not in %s", st.PID, dir)
		}
	}
	if checked < 3 {
		t.Fatalf("only %d limit files found in %s", checked, raw)
	}
}

// A group a crashed run left without a record (it died between creating
// the cgroup and writing the record) is found in the node's cgroup scope
// and killed on the next start; the scope is removed when the agent stops.
func TestUnrecordedLeftoverCgroupKilled(t *testing.T) {
	e := newEnv(t)
	probe, err := New(Options{NodeID: "n1", Fabric: e.fab, Repo: e.repo, Trusted: []ed25519.PublicKey{testPub}, RunDir: e.runDir, Health: healthhttp.New()})
	if err != nil {
		t.Fatal(err)
	}
	scope := probe.cgroupScope()
	m, err := cgroup.Detect()
	if err != nil {
		if os.Geteuid() == 0 && cgroup2Mounted() {
			t.Fatalf("cgroups available but Detect failed: %v", err)
		}
		t.Skipf("CGROUP PATH NOT TESTED: %v", err)
	}
	g, err := m.Create(scope, "billing-0badc0de", cgroup.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(t.TempDir(), "escapee.pid")
	cmd := exec.Command("/bin/sh", "-c", `setsid sh -c 'sleep 300 & echo $! > "$0"' `+pidFile+` </dev/null >/dev/null 2>&1`)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: g.FD()}
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	g.Close()
	pid, start := escapee(t, filepath.Dir(pidFile), cmd.Process.Pid)

	a := e.startAgent("n1", nil)
	requireCgroupPath(t, a)
	waitFor(t, 10*time.Second, "unrecorded leftover killed", func() bool { return !sameStart(pid, start) })
	waitFor(t, 5*time.Second, "leftover group removed", func() bool {
		_, err := os.Stat(g.Dir())
		return os.IsNotExist(err)
	})
	a.stop(t)
	if _, err := os.Stat(filepath.Join(m.Base(), scope)); !os.IsNotExist(err) {
		t.Fatalf("scope %s kept after the agent stopped: %v", scope, err)
	}
}

func TestRunShimRefuses(t *testing.T) {
	tests := []struct {
		name string
		env  string
		args []string
		want string
	}{
		{"no binary", "x", nil, "no binary"},
		{"no groups", "", []string{"/bin/true"}, "is not set"},
		{"not a cgroup.procs file", "/etc/passwd", []string{"/bin/true"}, "not a cgroup.procs file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(shimEnv, tc.env)
			if err := RunShim(tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("RunShim: %v, want %q", err, tc.want)
			}
		})
	}
}
