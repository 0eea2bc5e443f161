//go:build !linux

package pluginhost

import (
	"fmt"
	"os"
)

// pinSelfExe returns the path bundled plugins are executed from. Without
// /proc the binary cannot be pinned: a replaced file is what a restart runs.
func pinSelfExe(selfExe string) (string, *os.File, error) {
	if selfExe != "" {
		return selfExe, nil, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", nil, fmt.Errorf("pluginhost: find own executable: %w", err)
	}
	return exe, nil, nil
}
