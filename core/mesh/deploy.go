package mesh

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/repo"
	"github.com/mycelium-mesh/mesh/core/rollout"
)

// DeployRequest asks for a rollout of App to Digest.
type DeployRequest struct {
	App    string `json:"app"`
	Digest string `json:"digest"`
	// AutoRevert, when not false, has the mesh put the last good digest back
	// if the rollout fails or misses its deadline. Absent means true.
	AutoRevert *bool `json:"auto_revert,omitempty"`
	// Who started it; the control API sets it from the caller.
	Who string `json:"-"`
}

// DeployResult is what a deploy changed.
type DeployResult struct {
	Plan     fabric.Plan     `json:"plan"`
	Previous string          `json:"previous"` // the digest the plan named before
	Rollout  rollout.Rollout `json:"rollout"`  // follow it with RolloutByID
}

// Deploy starts a rollout of app to digest, keeping the rest of its plan,
// with auto-revert on. See StartRollout.
func (m *Mesh) Deploy(ctx context.Context, app, digest string) (DeployResult, error) {
	return m.StartRollout(ctx, DeployRequest{App: app, Digest: digest})
}

// StartRollout publishes a new digest for an app as a rollout the mesh then
// follows on its own. The spore must be in the repo and verify against the
// trusted keys: a plan never names a spore no agent would run. A digest
// already verified against the same trusted keys, whose repo file is
// unchanged since, is not hashed again (see spore.VerifyCache).
func (m *Mesh) StartRollout(ctx context.Context, req DeployRequest) (DeployResult, error) {
	return m.startRollout(ctx, req, rollout.ByDeploy)
}

func (m *Mesh) startRollout(ctx context.Context, req DeployRequest, trigger rollout.Trigger) (DeployResult, error) {
	if err := m.needRollouts(); err != nil {
		return DeployResult{}, err
	}
	digest, err := repo.NormalizeDigest(req.Digest)
	if err != nil {
		return DeployResult{}, err
	}
	p, ok := m.fabric.Plan(req.App)
	if !ok {
		return DeployResult{}, fmt.Errorf("%w: %q", ErrUnknownApp, req.App)
	}
	path, err := m.repo.PathContext(ctx, digest)
	if err != nil {
		return DeployResult{}, err
	}
	man, err := m.verified.Verify(digest, path, m.trustedKeys())
	if err != nil {
		return DeployResult{}, fmt.Errorf("%w: %s: %s", ErrRefused, digest, verifyCause(err, path))
	}
	prev := p.Digest
	p.Digest = digest
	start := rolloutStart{
		App: req.App, Digest: digest, Version: man.Identity.Version, Previous: prev,
		Trigger: trigger, Who: req.Who, AutoRevert: req.AutoRevert == nil || *req.AutoRevert,
	}
	if start.Who == "" {
		start.Who = "api"
	}
	r, err := m.rollouts.begin(start, func() error {
		// The plan as it is now, under the watcher's lock: a reload may
		// have changed the rest of it since it was read above.
		if cur, ok := m.fabric.Plan(req.App); ok {
			p = cur
			p.Digest = digest
		}
		m.markPublished(req.App)
		return m.fabric.PublishPlan(p)
	})
	if err != nil {
		return DeployResult{}, fmt.Errorf("publish plan for %q: %w", req.App, err)
	}
	m.log.Info("deploy", "app", req.App, "digest", digest, "previous", prev, "rollout", r.ID)
	return DeployResult{Plan: p, Previous: prev, Rollout: r}, nil
}

// ErrNoTarget is returned by Rollback when nothing in the app's history
// matches.
var ErrNoTarget = errors.New("no rollback target")

// Rollback starts a rollout of app back to an earlier digest: to names a
// digest (sha256:... or bare hex) or a manifest version found in the app's
// history; "" means the newest good digest other than the one the plan
// names now.
func (m *Mesh) Rollback(ctx context.Context, app, to, who string) (DeployResult, error) {
	if err := m.needRollouts(); err != nil {
		return DeployResult{}, err
	}
	p, ok := m.fabric.Plan(app)
	if !ok {
		return DeployResult{}, fmt.Errorf("%w: %q", ErrUnknownApp, app)
	}
	hist, err := m.rollouts.history(app, 0)
	if err != nil {
		return DeployResult{}, err
	}
	target, err := rollbackTarget(hist, p.Digest, to)
	if err != nil {
		return DeployResult{}, fmt.Errorf("roll back %s: %w", app, err)
	}
	return m.startRollout(ctx, DeployRequest{App: app, Digest: target, Who: who}, rollout.ByRollback)
}

// rollbackTarget picks the digest a rollback goes to from hist (newest
// first): see Rollback.
func rollbackTarget(hist []rollout.Rollout, current, to string) (string, error) {
	if to == "" {
		if d := rollout.LastGood(hist, current); d != "" {
			return d, nil
		}
		return "", fmt.Errorf("%w: no good digest other than %s in the history", ErrNoTarget, current)
	}
	if d, err := repo.NormalizeDigest(to); err == nil {
		return d, nil
	}
	// A version: the newest rollout of it that proved good, else the newest
	// rollout of it at all.
	var fallback string
	for _, r := range hist {
		if r.Version != to {
			continue
		}
		if r.State == rollout.Succeeded {
			return r.Digest, nil
		}
		if fallback == "" {
			fallback = r.Digest
		}
	}
	if fallback != "" {
		return fallback, nil
	}
	if strings.HasPrefix(to, "sha256:") {
		return "", fmt.Errorf("%w: %q is not a valid digest", repo.ErrBadDigest, to)
	}
	return "", fmt.Errorf("%w: version %q is not in the history", ErrNoTarget, to)
}

// RolloutByID returns one rollout.
func (m *Mesh) RolloutByID(id string) (rollout.Rollout, error) {
	if err := m.needRollouts(); err != nil {
		return rollout.Rollout{}, err
	}
	return m.rollouts.get(id)
}

// History returns up to n rollouts of app (all kept ones when n <= 0),
// newest first.
func (m *Mesh) History(app string, n int) ([]rollout.Rollout, error) {
	if err := m.needRollouts(); err != nil {
		return nil, err
	}
	h, err := m.rollouts.history(app, n)
	if err != nil {
		return nil, err
	}
	if _, ok := m.fabric.Plan(app); !ok && len(h) == 0 {
		return nil, fmt.Errorf("%w: %q", ErrUnknownApp, app)
	}
	return h, nil
}
