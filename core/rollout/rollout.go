// Package rollout holds the server-side rollout object of a mesh: one
// attempt to move an app from the digest it runs to another one, with a
// typed state, its progress, a deadline and the last good digest it falls
// back to.
//
// # States
//
// A rollout is created Pending, before the plan names its digest, and moves
// to Progressing once the plan is published. From there:
//
//	Progressing → Succeeded   the new digest reached the desired instances,
//	                          each ready for at least MinHealthy
//	Progressing → Reverting   it failed or missed its deadline and auto-revert
//	                          is on with a last good digest to go back to: the
//	                          plan names that digest again
//	Reverting   → Reverted    the last good digest is serving again
//	Progressing → Failed      it failed with nothing to revert to (the first
//	                          deploy of an app) or auto-revert off
//	Reverting   → Failed      the last good digest did not come back either
//	Pending     → Failed      the mesh stopped before it published the plan
//	any active  → Superseded  another rollout of the app replaced it
//
// Succeeded, Failed, Reverted and Superseded are terminal. Step applies what
// an observation of the app says to an active rollout; it is pure, so the
// whole machine is tested without processes. The mesh's watcher owns the
// rollouts, observes the agents and persists every change in a Store, so a
// rollout in progress when the mesh stops is resumed when it starts again.
package rollout

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// State is where a rollout stands.
type State string

// The states of a rollout; see the package documentation.
const (
	Pending     State = "pending"
	Progressing State = "progressing"
	Reverting   State = "reverting"
	Succeeded   State = "succeeded"
	Failed      State = "failed"
	Reverted    State = "reverted"
	Superseded  State = "superseded"
)

// transitions lists, per active state, the states it may move to.
var transitions = map[State][]State{
	Pending:     {Progressing, Failed, Superseded},
	Progressing: {Succeeded, Reverting, Failed, Superseded},
	Reverting:   {Reverted, Failed, Superseded},
}

// Terminal reports whether s is final: nothing moves a rollout out of it.
func (s State) Terminal() bool {
	switch s {
	case Succeeded, Failed, Reverted, Superseded:
		return true
	}
	return false
}

// Valid reports whether s is one of the declared states.
func (s State) Valid() bool {
	_, active := transitions[s]
	return active || s.Terminal()
}

// CanMove reports whether a rollout in state s may move to next.
func (s State) CanMove(next State) bool {
	return slices.Contains(transitions[s], next)
}

// Trigger says what started a rollout.
type Trigger string

// The triggers of a rollout.
const (
	ByDeploy   Trigger = "deploy"   // the control API's deploy
	ByConfig   Trigger = "config"   // an app block applied with a new digest
	ByRollback Trigger = "rollback" // the control API's rollback
	BySite     Trigger = "site"     // a site hosted as an app released new files
)

// Progress counts the instances of the digest a rollout waits for.
type Progress struct {
	Desired int `json:"desired"` // instances the mesh aims for
	Ready   int `json:"ready"`   // instances past their health gate
	Healthy int `json:"healthy"` // ready instances registered in the fabric, taking traffic (proving ones too)
	// Proving counts instances past their health gate that have not yet
	// stayed ready for the rollout's MinHealthy; they are not in Ready.
	Proving int `json:"proving,omitempty"`
}

// Rollout is one attempt to move an app to a digest.
type Rollout struct {
	ID      string  `json:"id"` // "<app>-<sequence>", unique in a mesh's data dir
	Seq     uint64  `json:"seq"`
	App     string  `json:"app"`
	Digest  string  `json:"digest"`            // the digest rolled out
	Version string  `json:"version,omitempty"` // identity.version of its manifest
	Trigger Trigger `json:"trigger"`
	// Previous is the digest the plan named when the rollout started.
	Previous string `json:"previous,omitempty"`
	// LastGood is the digest a failed rollout reverts to: the newest digest
	// of the app known to have served, other than Digest; "" when there is
	// none (the first deploy of an app).
	LastGood   string `json:"last_good,omitempty"`
	AutoRevert bool   `json:"auto_revert"`
	// Who started it: "user (uid N)" of a unix-socket caller, "token" for
	// the TCP listener, "config" for an app block.
	Who      string    `json:"who"`
	State    State     `json:"state"`
	Progress Progress  `json:"progress"`
	Deadline time.Time `json:"deadline"` // when the step in progress (rolling out or reverting) counts as failed
	// Window is the progress deadline the rollout was given, for a revert
	// step and for a resume.
	Window time.Duration `json:"window_ns"`
	// MinHealthy is how long an instance of Digest must stay ready to count
	// as ready while the rollout progresses; one failing before then fails
	// the rollout. Zero counts it at its health gate.
	MinHealthy time.Duration `json:"min_healthy_ns,omitempty"`
	Started    time.Time     `json:"started"`
	Ended      time.Time     `json:"ended,omitzero"`
	// Detail says why it ended the way it did: the failure, the revert, the
	// rollout that superseded it.
	Detail string `json:"detail,omitempty"`
}

// ErrTransition is returned for a move the state machine does not allow.
var ErrTransition = errors.New("rollout: transition not allowed")

// To moves r to next at now, recording detail when it is not empty. A move
// to a terminal state sets Ended.
func (r *Rollout) To(next State, now time.Time, detail string) error {
	if !r.State.CanMove(next) {
		return fmt.Errorf("%w: %s %s → %s", ErrTransition, r.ID, r.State, next)
	}
	r.State = next
	if detail != "" {
		r.Detail = detail
	}
	if next.Terminal() {
		r.Ended = now
	}
	return nil
}

// Duration is how long r ran, or has run so far at now.
func (r *Rollout) Duration(now time.Time) time.Duration {
	if !r.Ended.IsZero() {
		return r.Ended.Sub(r.Started)
	}
	return now.Sub(r.Started)
}

// Waits returns the digest r waits for: its own while progressing, the last
// good one while reverting, "" once it is over.
func (r *Rollout) Waits() string {
	switch r.State {
	case Pending, Progressing:
		return r.Digest
	case Reverting:
		return r.LastGood
	}
	return ""
}

// Good returns the digest r proved able to serve, or "": its own when it
// succeeded, the one it went back to when it reverted.
func (r *Rollout) Good() string {
	switch r.State {
	case Succeeded:
		return r.Digest
	case Reverted:
		return r.LastGood
	}
	return ""
}

// LastGood returns the newest digest other than except that one of the
// rollouts in history (newest first) proved good, or "".
func LastGood(history []Rollout, except string) string {
	for _, r := range history {
		if g := r.Good(); g != "" && g != except {
			return g
		}
	}
	return ""
}
