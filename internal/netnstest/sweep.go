package netnstest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// ownersDir records, per Net, the test process that owns it: a file named
// after the Net's tag holding "<pid> <start time>". A Net whose owner is
// gone was left by a killed test, and the next New deletes it.
const ownersDir = "/run/mesh-netnstest"

// processStart returns the start time of pid (field 22 of its stat), which
// tells a live owner from a later process that reuses its pid.
func processStart(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return "", fmt.Errorf("short /proc/%d/stat", pid)
	}
	return f[19], nil
}

func claimTag(tag string) error {
	start, err := processStart(os.Getpid())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(ownersDir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(ownersDir, tag), fmt.Appendf(nil, "%d %s\n", os.Getpid(), start), 0o644)
}

func releaseTag(tag string) { _ = os.Remove(filepath.Join(ownersDir, tag)) }

// sweep deletes the namespaces, links and owner records of every Net whose
// owning process is gone. Only names this package gives are touched.
func sweep() {
	ents, err := os.ReadDir(ownersDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		tag := e.Name()
		if !alive(filepath.Join(ownersDir, tag)) {
			deleteTag(tag)
			releaseTag(tag)
		}
	}
}

// alive reports whether the owner a record names still runs.
func alive(record string) bool {
	b, err := os.ReadFile(record)
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return false
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil {
		return false
	}
	start, err := processStart(pid)
	return err == nil && start == f[1]
}

// deleteTag removes what a Net with this tag created: veths and the bridge
// first, then the namespaces.
func deleteTag(tag string) {
	if out, err := exec.Command("ip", "-o", "link", "show").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			if strings.HasPrefix(name, "mv"+tag) || name == "mb"+tag {
				_ = exec.Command("ip", "link", "del", name).Run()
			}
		}
	}
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) > 0 && strings.HasPrefix(f[0], "mn"+tag+"-") {
				_ = exec.Command("ip", "netns", "del", f[0]).Run()
			}
		}
	}
}
