//go:build linux

package agent

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"unsafe"

	"github.com/mycelium-mesh/mesh/core/cgroup"
)

// deathSignal is delivered to a workload when the thread that started it
// dies, so that workloads do not outlive a mesh killed with SIGKILL. The Go
// runtime only ends threads of goroutines that exit while locked to their
// thread, which this package never does.
var deathSignal = syscall.SIGKILL

func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: deathSignal}
}

// procAttr is sysProcAttr with the child cloned straight into g
// (clone3 with CLONE_INTO_CGROUP), so it never runs outside its group.
func procAttr(g *cgroup.Group) *syscall.SysProcAttr {
	attr := sysProcAttr()
	if g != nil && g.FD() >= 0 {
		attr.UseCgroupFD = true
		attr.CgroupFD = g.FD()
	}
	return attr
}

// procStat holds the fields of /proc/<pid>/stat this package uses.
type procStat struct {
	State     byte
	PGID      int
	StartTime uint64 // clock ticks after boot (field 22)
}

// readProcStat parses /proc/<pid>/stat. The command name (field 2) may hold
// spaces and parentheses, so parsing starts after its last ')'.
func readProcStat(pid int) (procStat, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: no command field", pid)
	}
	fields := bytes.Fields(data[i+1:])
	// fields[0] is field 3 (state); field n is fields[n-3].
	if len(fields) < 20 {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(fields)+2)
	}
	pgid, err := strconv.Atoi(string(fields[5-3]))
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat pgrp: %w", pid, err)
	}
	start, err := strconv.ParseUint(string(fields[22-3]), 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat starttime: %w", pid, err)
	}
	return procStat{State: fields[0][0], PGID: pgid, StartTime: start}, nil
}

// waitExited blocks until the child pid has exited without reaping it
// (waitid with WNOWAIT), so the caller can still act on its process group
// before reaping. It reports false when the wait failed, in which case
// nothing is known about the child.
func waitExited(pid int) bool {
	if exited, done := waitExitedPolled(pid); done {
		return exited
	}
	const (
		pPID    = 1          // P_PID
		wExited = 0x4        // WEXITED
		wNoWait = 0x01000000 // WNOWAIT
	)
	var info [128]byte // siginfo_t
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info[0])), wExited|wNoWait, 0, 0)
		switch errno {
		case 0:
			return true
		case syscall.EINTR:
			continue
		default:
			return false
		}
	}
}

// outliveAgent drops the death signal from attr: a workload an agent may
// adopt after a restart must survive the agent.
func outliveAgent(attr *syscall.SysProcAttr) { attr.Pdeathsig = 0 }
