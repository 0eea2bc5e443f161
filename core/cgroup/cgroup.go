// Package cgroup contains workload processes in Linux control groups, so
// that every process a workload starts can be found and killed, and so that
// the workload's declared resources can be enforced by the kernel.
//
// # Tracking
//
// A process group is not a container: a workload that calls setsid(2) and
// forks twice leaves its group, and nothing tied to the group reaches it.
// A cgroup is inherited by every child at fork and cannot be left by an
// unprivileged process, so this package tracks each workload instance in a
// cgroup of its own on the cgroup2 hierarchy: on a unified (pure v2) system
// that is /sys/fs/cgroup, on a hybrid system (v1 controllers and an empty
// cgroup2 mount, usually /sys/fs/cgroup/unified) it is that cgroup2 mount.
// Tracking needs no controller, so the empty hierarchy of a hybrid system is
// enough.
//
// The child is created inside its group: Group.FD is passed to
// SysProcAttr.CgroupFD, and clone3(CLONE_INTO_CGROUP) places the new process
// in the group before it runs a single instruction. There is no window in
// which it could fork a child outside the group, which writing its pid to
// cgroup.procs after the start would leave open.
//
// Killing a group writes cgroup.kill (Linux 5.14 and later), which SIGKILLs
// every process in it atomically, including the ones forking at that moment.
// On older kernels the group is frozen (cgroup.freeze), every pid listed in
// cgroup.procs gets SIGKILL, and the group is thawed, until it is empty.
//
// Groups live under the cgroup of the process that creates them, in a
// sub-tree named "mesh/<scope>/<name>", never at the root of a hierarchy: a
// mesh run inside a service or a container cgroup stays inside it. The scope
// names the owner (an agent node), so a later run finds the groups a crashed
// run left behind with Manager.Groups and kills them.
//
// # Limits
//
// Limits (memory, CPU quota, number of processes) are written where the
// controllers are: in the instance's own group on a unified hierarchy whose
// controllers can be delegated to the sub-tree, or in one group per v1
// hierarchy (memory, cpu, pids), created under this process's own path in
// each. A v1 group cannot be joined at clone time, so Group.Join moves the
// workload in after the start: it moves the leader and then checks the
// tracking group, which holds every process of the workload since birth; if
// anything forked before the leader was moved, the tracking group is frozen,
// every process in it is moved, and the group is thawed. Processes forked
// after the leader moved inherit its v1 groups. Nothing escapes the limits.
//
// # Machines without cgroup2
//
// With no writable cgroup2 hierarchy, Detect tracks in the v1 freezer
// hierarchy instead (Mode "v1"). There is no clone into a v1 cgroup, and a
// pid written to cgroup.procs after the start leaves a window in which the
// child can fork outside the group. So on v1 the child joins by itself
// before it runs any workload code: the caller starts a small shim
// (Manager.JoinAtStart, Group.JoinPaths) that writes "0" into each group's
// cgroup.procs with JoinSelf and then execs the workload; by the time the
// workload's first instruction runs it is in all its groups, and so is
// everything it forks. Killing freezes the freezer group, SIGKILLs every
// pid in it and thaws it, until it is empty.
//
// Where neither works (no cgroups, not root, a read-only /sys/fs/cgroup),
// Detect fails with ErrUnavailable and the caller falls back to process
// groups.
package cgroup

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnavailable is returned by Detect when no writable cgroup2 hierarchy
// can hold the tracking groups.
var ErrUnavailable = errors.New("no usable cgroup2 hierarchy")

// Limits are the resources enforced on one group. Zero fields set no limit.
type Limits struct {
	MemoryBytes int64 // memory.max / memory.limit_in_bytes
	CPUMilli    int   // thousandths of a CPU: the CFS quota per period
	Pids        int   // pids.max
}

// IsZero reports whether l sets no limit at all.
func (l Limits) IsZero() bool { return l == Limits{} }

// String describes the limits as status shows them, e.g.
// "mem=64MiB cpu=500m pids=512"; "" when none is set.
func (l Limits) String() string {
	var parts []string
	if l.MemoryBytes > 0 {
		parts = append(parts, fmt.Sprintf("mem=%dMiB", l.MemoryBytes>>20))
	}
	if l.CPUMilli > 0 {
		parts = append(parts, fmt.Sprintf("cpu=%dm", l.CPUMilli))
	}
	if l.Pids > 0 {
		parts = append(parts, fmt.Sprintf("pids=%d", l.Pids))
	}
	return strings.Join(parts, " ")
}

// cfsPeriod is the CFS period the CPU quota is expressed against, in µs.
const cfsPeriod = 100000

// cpuQuota turns thousandths of a CPU into a CFS quota per cfsPeriod. The
// kernel refuses quotas under 1ms.
func cpuQuota(milli int) int {
	return max(milli*cfsPeriod/1000, 1000)
}
