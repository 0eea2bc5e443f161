package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
// after the grace period.
func (a *Agent) clearLeftovers() error {
	entries, err := os.ReadDir(a.recordsDir())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("read instance records: %w", err)
	}
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
		if !sameProcess(r) {
			a.log.Debug("leftover already gone", "app", r.App, "instance", r.Instance, "pid", r.PID)
			_ = os.Remove(path)
			continue
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
	return nil
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
	for time.Now().Before(deadline) {
		if !sameProcess(r) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	if sameProcess(r) {
		_ = syscall.Kill(-r.PGID, syscall.SIGKILL)
	}
}
