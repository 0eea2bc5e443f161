package mesh

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mycelium-mesh/mesh/core/config"
	"github.com/mycelium-mesh/mesh/core/events"
	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/rollout"
	"github.com/mycelium-mesh/mesh/core/spore"
)

// The rollout watcher owns every rollout of the mesh. A deploy, a rollback
// or an applied app block with a new digest starts one (rolloutStart); the
// watcher then follows it against the agents' instances and the fabric's
// endpoints every watchInterval, moves it through its states, publishes the
// last good digest again when it fails or misses its deadline, and persists
// each change in DataDir/rollouts.db. Rollouts still active when the mesh
// stopped (or was killed) are loaded again by openRollouts and followed from
// where they were, with the deadline they had: no client has to stay
// connected for a broken version to be taken back.

// watchInterval is how often the watcher looks at active rollouts.
const watchInterval = 100 * time.Millisecond

type rollouts struct {
	m     *Mesh
	store *rollout.Store
	log   hclog.Logger

	// observe is Mesh.observe; tests replace it.
	observe func(app, digest string, since time.Time) rollout.Observation

	mu     sync.Mutex
	active map[string]*rollout.Rollout // by app: at most one active rollout per app
	ended  map[endedKey]int            // rollouts ended since the mesh started, for /metrics
	kick   chan struct{}
}

type endedKey struct {
	app   string
	state rollout.State
}

func openRollouts(m *Mesh, dataDir string, log hclog.Logger) (*rollouts, error) {
	path := filepath.Join(dataDir, "rollouts.db")
	_, statErr := os.Stat(path)
	store, err := rollout.Open(path, rollout.DefaultKeep)
	if err != nil {
		return nil, err
	}
	if errors.Is(statErr, fs.ErrNotExist) && len(m.fabric.Plans()) > 0 {
		// Not refused: the plans say what runs, and a rollout with no
		// history reverts to the digest serving when it started.
		log.Warn("rollout history missing: the fabric holds plans but there is no rollout store, so the history starts empty and rollouts in progress when it was lost are not resumed; restore it from a backup to keep them", "path", path)
	}
	rs := &rollouts{m: m, store: store, log: log, active: map[string]*rollout.Rollout{}, ended: map[endedKey]int{}, kick: make(chan struct{}, 1), observe: m.observe}
	act, err := store.Active()
	if err != nil {
		store.Close()
		return nil, err
	}
	now := time.Now()
	for i := range act { // oldest first: a newer active rollout of an app supersedes an older one
		r := act[i]
		if old := rs.active[r.App]; old != nil {
			rs.finish(old, rollout.Superseded, now, "superseded by "+r.ID)
		}
		rs.active[r.App] = &r
		log.Info("rollout resumed", "id", r.ID, "app", r.App, "digest", r.Digest, "state", r.State, "deadline", r.Deadline)
	}
	return rs, nil
}

func (rs *rollouts) close() error { return rs.store.Close() }

// finish moves r to a terminal state and saves it; the caller holds mu or
// owns r alone.
func (rs *rollouts) finish(r *rollout.Rollout, s rollout.State, now time.Time, detail string) {
	if err := r.To(s, now, detail); err != nil {
		rs.log.Error("rollout", "error", err)
		return
	}
	if err := rs.store.Save(*r); err != nil {
		rs.log.Error("save rollout", "error", err)
	}
}

// rolloutStart describes a rollout to begin.
type rolloutStart struct {
	App, Digest, Version string
	Previous             string // the digest the plan names now, "" for a new app
	Trigger              rollout.Trigger
	Who                  string
	AutoRevert           bool
	Deadline             time.Duration // the progress deadline; the app's or the mesh's when 0
	// MinHealthy is the app's min_healthy when HasMinHealthy, else the
	// configuration in force says.
	MinHealthy    time.Duration
	HasMinHealthy bool
}

// begin records a rollout, runs publish (which makes the plan name its
// digest) and hands the rollout to the watcher. An active rollout of the
// same app is superseded.
func (rs *rollouts) begin(req rolloutStart, publish func() error) (rollout.Rollout, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	window := req.Deadline
	if window <= 0 {
		window = rs.m.progressDeadline(req.App)
	}
	// The rollout being replaced is judged first: one that reached its
	// desired instances since the last step counts as succeeded (and as
	// the last good digest), not as superseded. What that step changed is
	// saved with the new rollout, in one synced write.
	var judged *rollout.Rollout
	if old := rs.active[req.App]; old != nil {
		judged = rs.stepOne(req.App, old, time.Now(), true)
	}
	now := time.Now()
	lastGood := rs.store.LastGood(req.App, req.Digest)
	if judged != nil && judged.Good() != "" && judged.Good() != req.Digest {
		lastGood = judged.Good() // the newest, not on disk yet
	}
	if lastGood == "" && req.Previous != "" && req.Previous != req.Digest && rs.observe(req.App, req.Previous, now).Progress.Ready > 0 {
		// No rollout of the app proved good (a data dir from before
		// rollouts were recorded, or the first rollout replaced while its
		// instances were still proving themselves): the digest serving now
		// is the one to go back to.
		lastGood = req.Previous
	}
	minHealthy := req.MinHealthy
	if !req.HasMinHealthy {
		minHealthy = rs.m.minHealthy(req.App)
	}
	r := rollout.Rollout{
		App: req.App, Digest: req.Digest, Version: req.Version, Trigger: req.Trigger,
		Previous: req.Previous, LastGood: lastGood, AutoRevert: req.AutoRevert, Who: req.Who,
		State: rollout.Pending, Window: window, MinHealthy: minHealthy, Started: now, Deadline: now.Add(window),
	}
	// One synced write records the rollout as pending and the one it
	// replaces as superseded (or as the step above ended it), before the
	// plan changes. Progressing is kept in memory until the watcher's next
	// save: a mesh that dies before it resumes a pending rollout the plan
	// names as progressing, and one the plan does not name as failed.
	err := rs.store.Create(&r, func(nr *rollout.Rollout) []rollout.Rollout {
		old := rs.active[req.App]
		if old == nil {
			if judged != nil {
				return []rollout.Rollout{*judged}
			}
			return nil
		}
		o := *old
		if err := o.To(rollout.Superseded, now, "superseded by "+nr.ID); err != nil {
			return nil
		}
		return []rollout.Rollout{o}
	})
	if err != nil {
		if judged != nil {
			// What the step changed must not be lost with the new rollout.
			if serr := rs.store.Save(*judged); serr != nil {
				rs.log.Error("save rollout", "id", judged.ID, "error", serr)
			}
		}
		return rollout.Rollout{}, err
	}
	if old := rs.active[req.App]; old != nil {
		rs.log.Info("rollout superseded", "id", old.ID, "by", r.ID)
		e := rolloutEvent(events.RolloutCompleted, old)
		e.State, e.Detail = string(rollout.Superseded), "superseded by "+r.ID
		rs.m.emit(e)
		rs.ended[endedKey{req.App, rollout.Superseded}]++
		delete(rs.active, req.App)
	}
	if err := publish(); err != nil {
		rs.finish(&r, rollout.Failed, time.Now(), "publish plan: "+err.Error())
		rs.m.emit(rolloutEvent(events.RolloutCompleted, &r))
		return r, err
	}
	if err := r.To(rollout.Progressing, time.Now(), ""); err != nil {
		return r, err
	}
	cp := r
	rs.active[req.App] = &cp
	rs.log.Info("rollout started", "id", r.ID, "app", r.App, "digest", r.Digest, "last_good", r.LastGood, "who", r.Who, "deadline", window)
	rs.m.emit(rolloutEvent(events.RolloutStarted, &r))
	select {
	case rs.kick <- struct{}{}:
	default:
	}
	return r, nil
}

// run follows the active rollouts until ctx ends.
func (rs *rollouts) run(ctx context.Context) {
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	for {
		rs.step(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-rs.kick:
		}
	}
}

// step advances every active rollout once.
func (rs *rollouts) step(now time.Time) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for app, r := range rs.active {
		rs.stepOne(app, r, now, false)
	}
}

// stepOne advances the active rollout r of app, saves what changed and
// drops it from the active set once it ended. The caller holds mu. With
// defer set, a change that publishes nothing is not saved but returned, for
// the caller to save in its own transaction; a revert is always saved
// before it is published.
func (rs *rollouts) stepOne(app string, r *rollout.Rollout, now time.Time, deferSave bool) (unsaved *rollout.Rollout) {
	p, havePlan := rs.m.fabric.Plan(app)
	if havePlan && r.State == rollout.Reverting && p.Digest == r.Digest {
		// Reverting, but the plan still names the failed digest: the mesh
		// stopped (or the publish failed) between recording the revert and
		// publishing it. Publish it now.
		rs.publishRevert(r)
		p, havePlan = rs.m.fabric.Plan(app)
	}
	before := *r
	obs := rs.observe(app, r.Waits(), r.Deadline.Add(-r.Window))
	if havePlan {
		obs.PlanDigest = p.Digest
	}
	publish, err := r.Step(obs, now)
	if err != nil {
		rs.log.Error("rollout step", "id", r.ID, "error", err)
		return
	}
	// Saved before a revert is published, so a mesh that dies in between
	// publishes it when it resumes (above).
	if r.State != before.State || r.Progress != before.Progress || r.Detail != before.Detail || !r.Deadline.Equal(before.Deadline) {
		if deferSave && publish == "" {
			cp := *r
			unsaved = &cp
		} else if err := rs.store.Save(*r); err != nil {
			rs.log.Error("save rollout", "id", r.ID, "error", err)
		}
	}
	rs.emitStep(before, r, publish != "")
	if publish != "" {
		rs.log.Warn("rollout failed, reverting", "id", r.ID, "app", app, "digest", r.Digest, "to", publish, "why", r.Detail)
		rs.publishRevert(r)
	}
	if r.State.Terminal() {
		rs.ended[endedKey{app, r.State}]++
		delete(rs.active, app)
		rs.log.Info("rollout ended", "id", r.ID, "app", app, "digest", r.Digest, "state", r.State, "detail", r.Detail, "took", r.Duration(now))
	}
	return unsaved
}

// publishRevert makes the plan of r's app name its last good digest again.
// The caller holds mu, under which every plan write of the mesh happens, so
// the plan read here is the one in force.
func (rs *rollouts) publishRevert(r *rollout.Rollout) {
	p, ok := rs.m.fabric.Plan(r.App)
	if !ok {
		return // the app was removed: the next step supersedes r
	}
	p.Digest = r.LastGood
	rs.m.markPublished(r.App)
	if err := rs.m.fabric.PublishPlan(p); err != nil {
		rs.log.Error("revert: publish plan (retried on the next step)", "id", r.ID, "app", r.App, "digest", p.Digest, "error", err)
	}
}

// get returns the rollout with the given ID, as the watcher has it now.
func (rs *rollouts) get(id string) (rollout.Rollout, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, r := range rs.active {
		if r.ID == id {
			return *r, nil
		}
	}
	return rs.store.Get(id)
}

// endedCounts returns how many rollouts ended in each state since the mesh
// started, by app.
func (rs *rollouts) endedCounts() map[endedKey]int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	out := make(map[endedKey]int, len(rs.ended))
	for k, n := range rs.ended {
		out[k] = n
	}
	return out
}

// activeRollout returns the rollout of app in progress, or nil.
func (m *Mesh) activeRollout(app string) *rollout.Rollout {
	if m.rollouts == nil {
		return nil
	}
	m.rollouts.mu.Lock()
	defer m.rollouts.mu.Unlock()
	if r := m.rollouts.active[app]; r != nil {
		cp := *r
		return &cp
	}
	return nil
}

// history returns up to n rollouts of app, newest first.
func (rs *rollouts) history(app string, n int) ([]rollout.Rollout, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	h, err := rs.store.History(app, n)
	if err != nil {
		return nil, err
	}
	if a := rs.active[app]; a != nil {
		for i := range h {
			if h[i].ID == a.ID {
				h[i] = *a
			}
		}
	}
	return h, nil
}

// publishApplied publishes a plan from an app block through publish (which
// swaps it in only over the plan the reload read). When the block changes the
// digest the app runs (or adds the app), it does so as a rollout started by
// "config"; a block changing anything else is published as it is.
func (m *Mesh) publishApplied(p fabric.Plan, old *fabric.Plan, deadline, minHealthy time.Duration, publish func() error) error {
	if m.rollouts == nil {
		return publish()
	}
	if old != nil && old.Digest == p.Digest {
		// Under the watcher's lock, like every plan write of a rollout: a
		// revert publishing the plan it read cannot undo this change.
		m.rollouts.mu.Lock()
		defer m.rollouts.mu.Unlock()
		return publish()
	}
	var version string
	if path, err := m.repo.Path(p.Digest); err == nil {
		if man, err := spore.ReadManifest(path); err == nil {
			version = man.Identity.Version
		}
	}
	req := rolloutStart{App: p.AppName, Digest: p.Digest, Version: version, Trigger: rollout.ByConfig,
		Who: "config", AutoRevert: true, Deadline: deadline, MinHealthy: minHealthy, HasMinHealthy: true}
	if old != nil {
		req.Previous = old.Digest
	}
	_, err := m.rollouts.begin(req, publish)
	return err
}

// deletePlan withdraws an app's plan under the watcher's lock, so a revert
// in flight cannot publish the plan again.
func (m *Mesh) deletePlan(app string) error {
	if m.rollouts != nil {
		m.rollouts.mu.Lock()
		defer m.rollouts.mu.Unlock()
	}
	return m.fabric.DeletePlan(app)
}

// progressDeadline is the rollout deadline of app from the configuration in
// force.
func (m *Mesh) progressDeadline(app string) time.Duration {
	cfg := m.Config()
	if a, ok := cfg.App(app); ok && a.ProgressDeadline > 0 {
		return a.ProgressDeadline
	}
	if cfg.ProgressDeadline > 0 {
		return cfg.ProgressDeadline
	}
	return config.DefaultProgressDeadline
}

// minHealthy is the min_healthy of app from the configuration in force.
func (m *Mesh) minHealthy(app string) time.Duration {
	cfg := m.Config()
	if a, ok := cfg.App(app); ok {
		return a.MinHealthy
	}
	return cfg.MinHealthy
}

// errNoRollouts is returned by the rollout calls of a mesh that has no store.
var errNoRollouts = errors.New("rollouts are not recorded by this mesh")

func (m *Mesh) needRollouts() error {
	if m.rollouts == nil {
		return errNoRollouts
	}
	return nil
}
