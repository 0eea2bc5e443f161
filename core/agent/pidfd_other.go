//go:build unix && !linux

package agent

import (
	"errors"

	"golang.org/x/sys/unix"
)

// pidHandle is only implemented on Linux: elsewhere workloads are never
// adopted.
type pidHandle struct{}

func openPid(int) (*pidHandle, error)         { return nil, errors.New("pidfd: only on linux") }
func (h *pidHandle) exited() bool             { return true }
func (h *pidHandle) wait()                    {}
func (h *pidHandle) signal(unix.Signal) error { return nil }
func (h *pidHandle) close()                   {}
