package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// record is what the agent keeps on disk about a running workload, so that
// the next run can stop it if this one dies without stopping it.
type record struct {
	PID       int    `json:"pid"`
	PGID      int    `json:"pgid"`
	StartTime uint64 `json:"start_time"` // /proc/<pid>/stat field 22
	Dir       string `json:"dir"`
	App       string `json:"app"`
	Digest    string `json:"digest"`
	Instance  string `json:"instance"`
	// Cgroups are the instance's cgroup directories, tracking group
	// first; empty when it was contained by process group.
	Cgroups []string `json:"cgroups,omitempty"`
	// Port is the loopback port the workload serves on; Logs are its
	// stdout and stderr files; Relayed tells that a log relay process,
	// not the agent, holds the read ends of its pipes, so the workload
	// survives the agent and can be adopted (adopt.go).
	Port    int      `json:"port,omitempty"`
	Logs    []string `json:"logs,omitempty"`
	Relayed bool     `json:"relayed,omitempty"`
	// Host is the address the workload listens on (Options.Host); empty
	// in records written before it was kept, which meant DefaultHost.
	Host string `json:"host,omitempty"`
}

// host is the address the recorded workload listens on.
func (r record) host() string {
	if r.Host == "" {
		return DefaultHost
	}
	return r.Host
}

func (a *Agent) recordsDir() string { return filepath.Join(a.nodeDir, "instances") }

func (a *Agent) recordPath(instance string) string {
	return filepath.Join(a.recordsDir(), instance+".json")
}

func (a *Agent) writeRecord(r record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	tmp := a.recordPath(r.Instance) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write instance record: %w", err)
	}
	if err := os.Rename(tmp, a.recordPath(r.Instance)); err != nil {
		return fmt.Errorf("write instance record: %w", err)
	}
	return nil
}

func (a *Agent) removeRecord(instance string) {
	if err := os.Remove(a.recordPath(instance)); err != nil && !errors.Is(err, os.ErrNotExist) {
		a.log.Warn("remove instance record", "instance", instance, "error", err)
	}
}

// clearLeftovers stops the workloads a previous run of this node recorded
// and did not stop. A record is acted on only when its pid still belongs to
// the process it describes (same start time, still leading its group), so a
// reused pid is never signalled. Each such group gets SIGTERM, then SIGKILL
// after the grace period. Processes the workload forked are found by their
// group and start time and killed too, also when the recorded leader itself
// is already gone. With Options.Adopt, records whose workload the agent can
// take over (adoptable) are kept and returned instead, one per app.
func (a *Agent) clearLeftovers() ([]*adoptee, error) {
	entries, err := os.ReadDir(a.recordsDir())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read instance records: %w", err)
	}
	var adopted []*adoptee
	taken := map[string]bool{}
	var wg sync.WaitGroup
	for _, e := range entries {
		path := filepath.Join(a.recordsDir(), e.Name())
		if !strings.HasSuffix(e.Name(), ".json") {
			_ = os.Remove(path)
			continue
		}
		data, err := os.ReadFile(path)
		var r record
		if err == nil {
			err = json.Unmarshal(data, &r)
		}
		if err != nil || r.PID <= 1 || r.PGID <= 1 {
			a.log.Warn("ignoring unreadable instance record", "path", path, "error", err)
			_ = os.Remove(path)
			continue
		}
		if len(r.Cgroups) > 0 && a.cg == nil {
			a.log.Warn("instance record names cgroups, but cgroups are not in use now: only its process group is checked", "instance", r.Instance)
		}
		if !sameProcess(r) {
			// The leader is gone (with a mesh killed by SIGKILL the death
			// signal takes it), but what it forked may still run in its group.
			if n := a.killRecordRemains(r); n > 0 {
				a.log.Warn("killed leftover processes of a previous run", "app", r.App, "instance", r.Instance, "pgid", r.PGID, "count", n)
			} else {
				a.log.Debug("leftover already gone", "app", r.App, "instance", r.Instance, "pid", r.PID)
			}
			_ = os.Remove(path)
			continue
		}
		if a.opts.Adopt {
			ad, why := a.adoptable(r, taken)
			if ad != nil {
				taken[r.App] = true
				adopted = append(adopted, ad)
				a.log.Info("adopting workload of a previous run", "app", r.App, "instance", r.Instance, "pid", r.PID, "port", r.Port)
				continue
			}
			a.log.Warn("not adopting workload of a previous run", "app", r.App, "instance", r.Instance, "pid", r.PID, "reason", why)
		}
		a.log.Warn("stopping leftover workload of a previous run", "app", r.App, "instance", r.Instance, "pid", r.PID)
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.stopLeftover(r)
			_ = os.Remove(path)
		}()
	}
	wg.Wait()
	return adopted, nil
}

// sameProcess reports whether r.PID is still the live process r describes.
func sameProcess(r record) bool {
	st, err := readProcStat(r.PID)
	if err != nil {
		return false
	}
	return st.StartTime == r.StartTime && st.PGID == r.PGID && st.State != 'Z' && st.State != 'X'
}

func (a *Agent) stopLeftover(r record) {
	_ = syscall.Kill(-r.PGID, syscall.SIGTERM)
	deadline := time.Now().Add(a.opts.Grace)
	for sameProcess(r) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if sameProcess(r) {
		_ = syscall.Kill(-r.PGID, syscall.SIGKILL)
	}
	if n := a.killRecordRemains(r); n > 0 {
		a.log.Warn("killed leftover processes of a previous run", "app", r.App, "instance", r.Instance, "pgid", r.PGID, "count", n)
	}
}

// killRecordRemains kills what is left of a recorded instance: its whole
// cgroup when it had one (setsid escapees included), then the members of
// its process group. It returns how many processes were killed.
func (a *Agent) killRecordRemains(r record) int {
	n := 0
	if len(r.Cgroups) > 0 && a.cg != nil {
		killed, err := a.cg.RemovePaths(r.Cgroups)
		if err != nil {
			a.log.Warn("remove leftover cgroup", "instance", r.Instance, "error", err)
		}
		n += killed
	}
	return n + killGroupRemains(r)
}

// killGroupRemains SIGKILLs, one pid at a time, the live processes of the
// recorded group that started no earlier than its leader. The group id is
// not signalled as a whole: once the leader is gone the id may be reused.
// Each process is checked again right before it is signalled. It returns how
// many processes were signalled.
//
// When the recorded leader's pid is alive as the leader of its own group
// but with another start time, the pid was reused, which the kernel allows
// only once no process of the old group is left: every member of that group
// then belongs to someone else, and none is signalled.
func killGroupRemains(r record) int {
	if st, err := readProcStat(r.PGID); err == nil && st.PGID == r.PGID && st.StartTime != r.StartTime {
		return 0
	}
	killed := 0
	for pass := 0; pass < 10; pass++ {
		pids := groupMembers(r.PGID, r.StartTime)
		if len(pids) == 0 {
			return killed
		}
		for _, pid := range pids {
			if isMember(pid, r.PGID, r.StartTime) && syscall.Kill(pid, syscall.SIGKILL) == nil {
				killed++
			}
		}
		// Members forking while they were killed are caught by the next pass.
		time.Sleep(10 * time.Millisecond)
	}
	return killed
}

// groupMembers lists the live processes in group pgid started at or after
// start, read from /proc (empty where there is no /proc).
func groupMembers(pgid int, start uint64) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 1 {
			continue
		}
		if isMember(pid, pgid, start) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func isMember(pid, pgid int, start uint64) bool {
	st, err := readProcStat(pid)
	return err == nil && st.PGID == pgid && st.StartTime >= start && st.State != 'Z' && st.State != 'X'
}
