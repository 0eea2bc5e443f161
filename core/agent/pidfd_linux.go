//go:build linux

package agent

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// pidHandle is a pidfd of a process this agent did not start (an adopted
// workload, whose parent died): it names that one process for as long as it
// is open, whatever happens to the pid. Such a process cannot be waited
// for (wait4 and waitid answer only its parent), but its pidfd becomes
// readable when it exits.
type pidHandle struct{ f *os.File }

// openPid opens a pidfd for pid. Check afterwards that the pid is still the
// expected process (start time): from then on the handle cannot drift to a
// process that reuses the pid.
func openPid(pid int) (*pidHandle, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if errors.Is(err, unix.EINVAL) {
		fd, err = unix.PidfdOpen(pid, 0) // before Linux 5.10: no PIDFD_NONBLOCK
	}
	if err != nil {
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	return &pidHandle{f: os.NewFile(uintptr(fd), "pidfd")}, nil
}

// exited reports whether the process has exited, without blocking.
func (h *pidHandle) exited() bool {
	rc, err := h.f.SyscallConn()
	if err != nil {
		return true
	}
	var ready bool
	_ = rc.Control(func(fd uintptr) { ready = pidfdReadable(int(fd), 0) })
	return ready
}

func pidfdReadable(fd int, timeoutMs int) bool {
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, timeoutMs)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err != nil || (n > 0 && fds[0].Revents != 0)
	}
}

// wait blocks until the process exits: on the Go poller when the pidfd is
// non-blocking, else on a thread of its own.
func (h *pidHandle) wait() {
	rc, err := h.f.SyscallConn()
	if err != nil {
		return
	}
	err = rc.Read(func(fd uintptr) bool { return pidfdReadable(int(fd), 0) })
	if err == nil {
		return
	}
	// Not pollable here (a blocking pidfd): wait in a blocking poll.
	_ = rc.Control(func(fd uintptr) { pidfdReadable(int(fd), -1) })
}

// signal sends sig to the process, never to another one that took its pid.
func (h *pidHandle) signal(sig unix.Signal) error {
	rc, err := h.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.PidfdSendSignal(int(fd), sig, nil, 0) }); err != nil {
		return err
	}
	if errors.Is(serr, unix.ESRCH) {
		return nil
	}
	return serr
}

func (h *pidHandle) close() { _ = h.f.Close() }
