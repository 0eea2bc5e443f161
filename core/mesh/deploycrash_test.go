package mesh

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/mycelium-mesh/mesh/core/config"
	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/rollout"
)

// A deploy writes twice: the rollout store (the new rollout as pending, the
// one it replaces as it ended) and then the fabric's plan. The tests below
// kill a real process with SIGKILL at each point of that sequence and open
// what it left on disk.

// crashEnv names the point at which the re-executed test binary kills
// itself, and crashDirEnv the data dir it works in.
const (
	crashEnv    = "MESH_TEST_DEPLOY_CRASH"
	crashDirEnv = "MESH_TEST_DEPLOY_CRASH_DIR"
)

// Runs before TestMain (which builds the e2e binaries) in the re-executed
// test binary, so the crashing child does nothing but its deploy.
func init() {
	if point := os.Getenv(crashEnv); point != "" {
		err := crashingDeploy(os.Getenv(crashDirEnv), point)
		fmt.Fprintln(os.Stderr, "deploy did not crash:", err)
		os.Exit(3)
	}
}

// crashingDeploy opens the mesh state in dir and deploys dBroken over the
// running dGood rollout, killing the process at point: "before-plan" once
// the rollout store committed, "after-plan" once the fabric did too.
func crashingDeploy(dir, point string) error {
	f, err := fabric.New(fabric.Options{DataDir: dir, Logger: hclog.NewNullLogger()})
	if err != nil {
		return err
	}
	m := &Mesh{log: hclog.NewNullLogger(), fabric: f, published: map[string]time.Time{},
		cfg: &config.Config{ProgressDeadline: time.Minute}}
	if m.rollouts, err = openRollouts(m, dir, hclog.NewNullLogger()); err != nil {
		return err
	}
	m.rollouts.observe = func(app, digest string, _ time.Time) rollout.Observation {
		if digest == dGood { // the running rollout reached its instances
			return rollout.Observation{Progress: rollout.Progress{Desired: 3, Ready: 3, Healthy: 3}}
		}
		return rollout.Observation{Progress: rollout.Progress{Desired: 3}, Starting: 3}
	}
	die := func() { _ = unix.Kill(os.Getpid(), unix.SIGKILL); select {} }
	_, err = m.rollouts.begin(rolloutStart{App: "billing", Digest: dBroken, Previous: dGood, Trigger: rollout.ByDeploy, Who: "test", AutoRevert: true},
		func() error {
			if point == "before-plan" {
				die()
			}
			if err := f.PublishPlan(fabric.Plan{AppName: "billing", Digest: dBroken, Min: 1, Max: 3}); err != nil {
				return err
			}
			die()
			return nil
		})
	return err
}

// TestDeployKilledBetweenWrites kills a deploy after each of its writes and
// checks what the mesh resumes: after the rollout record alone the new
// rollout fails as never published and the plan still names the old digest;
// after the plan too the new rollout is followed as progressing. In both the
// rollout it replaced was saved, in the same write, as the deploy judged it
// (succeeded: it had reached its instances).
func TestDeployKilledBetweenWrites(t *testing.T) {
	cases := []struct {
		point    string
		plan     string        // the digest the plan names after the restart
		state    rollout.State // of the new rollout, once stepped
		detail   string
		lastGood string
	}{
		{"before-plan", dGood, rollout.Failed, "never published", dGood},
		{"after-plan", dBroken, rollout.Progressing, "", dGood},
	}
	for _, c := range cases {
		t.Run(c.point, func(t *testing.T) {
			dir := t.TempDir()
			w := newWatcherRig(t, dir)
			first := w.begin(dGood) // progressing, not stepped since
			w.close()

			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), crashEnv+"="+c.point, crashDirEnv+"="+dir)
			out, err := cmd.CombinedOutput()
			var ws syscall.WaitStatus
			if ee, ok := err.(*exec.ExitError); ok {
				ws, _ = ee.Sys().(syscall.WaitStatus)
			}
			if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("deploy child: %v, want killed by SIGKILL\n%s", err, out)
			}

			w = newWatcherRig(t, dir)
			w.setReady(dGood, 3)
			if got := w.get(first.ID); got.State != rollout.Succeeded {
				t.Errorf("replaced rollout %s: %s (%s), want succeeded", first.ID, got.State, got.Detail)
			}
			w.m.rollouts.step(time.Now())
			hist, err := w.m.rollouts.history("billing", 0)
			if err != nil || len(hist) != 2 {
				t.Fatalf("history: %d rollouts, %v; want 2", len(hist), err)
			}
			got := hist[0]
			if got.Digest != dBroken || got.State != c.state || !strings.Contains(got.Detail, c.detail) {
				t.Errorf("new rollout %s of %s: %s (%s), want %s (%s)", got.ID, got.Digest, got.State, got.Detail, c.state, c.detail)
			}
			if got.LastGood != c.lastGood {
				t.Errorf("new rollout's last good: %q, want %q", got.LastGood, c.lastGood)
			}
			if p, _ := w.m.fabric.Plan("billing"); p.Digest != c.plan {
				t.Errorf("plan names %s, want %s", p.Digest, c.plan)
			}
		})
	}
}

// TestDeployIsOneStoreWrite deploys over a rollout that has reached its
// instances since the watcher last looked: judging it succeeded, recording
// that and recording the new rollout take one synced write of the rollout
// store, and the new rollout's last good digest is the one just judged.
func TestDeployIsOneStoreWrite(t *testing.T) {
	w := newWatcherRig(t, t.TempDir())
	first := w.begin(dGood)
	w.setReady(dGood, 3) // reached, not stepped since
	before := w.m.rollouts.store.Writes()
	second := w.begin(dBroken)
	if n := w.m.rollouts.store.Writes() - before; n != 1 {
		t.Errorf("deploy took %d rollout store writes, want 1", n)
	}
	if got := w.get(first.ID); got.State != rollout.Succeeded {
		t.Errorf("replaced rollout: %s (%s), want succeeded", got.State, got.Detail)
	}
	if second.LastGood != dGood {
		t.Errorf("new rollout's last good: %q, want %q", second.LastGood, dGood)
	}
}
