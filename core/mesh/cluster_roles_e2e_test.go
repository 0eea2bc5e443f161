package mesh_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/internal/testutil"
)

// TestRoleWaitsForEtcd: `mesh agent` and `mesh edge` started before etcd
// say, again and again, that they wait for it instead of failing, and stop
// cleanly (exit 0) on SIGTERM while waiting.
func TestRoleWaitsForEtcd(t *testing.T) {
	dir := t.TempDir()
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t)) // nothing listens
	cfg := filepath.Join(dir, "mesh.hcl")
	src := fmt.Sprintf(`
data_dir = "data"
run_dir  = "run"
edge {
  listen = "127.0.0.1:%d"
  admin  = ""
}
cluster {
  node = "host-a"
  etcd { endpoints = [%q] }
}
`, testutil.FreePort(t), etcdURL)
	if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{"agent", "edge"} {
		t.Run(role, func(t *testing.T) {
			logs := &syncBuffer{}
			cmd := exec.Command(meshBin, role, "-config", cfg)
			cmd.Stdout, cmd.Stderr = logs, logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var waitErr error
			exited := make(chan struct{})
			go func() { waitErr = cmd.Wait(); close(exited) }()
			defer func() {
				select {
				case <-exited:
				default:
					_ = cmd.Process.Kill()
					<-exited
				}
			}()
			want := "waiting for etcd at " + etcdURL + ": "
			waitFor(t, 30*time.Second, "two waiting lines", func() bool {
				select {
				case <-exited:
					t.Fatalf("mesh %s exited (%v) instead of waiting:\n%s", role, waitErr, logs.String())
				default:
				}
				return strings.Count(logs.String(), want) >= 2
			})
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case <-exited:
				if waitErr != nil {
					t.Fatalf("mesh %s exited with %v on SIGTERM:\n%s", role, waitErr, logs.String())
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("mesh %s still waiting 20s after SIGTERM:\n%s", role, logs.String())
			}
		})
	}
}

// TestRoleNeedsCluster: running only some roles without a cluster block is
// refused with a message saying so.
func TestRoleNeedsCluster(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mesh.hcl")
	if err := os.WriteFile(cfg, []byte("data_dir = \"data\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"agent"}, {"edge"}, {"run", "-roles", "control"}} {
		out, err := exec.Command(meshBin, append(args, "-config", cfg)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "needs a cluster block") {
			t.Errorf("mesh %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
