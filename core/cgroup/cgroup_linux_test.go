//go:build linux

package cgroup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// detectors are the two ways to track: the default (cgroup2 where there is
// one) and the v1 freezer hierarchy. Tests run once per detector.
var detectors = []struct {
	name   string
	detect func() (*Manager, error)
}{{"default", Detect}, {"v1", DetectV1}}

// eachManager runs f for each detector that works on this machine.
func eachManager(t *testing.T, f func(t *testing.T, m *Manager)) {
	for _, d := range detectors {
		t.Run(d.name, func(t *testing.T) { f(t, manager(t, d.detect)) })
	}
}

// manager returns the Manager of this machine. As root on a machine with a
// cgroup2 mount, Detect must work: a failure there is a bug, not a reason
// to skip. Elsewhere the test is skipped and says so.
func manager(t *testing.T, detect func() (*Manager, error)) *Manager {
	t.Helper()
	m, err := detect()
	if err != nil {
		if os.Geteuid() == 0 && haveCgroupMount() {
			t.Fatalf("running as root with cgroup hierarchies mounted, but detection failed: %v", err)
		}
		t.Skipf("CGROUP PATH NOT TESTED: no usable cgroup hierarchy here (%v)", err)
	}
	t.Logf("cgroup path: mode %s, base %s", m.Mode(), m.Base())
	return m
}

func haveCgroupMount() bool {
	mounts, err := readMounts("/proc/self/mountinfo")
	return err == nil && len(mounts) > 0
}

func testScope(t *testing.T) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	scope := "test-" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		for _, d := range detectors {
			m, err := d.detect()
			if err != nil {
				continue
			}
			left, _ := m.Groups(scope)
			for _, l := range left {
				_, _ = m.RemovePaths(l.Paths)
			}
			for _, base := range append([]string{m.base}, mapValues(m.v1)...) {
				_ = os.Remove(filepath.Join(base, scope))
			}
		}
	})
	return scope
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// startIn starts sh -c script inside g and returns the command: cloned
// into the group, or joining it first, as a shim would, on v1.
func startIn(t *testing.T, g *Group, script string) *exec.Cmd {
	t.Helper()
	join := ""
	for _, p := range g.JoinPaths() {
		join += "echo 0 > " + p + " || exit 9\n"
	}
	cmd := exec.Command("/bin/sh", "-c", join+script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if g.FD() >= 0 {
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, g.FD()
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start in cgroup: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	return cmd
}

// waitPidFile waits for the script to write a pid into path.
func waitPidFile(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		data, err := os.ReadFile(path)
		if s := strings.TrimSpace(string(data)); err == nil && strings.HasSuffix(string(data), "\n") {
			pid, err := strconv.Atoi(s)
			if err == nil {
				return pid
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no pid in %s", path)
	return 0
}

func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(data), ')')
	return i > 0 && i+2 < len(data) && data[i+2] != 'Z' && data[i+2] != 'X'
}

// A setsid double-forked grandchild leaves the process group but not the
// cgroup: Kill reaches it.
func TestKillReachesSetsidGrandchild(t *testing.T) { eachManager(t, testKillReachesSetsidGrandchild) }

func testKillReachesSetsidGrandchild(t *testing.T, m *Manager) {
	scope := testScope(t)
	g, err := m.Create(scope, "escape", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	startIn(t, g, `setsid sh -c 'sleep 300 & echo $! > `+pidFile+`' </dev/null >/dev/null 2>&1; sleep 300`)
	grandchild := waitPidFile(t, pidFile)
	if !alive(grandchild) {
		t.Fatalf("grandchild %d not running", grandchild)
	}
	n, err := g.Kill(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n < 2 {
		t.Fatalf("killed %d processes, want the shell and the grandchild", n)
	}
	if waitDead(grandchild) {
		t.Fatalf("grandchild %d survived the kill", grandchild)
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(g.Dir()); !os.IsNotExist(err) {
		t.Fatalf("group dir still there: %v", err)
	}
}

// waitDead reports true when pid is still alive after a short wait (it is
// reparented to init, which reaps it asynchronously).
func waitDead(pid int) (stillAlive bool) {
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	return alive(pid)
}

// Limits are written where the controllers are, and Join moves the leader
// and what it forked before the move into the v1 groups.
func TestLimitsAndJoin(t *testing.T) { eachManager(t, testLimitsAndJoin) }

func testLimitsAndJoin(t *testing.T, m *Manager) {
	if err := m.EnableLimits(); err != nil {
		if m.unified {
			t.Skipf("LIMITS NOT TESTED: controllers cannot be delegated here: %v", err)
		}
		t.Fatal(err)
	}
	scope := testScope(t)
	lim := Limits{MemoryBytes: 64 << 20, CPUMilli: 250, Pids: 32}
	g, err := m.Create(scope, "limited", lim)
	if err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	// The child forks before Join, so Join takes the freezing path.
	cmd := startIn(t, g, `sleep 300 & echo $! > `+pidFile+`; wait`)
	child := waitPidFile(t, pidFile)
	if err := g.Join(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	t.Logf("mode %s, paths %v", m.Mode(), g.Paths())
	for _, pid := range []int{cmd.Process.Pid, child} {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
		if err != nil {
			t.Fatal(err)
		}
		for _, dir := range g.Paths()[1:] {
			// dir is <mount>/<path>; the process lists <path>.
			if !strings.Contains(string(data), strings.TrimPrefix(dir, mountOf(t, m, dir))) {
				t.Fatalf("pid %d not in %s:\n%s", pid, dir, data)
			}
		}
	}
	want := map[string]string{}
	if m.unified {
		want["memory.max"] = "67108864"
		want["cpu.max"] = "25000 100000"
		want["pids.max"] = "32"
	} else {
		want["memory.limit_in_bytes"] = "67108864"
		want["cpu.cfs_quota_us"] = "25000"
		want["pids.max"] = "32"
	}
	for file, v := range want {
		found := false
		for _, dir := range g.Paths() {
			data, err := os.ReadFile(filepath.Join(dir, file))
			if err == nil {
				found = true
				if got := strings.TrimSpace(string(data)); got != v {
					t.Fatalf("%s/%s = %q, want %q", dir, file, got, v)
				}
			}
		}
		if !found {
			t.Fatalf("%s not written", file)
		}
	}
	if _, err := g.Kill(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
}

func mountOf(t *testing.T, m *Manager, dir string) string {
	t.Helper()
	mounts, err := readMounts("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	best := ""
	for _, mt := range mounts {
		if strings.HasPrefix(dir, mt.point+"/") && len(mt.point) > len(best) {
			best = mt.point
		}
	}
	return best
}

// Groups finds what a crashed run left, and RemovePaths refuses paths
// outside the sub-tree.
func TestLeftoverGroups(t *testing.T) { eachManager(t, testLeftoverGroups) }

func testLeftoverGroups(t *testing.T, m *Manager) {
	scope := testScope(t)
	g, err := m.Create(scope, "left", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	startIn(t, g, `setsid sh -c 'sleep 300 & echo $! > `+pidFile+`' </dev/null >/dev/null 2>&1; sleep 300`)
	grandchild := waitPidFile(t, pidFile)
	g.Close() // the run "crashes": only the directories are left

	left, err := m.Groups(scope)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].Name != "left" {
		t.Fatalf("leftovers %+v", left)
	}
	if _, err := m.RemovePaths([]string{"/sys/fs/cgroup"}); err == nil {
		t.Fatal("RemovePaths accepted a path outside its sub-tree")
	}
	n, err := m.RemovePaths(left[0].Paths)
	if err != nil {
		t.Fatal(err)
	}
	if n < 2 || waitDead(grandchild) {
		t.Fatalf("killed %d, grandchild alive %v", n, alive(grandchild))
	}
	if left, _ := m.Groups(scope); len(left) != 0 {
		t.Fatalf("groups left after RemovePaths: %+v", left)
	}
	m.RemoveScope(scope)
	if _, err := os.Stat(filepath.Join(m.Base(), scope)); !os.IsNotExist(err) {
		t.Fatalf("scope directory kept: %v", err)
	}
}

func TestParse(t *testing.T) {
	dir := t.TempDir()
	mi := filepath.Join(dir, "mountinfo")
	_ = os.WriteFile(mi, []byte(`31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 /ct /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw
`), 0o600)
	mounts, err := readMounts(mi)
	if err != nil || len(mounts) != 3 {
		t.Fatalf("mounts %+v, %v", mounts, err)
	}
	own := filepath.Join(dir, "cgroup")
	_ = os.WriteFile(own, []byte("8:pids:/ct/a\n4:memory:/x/y\n1:cpu,cpuacct:/\n0::/\n"), 0o600)
	o, err := readOwn(own)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		mount mount
		ctl   string
		want  string
	}{
		{mounts[0], "memory", "/sys/fs/cgroup/memory/x/y"},
		{mounts[1], "pids", "/sys/fs/cgroup/pids/a"},
		{mounts[2], "", "/sys/fs/cgroup/unified"},
	}
	for _, c := range cases {
		if got := c.mount.under(o[c.ctl]); got != c.want {
			t.Errorf("%s: %s, want %s", c.ctl, got, c.want)
		}
	}
	if o["cpuacct"] != "/" || !mounts[0].has("memory") {
		t.Fatalf("own %v", o)
	}
}

func TestLimitsString(t *testing.T) {
	for _, c := range []struct {
		l    Limits
		want string
	}{
		{Limits{}, ""},
		{Limits{MemoryBytes: 32 << 20, CPUMilli: 100, Pids: 64}, "mem=32MiB cpu=100m pids=64"},
		{Limits{CPUMilli: 1}, "cpu=1m"},
	} {
		if got := c.l.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.l, got, c.want)
		}
	}
	if cpuQuota(1) != 1000 || cpuQuota(1500) != 150000 {
		t.Fatal("cpu quota")
	}
}
