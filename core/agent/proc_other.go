//go:build unix && !linux

package agent

import (
	"errors"
	"syscall"

	"github.com/mycelium-mesh/mesh/core/cgroup"
)

// procAttr ignores g: there are no cgroups here.
func procAttr(g *cgroup.Group) *syscall.SysProcAttr { return sysProcAttr() }

func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

type procStat struct {
	State     byte
	PGID      int
	StartTime uint64
}

// readProcStat is only implemented on Linux; elsewhere leftovers of a
// previous run cannot be identified safely and are left alone.
func readProcStat(pid int) (procStat, error) {
	return procStat{}, errors.New("process start times are only read on linux")
}

// waitExited cannot wait without reaping here; the group of an exited
// workload is then not killed, since its id may already be reused.
func waitExited(pid int) bool { return false }

// outliveAgent does nothing: there is no death signal here.
func outliveAgent(*syscall.SysProcAttr) {}
