//go:build linux

package cgroup

import (
	"fmt"
	"path/filepath"
	"slices"
)

// Open returns the existing group whose directories are paths (as
// Group.Paths listed them, tracking group first), so that a later run can
// watch, kill and remove the group of a workload it did not create.
// Directories that are not groups of this manager's sub-trees are refused.
// The group's limits are not read back: Limits reports none.
func (m *Manager) Open(paths []string) (*Group, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("cgroup: open: no paths")
	}
	for _, p := range paths {
		if !m.owns(p) {
			return nil, fmt.Errorf("cgroup: open %s: not under %s", p, m.base)
		}
		if !exists(p) {
			return nil, fmt.Errorf("cgroup: open %s: no such group", p)
		}
	}
	g := &Group{dir: filepath.Clean(paths[0]), v1Track: m.v1Track}
	for _, p := range paths[1:] {
		for _, c := range v1Controllers {
			base, ok := m.v1[c]
			if rel, err := filepath.Rel(base, p); ok && err == nil && rel != "." && !filepath.IsAbs(rel) && rel[0] != '.' {
				if g.v1 == nil {
					g.v1 = map[string]string{}
				}
				g.v1[c] = filepath.Clean(p)
			}
		}
	}
	return g, nil
}

// Holds reports whether pid is in the group's tracking group now.
func (g *Group) Holds(pid int) bool {
	procs, err := g.Procs()
	return err == nil && slices.Contains(procs, pid)
}
