//go:build linux

package pluginhost

import (
	"fmt"
	"os"
	"strconv"
)

// pinSelfExe returns the path bundled plugins are executed from, such that
// replacing the mesh binary on disk (an upgrade) never changes the code of a
// plugin restarted under a running mesh. The running binary itself is
// reached through /proc/self/exe, which in the forked child still names the
// parent's executable, whatever now lies at its path. Any other file is
// opened once, here, and executed through /proc/<pid>/fd/<n> of this
// process: the file as it was when the host started. The returned file, if
// any, must stay open for the life of the host.
func pinSelfExe(selfExe string) (string, *os.File, error) {
	const self = "/proc/self/exe"
	if selfExe == "" {
		return self, nil, nil
	}
	want, err := os.Stat(selfExe)
	if err != nil {
		return "", nil, fmt.Errorf("pluginhost: stat %s: %w", selfExe, err)
	}
	if running, err := os.Stat(self); err == nil && os.SameFile(want, running) {
		return self, nil, nil
	}
	f, err := os.Open(selfExe)
	if err != nil {
		return "", nil, fmt.Errorf("pluginhost: open %s: %w", selfExe, err)
	}
	// Resolved by the child against this process's descriptor table, which
	// the child's own descriptor shuffling before exec cannot touch.
	return "/proc/" + strconv.Itoa(os.Getpid()) + "/fd/" + strconv.Itoa(int(f.Fd())), f, nil
}
