package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/mycelium-mesh/mesh/core/cgroup"
	"github.com/mycelium-mesh/mesh/core/spore"
)

// Containment names how the agent holds on to a workload's processes, as
// Agent.Containment and InstanceStatus.Containment report it.
const (
	ContainCgroup       = "cgroup"        // every process, setsid or not, in the instance's cgroup
	ContainProcessGroup = "process-group" // the workload's process group only
)

// DefaultMaxPids is the pids limit of an instance when nutrients are
// enforced and Options.MaxPids is zero.
const DefaultMaxPids = 4096

// setupContainment picks cgroups when the kernel allows and process groups
// otherwise, and prepares the limits when enforcement is on. Enforcement
// asked for on a machine that cannot enforce is an error: an operator who
// turned it on must not get unlimited workloads silently.
func (a *Agent) setupContainment() error {
	a.contain = ContainProcessGroup
	if a.opts.NoCgroups {
		if a.opts.EnforceNutrients {
			return errors.New("enforce nutrients: cgroups are turned off")
		}
		a.log.Warn("cgroups turned off: workloads are contained by process group only, and a workload that calls setsid can outlive its instance")
		return nil
	}
	detect := cgroup.Detect
	if a.opts.forceV1 {
		detect = cgroup.DetectV1
	}
	m, err := detect()
	if err == nil && m.JoinAtStart() && len(a.opts.ShimCommand) == 0 {
		err = errors.New("cgroups are v1 only here and no shim command is set to join them")
	}
	if err != nil {
		if a.opts.EnforceNutrients {
			return fmt.Errorf("enforce nutrients: %w", err)
		}
		a.log.Warn("cgroups unavailable: workloads are contained by process group only, and a workload that calls setsid can outlive its instance", "reason", err)
		return nil
	}
	if a.opts.EnforceNutrients {
		if err := m.EnableLimits(); err != nil {
			return fmt.Errorf("enforce nutrients: %w", err)
		}
	}
	a.cg = m
	a.contain = ContainCgroup
	a.log.Info("workloads contained in cgroups", "mode", m.Mode(), "base", m.Base(), "enforce_nutrients", a.opts.EnforceNutrients)
	return nil
}

// Containment reports how this agent contains workloads; it is set by Start.
func (a *Agent) Containment() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.contain
}

// cgroupScope names this node's sub-tree of instance groups: the node ID
// and a digest of the node directory, so that two meshes on one machine
// never take each other's groups for leftovers, and a restart of the same
// mesh finds its own.
func (a *Agent) cgroupScope() string {
	sum := sha256.Sum256([]byte(a.nodeDir))
	return a.opts.NodeID + "-" + hex.EncodeToString(sum[:6])
}

// limitsFor turns a manifest's nutrients into the limits of its instance;
// none when enforcement is off.
func (a *Agent) limitsFor(m spore.Manifest) cgroup.Limits {
	if !a.opts.EnforceNutrients {
		return cgroup.Limits{}
	}
	pids := a.opts.MaxPids
	if pids == 0 {
		pids = DefaultMaxPids
	}
	n := m.Resources.Nutrients
	return cgroup.Limits{MemoryBytes: int64(n.MemoryMB) << 20, CPUMilli: n.CPUMilli, Pids: pids}
}

// newGroup creates the cgroup of an instance, or returns nil when the
// agent contains by process group.
func (i *instance) newGroup(m spore.Manifest) (*cgroup.Group, error) {
	a := i.a
	if a.cg == nil {
		return nil, nil
	}
	g, err := a.cg.Create(a.cgroupScope(), i.id, a.limitsFor(m))
	if err != nil {
		return nil, fmt.Errorf("create cgroup: %w", err)
	}
	return g, nil
}

// clearLeftoverGroups kills and removes the cgroups of this node's scope
// that no record accounted for: a crash between creating a group and
// writing the record, or records lost with the disk. The groups of adopted
// instances (keep, by instance ID) stay.
func (a *Agent) clearLeftoverGroups(keep map[string]bool) {
	if a.cg == nil {
		return
	}
	left, err := a.cg.Groups(a.cgroupScope())
	if err != nil {
		a.log.Warn("list leftover cgroups", "error", err)
		return
	}
	for _, l := range left {
		if keep[l.Name] {
			continue
		}
		n, err := a.cg.RemovePaths(l.Paths)
		if err != nil {
			a.log.Warn("remove leftover cgroup", "instance", l.Name, "error", err)
		}
		if n > 0 {
			a.log.Warn("killed leftover processes of a previous run", "instance", l.Name, "cgroup", l.Paths[0], "count", n)
		}
	}
}
