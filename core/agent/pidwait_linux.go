//go:build linux

package agent

import (
	"errors"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// waitExitedPolled waits for the child pid to exit without reaping it and
// without holding an OS thread: a pidfd becomes readable when its process
// exits, and a non-blocking pidfd in an os.File is waited on by the Go
// netpoller like a socket. (os.Process itself waits on its pidfd with a
// blocking waitid, one thread per waiting child.) done is false when the
// kernel offers no non-blocking pidfd (before Linux 5.10) or the poller
// refuses it; the caller then waits the blocking way. With done, exited
// reports whether the child was seen exited.
// polledWaits counts the waits in waitExitedPolled that have found their
// child running and gone to the poller.
var polledWaits atomic.Int64

func waitExitedPolled(pid int) (exited, done bool) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return false, false
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return false, false
	}
	var waitErr error
	parked := false
	defer func() {
		if parked {
			polledWaits.Add(-1)
		}
	}()
	err = rc.Read(func(fd uintptr) bool {
		// Readable means exited; check without reaping, and go back to
		// the poller if the child is still running.
		var info unix.Siginfo
		waitErr = unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOWAIT|unix.WNOHANG, nil)
		if errors.Is(waitErr, unix.EINTR) {
			return false
		}
		if waitErr != nil || info.Signo != 0 {
			return true
		}
		if !parked {
			parked = true
			polledWaits.Add(1)
		}
		return false
	})
	if err != nil {
		// Not pollable here: nothing was waited for.
		return false, false
	}
	return waitErr == nil, true
}
