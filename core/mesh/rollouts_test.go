package mesh

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mycelium-mesh/mesh/core/config"
	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/rollout"
)

const (
	dGood   = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	dBroken = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

// watcherRig is a mesh with a fabric and a rollout store in dir and no
// agents: what the agents run comes from ready, set by the test.
type watcherRig struct {
	t     testing.TB
	dir   string
	m     *Mesh
	mu    sync.Mutex
	ready map[string]int // digest → ready instances
}

func newWatcherRig(t testing.TB, dir string) *watcherRig {
	t.Helper()
	f, err := fabric.New(fabric.Options{DataDir: dir, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	m := &Mesh{log: hclog.NewNullLogger(), fabric: f, published: map[string]time.Time{},
		cfg: &config.Config{ProgressDeadline: time.Minute}}
	w := &watcherRig{t: t, dir: dir, m: m, ready: map[string]int{}}
	m.rollouts, err = openRollouts(m, dir, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	m.rollouts.observe = func(app, digest string, _ time.Time) rollout.Observation {
		w.mu.Lock()
		defer w.mu.Unlock()
		n := w.ready[digest]
		return rollout.Observation{Progress: rollout.Progress{Desired: 3, Ready: n, Healthy: n}, Starting: 3 - n}
	}
	t.Cleanup(w.close)
	return w
}

func (w *watcherRig) close() {
	if w.m == nil {
		return
	}
	_ = w.m.rollouts.close()
	_ = w.m.fabric.Close()
	w.m = nil
}

func (w *watcherRig) setReady(digest string, n int) {
	w.mu.Lock()
	w.ready[digest] = n
	w.mu.Unlock()
}

func (w *watcherRig) begin(digest string) rollout.Rollout {
	w.t.Helper()
	p, ok := w.m.fabric.Plan("billing")
	prev := ""
	if ok {
		prev = p.Digest
	}
	p = fabric.Plan{AppName: "billing", Digest: digest, Min: 1, Max: 3}
	r, err := w.m.rollouts.begin(rolloutStart{App: "billing", Digest: digest, Previous: prev, Trigger: rollout.ByDeploy, Who: "test", AutoRevert: true},
		func() error { return w.m.fabric.PublishPlan(p) })
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

func (w *watcherRig) get(id string) rollout.Rollout {
	w.t.Helper()
	r, err := w.m.rollouts.get(id)
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

// A rollout that reached its instances since the watcher's last step and
// is then replaced counts as succeeded (and as the last good digest), not
// superseded.
func TestBeginJudgesTheRolloutItReplaces(t *testing.T) {
	w := newWatcherRig(t, t.TempDir())
	first := w.begin(dGood)
	w.setReady(dGood, 3) // ready, but no step ran yet
	second := w.begin(dBroken)
	if got := w.get(first.ID); got.State != rollout.Succeeded {
		t.Fatalf("replaced rollout: %s (%s), want succeeded", got.State, got.Detail)
	}
	if second.LastGood != dGood {
		t.Fatalf("last good %q, want %q", second.LastGood, dGood)
	}
	// A third replaces the second while it is still on its way: superseded.
	third := w.begin(dGood)
	if got := w.get(second.ID); got.State != rollout.Superseded || got.Detail != "superseded by "+third.ID {
		t.Fatalf("replaced rollout: %s (%s), want superseded", got.State, got.Detail)
	}
}

// A mesh that stopped after recording a revert but before publishing it
// publishes it when it resumes, and the rollout ends reverted.
func TestResumedRevertIsPublished(t *testing.T) {
	dir := t.TempDir()
	w := newWatcherRig(t, dir)
	w.setReady(dGood, 3)
	w.begin(dGood)
	w.m.rollouts.step(time.Now())
	w.setReady(dGood, 0)
	r := w.begin(dBroken)
	// Recorded as reverting, plan still on the broken digest: the state a
	// SIGKILL between the two writes leaves.
	r.State, r.Detail = rollout.Reverting, "n1: unhealthy"
	if err := w.m.rollouts.store.Save(r); err != nil {
		t.Fatal(err)
	}
	w.close()

	w = newWatcherRig(t, dir)
	if p, _ := w.m.fabric.Plan("billing"); p.Digest != dBroken {
		t.Fatalf("plan before resume: %s", p.Digest)
	}
	w.m.rollouts.step(time.Now())
	if p, _ := w.m.fabric.Plan("billing"); p.Digest != dGood {
		t.Fatalf("plan after resume names %s, want the last good %s", p.Digest, dGood)
	}
	if got := w.get(r.ID); got.State != rollout.Reverting {
		t.Fatalf("before the good digest is back: %s", got.State)
	}
	w.setReady(dGood, 3)
	w.m.rollouts.step(time.Now())
	if got := w.get(r.ID); got.State != rollout.Reverted {
		t.Fatalf("after the good digest is back: %s (%s)", got.State, got.Detail)
	}
}

// A rollout whose deadline passed while the mesh was down is judged at
// once when it resumes: reverted to the last good digest.
func TestResumedPastDeadlineReverts(t *testing.T) {
	dir := t.TempDir()
	w := newWatcherRig(t, dir)
	w.setReady(dGood, 3)
	w.begin(dGood)
	w.m.rollouts.step(time.Now())
	r := w.begin(dBroken)
	w.close()

	w = newWatcherRig(t, dir)
	w.m.rollouts.step(r.Deadline.Add(time.Second))
	got := w.get(r.ID)
	if got.State != rollout.Reverting {
		t.Fatalf("past its deadline: %s (%s)", got.State, got.Detail)
	}
	if p, _ := w.m.fabric.Plan("billing"); p.Digest != dGood {
		t.Fatalf("plan names %s, want %s", p.Digest, dGood)
	}
}

func TestRollbackTarget(t *testing.T) {
	hist := []rollout.Rollout{ // newest first
		{State: rollout.Reverted, Digest: dBroken, LastGood: dGood, Version: "9.0.0"},
		{State: rollout.Succeeded, Digest: dGood, Version: "1.0.0"},
	}
	tests := []struct {
		name, current, to, want string
		err                     error
	}{
		{"previous good", dBroken, "", dGood, nil},
		{"nothing else good", dGood, "", "", ErrNoTarget},
		{"version", dGood, "9.0.0", dBroken, nil},
		{"good version", dBroken, "1.0.0", dGood, nil},
		{"digest", dGood, dBroken, dBroken, nil},
		{"bare hex digest", dGood, dBroken[len("sha256:"):], dBroken, nil},
		{"unknown version", dGood, "2.0.0", "", ErrNoTarget},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rollbackTarget(hist, tt.current, tt.to)
			if !errors.Is(err, tt.err) || got != tt.want {
				t.Fatalf("got %q %v, want %q %v", got, err, tt.want, tt.err)
			}
		})
	}
}

// BenchmarkRolloutBegin measures what recording a rollout adds to a deploy
// call: the store writes (synced) and the history read for the last good
// digest. The bar for a deploy call is 1 ms of server time.
func BenchmarkRolloutBegin(b *testing.B) {
	w := newWatcherRig(b, b.TempDir())
	w.setReady(dGood, 3)
	p := fabric.Plan{AppName: "billing", Digest: dGood, Min: 1, Max: 3}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d := dGood
		if i%2 == 1 {
			d = dBroken
		}
		p.Digest = d
		if _, err := w.m.rollouts.begin(rolloutStart{App: "billing", Digest: d, Trigger: rollout.ByDeploy, AutoRevert: true},
			func() error { return w.m.fabric.PublishPlan(p) }); err != nil {
			b.Fatal(err)
		}
	}
}

// A rollout recorded as pending by a mesh that died before publishing its
// plan is resumed as failed (never published), not as superseded, and the
// plan is left alone.
func TestPendingNeverPublishedIsFailed(t *testing.T) {
	dir := t.TempDir()
	w := newWatcherRig(t, dir)
	w.setReady(dGood, 3)
	first := w.begin(dGood)
	w.m.rollouts.step(time.Now())
	if got := w.get(first.ID); got.State != rollout.Succeeded {
		t.Fatalf("first rollout: %s", got.State)
	}
	// What begin writes before it publishes, and nothing after.
	r := rollout.Rollout{App: "billing", Digest: dBroken, Previous: dGood, LastGood: dGood, Trigger: rollout.ByDeploy,
		AutoRevert: true, State: rollout.Pending, Window: time.Minute, Started: time.Now(), Deadline: time.Now().Add(time.Minute)}
	if err := w.m.rollouts.store.Create(&r, nil); err != nil {
		t.Fatal(err)
	}
	w.close()

	w = newWatcherRig(t, dir)
	w.setReady(dGood, 3)
	w.m.rollouts.step(time.Now())
	got := w.get(r.ID)
	if got.State != rollout.Failed || !strings.Contains(got.Detail, "never published") {
		t.Fatalf("resumed pending rollout: %s (%s), want failed, never published", got.State, got.Detail)
	}
	if p, _ := w.m.fabric.Plan("billing"); p.Digest != dGood {
		t.Fatalf("plan names %s, want %s", p.Digest, dGood)
	}
}
