package mesh_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/mesh"
	"github.com/mycelium-mesh/mesh/internal/etcdtest"
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

// TestClusterOnLoopback runs the roles apart on one machine, without the
// root the namespace harness needs: etcd, the control process, an edge and
// two agents advertising 127.0.0.2 and 127.0.0.3. Each agent's workload
// listens on its own address, the edge serves both, and a deploy through
// the control process is followed to ready across the agents.
func TestClusterOnLoopback(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	dir := t.TempDir()
	runCLI(t, "keygen", "-out", filepath.Join(dir, "dev"))
	v1, v2 := packApp(t, dir, "billing", "v1"), packApp(t, dir, "billing", "v2")
	edgeAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	write := func(node, advertise string) string {
		d := filepath.Join(dir, node)
		src := fmt.Sprintf(`
data_dir = %q
run_dir  = %q
warmup   = "300ms"
grace    = "2s"
min_healthy = "0s"
trusted_keys = [%q]
%s
control { socket = %q }
edge {
  listen = %q
  admin  = ""
}
cluster {
  node      = %q
  advertise = %q
  etcd {
    endpoints = [%q]
    lease_ttl = "2s"
  }
}
app "billing" {
  spore = %q
  min = 1
  max = 2
}
`, filepath.Join(d, "data"), filepath.Join(d, "run"), filepath.Join(dir, "dev.pub"), repoBlock(dir),
			filepath.Join(d, "control.sock"), edgeAddr, node, advertise, etcd.Endpoints()[0], v1)
		p := filepath.Join(dir, node+".hcl")
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	start := func(args ...string) {
		logs := &syncBuffer{}
		cmd := exec.Command(meshBin, args...)
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
				t.Errorf("mesh %s did not stop within 20s of SIGTERM", args[0])
			}
			if t.Failed() {
				t.Logf("mesh %s logs:\n%s", strings.Join(args, " "), logs.String())
			}
		})
	}
	start("run", "-roles", "control", "-config", write("ctl", "127.0.0.1"))
	start("edge", "-config", write("edge", "127.0.0.1"))
	start("agent", "-config", write("host-a", "127.0.0.2"))
	start("agent", "-config", write("host-b", "127.0.0.3"))

	cl, err := mesh.NewClient("unix://"+filepath.Join(dir, "ctl", "control.sock"), "")
	if err != nil {
		t.Fatal(err)
	}
	status := func() (mesh.Status, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		st, _, err := cl.Status(ctx)
		return st, err == nil
	}
	get := func() error {
		resp, err := http.Get("http://" + edgeAddr + "/billing/hello")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s", resp.Status)
		}
		return nil
	}
	waitFor(t, 60*time.Second, "billing on both agents, served by the edge", func() bool {
		st, ok := status()
		return ok && len(endpointsOf(st, "billing")) == 2 && get() == nil
	})
	st, _ := status()
	if hosts := hostsOf(endpointsOf(st, "billing")); strings.Join(hosts, " ") != "127.0.0.2 127.0.0.3" {
		t.Fatalf("endpoints on %v, want the agents' advertise addresses", hosts)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d, err := cl.PublishSpore(ctx, v2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Deploy(ctx, "billing", d); err != nil {
		t.Fatal(err)
	}
	if rs, err := cl.WaitRollout(ctx, "billing", d, nil); err != nil || rs.State != "ready" {
		t.Fatalf("rollout: %+v %v", rs, err)
	}
	st, _ = status()
	for _, ep := range endpointsOf(st, "billing") {
		if ep.Digest != d {
			t.Errorf("endpoint %s serves %s after the rollout of %s", ep.URL, ep.Digest, d)
		}
	}
}
