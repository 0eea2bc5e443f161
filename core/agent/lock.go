package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ErrNodeInUse is returned by Start when another agent (in this process or
// another) already runs the same node on the same run directory. Two agents
// sharing a node directory would stop each other's workloads as leftovers.
var ErrNodeInUse = errors.New("node directory in use by another agent")

// lockNode takes an exclusive lock on the node directory for the life of the
// returned file.
func lockNode(nodeDir string) (*os.File, error) {
	path := filepath.Join(nodeDir, "agent.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", path, ErrNodeInUse)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}
