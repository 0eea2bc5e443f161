package mesh_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRolloutStoreLost: a mesh started on a data dir whose fabric holds
// plans but whose rollouts.db is gone runs on (the plans say what runs) and
// warns that the rollout history was lost, instead of starting it over in
// silence; a deploy after that still has the serving digest to revert to.
func TestRolloutStoreLost(t *testing.T) {
	e := newEnv(t)
	e.writeConfig()
	e.start()
	e.stop()
	if err := os.Remove(filepath.Join(e.dir, "data", "rollouts.db")); err != nil {
		t.Fatal(err)
	}
	e.start()
	defer e.stop()
	if !strings.Contains(e.logs.String(), "rollout history missing") {
		t.Fatalf("no warning about the lost rollout store:\n%s", e.logs.String())
	}
	d1 := e.status().Apps[0].Digest
	r := e.waitRollout(e.deployDetached(e.brokenSpore()), 60*time.Second)
	if r.LastGood != d1 {
		t.Fatalf("deploy after the history was lost: last good %q, want the serving %s (%s: %s)", r.LastGood, d1, r.State, r.Detail)
	}
}
