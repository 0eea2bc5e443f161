//go:build linux

package cgroup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// v1Controllers are the v1 hierarchies limits are written to.
var v1Controllers = []string{"memory", "cpu", "pids"}

// Manager creates and finds the groups of this process's sub-tree.
type Manager struct {
	// base is the tracking sub-tree, <cgroup2 mount><own path>/mesh.
	base string
	// unified is true on a pure v2 system: limits go into the tracking
	// group itself.
	unified bool
	// v1Track is set when the tracking groups are in the v1 freezer
	// hierarchy (no cgroup2 hierarchy to use): children cannot be cloned
	// into them and must join them themselves before exec (JoinPaths).
	v1Track bool
	// v1 maps each v1 controller found to <its mount><own path>/mesh.
	v1 map[string]string
	// v2Limits is set once the memory, cpu and pids controllers were
	// delegated to base (pure v2 only); v2Err says why not.
	v2Limits bool
	v2Err    error
}

// Detect finds the cgroup2 hierarchy and, on hybrid systems, the v1
// controller hierarchies, from /proc/self/mountinfo and /proc/self/cgroup,
// and makes sure the "mesh" sub-tree under this process's own cgroup can be
// created. It fails with ErrUnavailable (wrapped with the reason) when
// there is no writable cgroup2 hierarchy.
func Detect() (*Manager, error) {
	m, err := detect(false)
	if err == nil {
		return m, nil
	}
	if m1, err1 := detect(true); err1 == nil {
		return m1, nil
	}
	return nil, err
}

// DetectV1 is Detect restricted to the v1 hierarchies: tracking groups in
// the v1 freezer hierarchy, as on a machine with no cgroup2 mount. It is
// what Detect falls back to, and lets a hybrid machine exercise that path.
func DetectV1() (*Manager, error) { return detect(true) }

func detect(v1Only bool) (*Manager, error) {
	mounts, err := readMounts("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	own, err := readOwn("/proc/self/cgroup")
	if err != nil && !v1Only {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	m := &Manager{v1: map[string]string{}}
	for _, c := range v1Controllers {
		for _, mt := range mounts {
			if mt.fstype == "cgroup" && mt.has(c) {
				m.v1[c] = filepath.Join(mt.under(own[c]), "mesh")
				break
			}
		}
	}
	if v1Only {
		for _, mt := range mounts {
			if mt.fstype == "cgroup" && mt.has("freezer") {
				m.base = filepath.Join(mt.under(own["freezer"]), "mesh")
				m.v1Track = true
				break
			}
		}
		if m.base == "" {
			return nil, fmt.Errorf("%w: no cgroup2 mount and no v1 freezer hierarchy", ErrUnavailable)
		}
	} else {
		var v2 *mount
		for k := range mounts {
			if mounts[k].fstype == "cgroup2" {
				v2 = &mounts[k]
				break
			}
		}
		if v2 == nil {
			return nil, fmt.Errorf("%w: no cgroup2 mount", ErrUnavailable)
		}
		m.base = filepath.Join(v2.under(own[""]), "mesh")
		m.unified = len(m.v1) == 0
	}
	if err := os.MkdirAll(m.base, 0o755); err != nil {
		return nil, fmt.Errorf("%w: create %s: %v", ErrUnavailable, m.base, err)
	}
	if _, err := os.Stat(filepath.Join(m.base, "cgroup.procs")); err != nil {
		return nil, fmt.Errorf("%w: %s is not a cgroup: %v", ErrUnavailable, m.base, err)
	}
	return m, nil
}

// Mode names the hierarchy in use: "cgroup2" on a unified system,
// "cgroup2+v1" on a hybrid one (tracking on cgroup2, limits on v1), "v1"
// without a usable cgroup2 hierarchy (tracking on the v1 freezer).
func (m *Manager) Mode() string {
	switch {
	case m.v1Track:
		return "v1"
	case m.unified:
		return "cgroup2"
	}
	return "cgroup2+v1"
}

// JoinAtStart reports whether a child must join its groups itself before
// it runs the workload (Group.JoinPaths): true when tracking is on v1,
// where there is no clone into a cgroup.
func (m *Manager) JoinAtStart() bool { return m.v1Track }

// Base is the directory of the tracking sub-tree.
func (m *Manager) Base() string { return m.base }

// EnableLimits prepares the hierarchies for Limits and reports what cannot
// be enforced. On a pure v2 system it delegates the memory, cpu and pids
// controllers from this process's cgroup down to the sub-tree, which the
// kernel refuses while the own cgroup holds processes and is not the root
// (run the mesh in a cgroup of its own, e.g. a systemd service with
// Delegate=yes and the mesh in a leaf). On a hybrid system it checks that
// the v1 hierarchies are there.
func (m *Manager) EnableLimits() error {
	if !m.unified {
		var missing []string
		for _, c := range v1Controllers {
			dir, ok := m.v1[c]
			if !ok {
				missing = append(missing, c)
				continue
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("create %s: %w", dir, err)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("no v1 hierarchy for %s", strings.Join(missing, ", "))
		}
		return nil
	}
	if m.v2Limits {
		return nil
	}
	// Delegate from the own cgroup (base's parent) into base, then from
	// base into the instance groups.
	for _, dir := range []string{filepath.Dir(m.base), m.base} {
		p := filepath.Join(dir, "cgroup.subtree_control")
		if err := os.WriteFile(p, []byte("+memory +cpu +pids"), 0); err != nil {
			m.v2Err = fmt.Errorf("delegate controllers in %s: %w", p, err)
			return m.v2Err
		}
	}
	m.v2Limits = true
	return nil
}

// mount is one cgroup line of mountinfo.
type mount struct {
	root, point, fstype string
	opts                []string // super options: the v1 controllers
}

func (mt mount) has(controller string) bool {
	for _, o := range mt.opts {
		if o == controller {
			return true
		}
	}
	return false
}

// under maps a cgroup path of /proc/self/cgroup to a directory of this
// mount; the mount may show only a sub-tree (its root), as in a container.
func (mt mount) under(own string) string {
	rel := own
	if mt.root != "/" {
		rel = strings.TrimPrefix(own, mt.root)
	}
	return filepath.Join(mt.point, filepath.FromSlash(rel))
}

// readMounts lists the cgroup and cgroup2 mounts of mountinfo.
func readMounts(path string) ([]mount, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var out []mount
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// id parent major:minor root point opts [optional...] - fstype source superopts
		line := sc.Text()
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 || (g[0] != "cgroup" && g[0] != "cgroup2") {
			continue
		}
		out = append(out, mount{root: unescape(f[3]), point: unescape(f[4]), fstype: g[0], opts: strings.Split(g[2], ",")})
	}
	return out, sc.Err()
}

// unescape undoes mountinfo's octal escapes of space, tab, newline and \.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

// readOwn parses /proc/self/cgroup into controller → path; the cgroup2
// path is under "".
func readOwn(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	own := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			own[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			own[c] = parts[2]
		}
	}
	if _, ok := own[""]; !ok {
		return nil, errors.New("no cgroup2 entry in " + path)
	}
	return own, nil
}
