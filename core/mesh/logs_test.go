package mesh_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A workload's own error output reaches the operator: a rollout that fails
// quotes the instance's stderr, `mesh status` shows it in the table, and
// `mesh logs` (with -f, following new instances) streams it.
func TestWorkloadErrorsReachOperator(t *testing.T) {
	e := newEnv(t)
	e.start()

	man := `{"identity":{"kind":"Spore","name":"billing","version":"9.0.0"},
"runtime":{"command":"./binary","args":[],"env":{"HELLO_VERSION":"broken","HELLO_READY_DELAY":"bogus"}},
"resources":{"nutrients":{"cpu_milli":100,"memory_mb":64}},"slo":{"p99_budget_ms":50},
"security":{"lsm_profile":"","read_only_fs":false}}`
	mf := filepath.Join(e.dir, "crash.json")
	if err := os.WriteFile(mf, []byte(man), 0o644); err != nil {
		t.Fatal(err)
	}
	crash := filepath.Join(e.dir, "crash.spore")
	runCLI(t, "pack", "-binary", helloBn, "-manifest", mf, "-key", filepath.Join(e.dir, "dev.key"), "-out", crash)
	const fatal = "hello: HELLO_READY_DELAY"

	deploy := func() string {
		cmd := exec.Command(meshBin, "deploy", "-config", e.cfgPath, "-app", "billing", "-spore", crash, "-timeout", "60s")
		out, err := cmd.CombinedOutput()
		if err == nil || cmd.ProcessState.ExitCode() != 1 {
			t.Fatalf("deploy of a crashing spore: want exit 1, got %v\n%s", err, out)
		}
		return string(out)
	}
	if out := deploy(); !strings.Contains(out, fatal) {
		t.Fatalf("failed rollout does not quote the workload's stderr:\n%s", out)
	}

	table := runCLI(t, "status", "-config", e.cfgPath)
	if !strings.Contains(table, "LAST ERROR") || !strings.Contains(table, fatal) {
		t.Fatalf("status table does not show the instance's last error:\n%s", table)
	}
	var failed string
	for _, in := range e.status().Instances {
		if in.State == "failed" {
			failed = in.Instance
		}
	}
	if failed == "" {
		t.Fatal("no failed instance in status")
	}
	out := runCLI(t, "logs", "-config", e.cfgPath, "-instance", failed, "-stream", "stderr", "billing")
	if !strings.Contains(out, failed+" stderr| ") || !strings.Contains(out, fatal) {
		t.Fatalf("mesh logs -instance %s:\n%s", failed, out)
	}

	// Follow: a new failing instance's line arrives on the open stream.
	follow := exec.Command(meshBin, "logs", "-f", "-tail", "0", "-config", e.cfgPath, "billing")
	stdout, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	follow.Stderr = &syncBuffer{}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = follow.Process.Signal(syscall.SIGTERM)
		_ = follow.Wait()
	})
	got := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), fatal) {
				got <- sc.Text()
				return
			}
		}
		close(got)
	}()
	deploy()
	select {
	case line, ok := <-got:
		if !ok {
			t.Fatalf("mesh logs -f ended without the new instance's error: %s", follow.Stderr)
		}
		if strings.Contains(line, failed) {
			t.Fatalf("followed line is from the old instance: %s", line)
		}
		t.Logf("followed: %s", line)
	case <-time.After(30 * time.Second):
		t.Fatal("mesh logs -f did not show the new instance's stderr")
	}

	// Unknown app: a clear error, exit 1.
	cmd := exec.Command(meshBin, "logs", "-config", e.cfgPath, "nope")
	if out, _ := cmd.CombinedOutput(); cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "no instance") {
		t.Fatalf("logs of an unknown app: exit %d\n%s", cmd.ProcessState.ExitCode(), out)
	}
}
