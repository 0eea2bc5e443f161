//go:build linux

package cgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Group is the cgroup of one workload instance: a tracking group on the
// cgroup2 hierarchy and, on hybrid systems with limits, one group per v1
// controller.
type Group struct {
	v1Track bool
	dir     string            // tracking group
	v1      map[string]string // controller → limit group (hybrid, limits set)
	limits  Limits
	fd      *os.File // open tracking group, for CLONE_INTO_CGROUP
}

// validName accepts the scope and group names this package creates.
func validName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00")
}

// Create makes the group scope/name (removing a stale one of that name
// first) and writes lim into it. A limit that cannot be written fails the
// creation, so an instance never runs unlimited when limits were asked for;
// call EnableLimits once before creating groups with limits.
func (m *Manager) Create(scope, name string, lim Limits) (*Group, error) {
	if !validName(scope) || !validName(name) {
		return nil, fmt.Errorf("cgroup: invalid name %q/%q", scope, name)
	}
	g := &Group{dir: filepath.Join(m.base, scope, name), limits: lim, v1Track: m.v1Track}
	if err := os.MkdirAll(g.dir, 0o755); err != nil {
		return nil, fmt.Errorf("create cgroup %s: %w", g.dir, err)
	}
	fail := func(err error) (*Group, error) {
		_ = g.Remove()
		return nil, err
	}
	if !lim.IsZero() {
		if m.unified {
			if !m.v2Limits {
				err := m.v2Err
				if err == nil {
					err = errors.New("EnableLimits was not called")
				}
				return fail(fmt.Errorf("limits for %s: %w", g.dir, err))
			}
			if err := writeV2Limits(g.dir, lim); err != nil {
				return fail(err)
			}
		} else {
			g.v1 = map[string]string{}
			for _, c := range v1Controllers {
				base, ok := m.v1[c]
				if !ok || !lim.uses(c) {
					continue
				}
				dir := filepath.Join(base, scope, name)
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return fail(fmt.Errorf("create cgroup %s: %w", dir, err))
				}
				g.v1[c] = dir
				if err := writeV1Limit(c, dir, lim); err != nil {
					return fail(err)
				}
			}
		}
	}
	if m.v1Track {
		return g, nil // joined by the child itself: no descriptor to clone into
	}
	f, err := os.Open(g.dir)
	if err != nil {
		return fail(fmt.Errorf("open cgroup %s: %w", g.dir, err))
	}
	g.fd = f
	return g, nil
}

// JoinPaths lists the cgroup.procs files a child must write "0" into
// before it execs the workload, when the manager tracks on v1
// (Manager.JoinAtStart); nil otherwise.
func (g *Group) JoinPaths() []string {
	if !g.v1Track {
		return nil
	}
	var out []string
	for _, d := range g.Paths() {
		out = append(out, filepath.Join(d, "cgroup.procs"))
	}
	return out
}

// JoinSelf moves the calling process into the cgroups of paths (as
// JoinPaths listed them). It is what a child runs before exec on v1.
func JoinSelf(paths []string) error {
	for _, p := range paths {
		if filepath.Base(p) != "cgroup.procs" {
			return fmt.Errorf("cgroup: %s is not a cgroup.procs file", p)
		}
		if err := writeFile(p, "0"); err != nil {
			return err
		}
	}
	return nil
}

func (l Limits) uses(controller string) bool {
	switch controller {
	case "memory":
		return l.MemoryBytes > 0
	case "cpu":
		return l.CPUMilli > 0
	case "pids":
		return l.Pids > 0
	}
	return false
}

func writeV2Limits(dir string, l Limits) error {
	var files [][2]string
	if l.MemoryBytes > 0 {
		files = append(files, [2]string{"memory.max", strconv.FormatInt(l.MemoryBytes, 10)})
	}
	if l.CPUMilli > 0 {
		files = append(files, [2]string{"cpu.max", fmt.Sprintf("%d %d", cpuQuota(l.CPUMilli), cfsPeriod)})
	}
	if l.Pids > 0 {
		files = append(files, [2]string{"pids.max", strconv.Itoa(l.Pids)})
	}
	for _, f := range files {
		if err := writeFile(filepath.Join(dir, f[0]), f[1]); err != nil {
			return err
		}
	}
	return nil
}

func writeV1Limit(controller, dir string, l Limits) error {
	switch controller {
	case "memory":
		return writeFile(filepath.Join(dir, "memory.limit_in_bytes"), strconv.FormatInt(l.MemoryBytes, 10))
	case "cpu":
		if err := writeFile(filepath.Join(dir, "cpu.cfs_period_us"), strconv.Itoa(cfsPeriod)); err != nil {
			return err
		}
		return writeFile(filepath.Join(dir, "cpu.cfs_quota_us"), strconv.Itoa(cpuQuota(l.CPUMilli)))
	case "pids":
		return writeFile(filepath.Join(dir, "pids.max"), strconv.Itoa(l.Pids))
	}
	return nil
}

func writeFile(path, value string) error {
	if err := os.WriteFile(path, []byte(value), 0); err != nil {
		return fmt.Errorf("write %q to %s: %w", value, path, err)
	}
	return nil
}

// FD is the open tracking group, for syscall.SysProcAttr.CgroupFD with
// UseCgroupFD set; -1 when the child joins by itself (JoinPaths). It is
// valid until Close or Remove.
func (g *Group) FD() int {
	if g.fd == nil {
		return -1
	}
	return int(g.fd.Fd())
}

// Close releases the descriptor of the group; the group itself stays.
func (g *Group) Close() {
	if g.fd != nil {
		_ = g.fd.Close()
		g.fd = nil
	}
}

// Dir is the tracking group's directory.
func (g *Group) Dir() string { return g.dir }

// Paths lists every directory of the group (tracking first), as
// instance records keep them for Open.
func (g *Group) Paths() []string {
	out := []string{g.dir}
	for _, c := range v1Controllers {
		if d, ok := g.v1[c]; ok {
			out = append(out, d)
		}
	}
	return out
}

// Limits are the limits written into the group.
func (g *Group) Limits() Limits { return g.limits }

// Join moves the process pid, which was started into the tracking group,
// and everything it forked into the v1 limit groups. It does nothing when
// there are none.
func (g *Group) Join(pid int) error {
	if g.v1Track {
		// The child joins by itself before it execs the workload (and
		// exits, with the reason on stderr, when it cannot): nothing of the
		// workload runs outside the groups, so there is nothing to move.
		return nil
	}
	if len(g.v1) == 0 {
		return nil
	}
	moved := map[int]bool{}
	if err := g.moveV1(pid); err != nil {
		return err
	}
	moved[pid] = true
	// Everything the workload forked is in the tracking group since birth;
	// anything forked from now on by the leader inherits its v1 groups.
	procs, err := g.Procs()
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(procs, func(p int) bool { return !moved[p] }) {
		return nil
	}
	// Something forked before the leader moved: freeze, move all, thaw.
	if err := g.freeze(true); err != nil {
		return err
	}
	defer func() { _ = g.freeze(false) }()
	if procs, err = g.Procs(); err != nil {
		return err
	}
	for _, p := range procs {
		if !moved[p] {
			if err := g.moveV1(p); err != nil && !errors.Is(err, syscall.ESRCH) {
				return err
			}
		}
	}
	return nil
}

func (g *Group) moveV1(pid int) error {
	for _, c := range v1Controllers {
		if d, ok := g.v1[c]; ok {
			if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
				return fmt.Errorf("move pid %d into %s: %w", pid, d, err)
			}
		}
	}
	return nil
}

// Procs lists the processes in the tracking group.
func (g *Group) Procs() ([]int, error) { return readProcs(g.dir) }

func readProcs(dir string) ([]int, error) {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, fmt.Errorf("read %s/cgroup.procs: %w", dir, err)
	}
	var out []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			out = append(out, pid)
		}
	}
	return out, nil
}

// Remove kills what is left in the group and removes all its directories.
func (g *Group) Remove() error {
	g.Close()
	return removeDirs(g.Paths())
}

func removeDirs(dirs []string) error {
	var errs []error
	for _, d := range dirs {
		if _, err := killDir(context.Background(), d); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		// A group whose last process just died can report busy for a
		// moment; retry briefly.
		err := poll(context.Background(), 2*time.Second, func() (bool, error) {
			err := syscall.Rmdir(d)
			if err == nil || errors.Is(err, syscall.ENOENT) {
				return true, nil
			}
			if errors.Is(err, syscall.EBUSY) {
				return false, nil
			}
			return false, err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// Leftover is a group found on disk: one left by an earlier run.
type Leftover struct {
	Name  string
	Paths []string
}

// Groups lists the groups of scope that exist now, in every hierarchy.
func (m *Manager) Groups(scope string) ([]Leftover, error) {
	if !validName(scope) {
		return nil, fmt.Errorf("cgroup: invalid scope %q", scope)
	}
	byName := map[string][]string{}
	var names []string
	add := func(base string) error {
		entries, err := os.ReadDir(filepath.Join(base, scope))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("list cgroups: %w", err)
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			if byName[e.Name()] == nil {
				names = append(names, e.Name())
			}
			byName[e.Name()] = append(byName[e.Name()], filepath.Join(base, scope, e.Name()))
		}
		return nil
	}
	if err := add(m.base); err != nil {
		return nil, err
	}
	for _, c := range v1Controllers {
		if d, ok := m.v1[c]; ok {
			if err := add(d); err != nil {
				return nil, err
			}
		}
	}
	out := make([]Leftover, 0, len(names))
	for _, n := range names {
		out = append(out, Leftover{Name: n, Paths: byName[n]})
	}
	return out, nil
}

// RemoveScope removes the (empty) scope directories, once their owner
// stopped; a scope still holding groups stays.
func (m *Manager) RemoveScope(scope string) {
	if !validName(scope) {
		return
	}
	dirs := []string{filepath.Join(m.base, scope)}
	for _, c := range v1Controllers {
		if d, ok := m.v1[c]; ok {
			dirs = append(dirs, filepath.Join(d, scope))
		}
	}
	for _, d := range dirs {
		_ = syscall.Rmdir(d) // busy or not empty: still in use
	}
}

// RemovePaths kills every process in the given group directories (as
// Paths listed them) and removes the directories. Directories that are not
// under this manager's sub-trees are refused, so a damaged record can never
// make it kill an unrelated cgroup.
func (m *Manager) RemovePaths(paths []string) (killed int, err error) {
	for _, p := range paths {
		if !m.owns(p) {
			return 0, fmt.Errorf("cgroup %s is not under %s", p, m.base)
		}
	}
	for _, p := range paths {
		if n, err := killDir(context.Background(), p); err == nil {
			killed = max(killed, n)
		}
	}
	return killed, removeDirs(paths)
}

func (m *Manager) owns(p string) bool {
	p = filepath.Clean(p)
	bases := []string{m.base}
	for _, c := range v1Controllers {
		if d, ok := m.v1[c]; ok {
			bases = append(bases, d)
		}
	}
	for _, b := range bases {
		if rel, err := filepath.Rel(b, p); err == nil && rel != "." && !strings.HasPrefix(rel, "..") && strings.Count(rel, "/") == 1 {
			return true
		}
	}
	return false
}
