package rollout

import (
	"fmt"
	"strings"
	"time"
)

// Observation is what the mesh sees of one app's instances of one digest
// at a moment.
type Observation struct {
	// PlanDigest is the digest the app's plan names now.
	PlanDigest string
	// Progress counts the instances as the mesh sees them; Step moves the
	// ready ones younger than the rollout's MinHealthy (see ReadySince)
	// from Ready to Proving.
	Progress Progress
	// ReadySince holds, for each ready instance of the digest, when it
	// became ready.
	ReadySince []time.Time
	// Starting counts instances of the digest still before their health gate.
	Starting int
	// ReadyOther counts ready instances of any other digest of the app.
	ReadyOther int
	// Claimed is how many instance slots the app holds in the fabric.
	Claimed int
	// Failures describes instances of the digest that failed since the step
	// began, one "node: reason" each.
	Failures []string
}

// Verdict is what an observation says of a digest.
type Verdict int

// The verdicts of Judge.
const (
	Waiting Verdict = iota // still on its way
	Done                   // serving as desired
	Broken                 // failed on some node with nothing left starting
)

// Judge says whether the digest observed in o is serving, broken or still
// on its way, with a reason when broken.
//
// It is done when the desired number of instances is ready, or when it has
// converged below that: nothing of the digest is still starting, no instance
// of another digest is ready, and every claimed slot holds a ready instance
// (a CPU or memory budget can cap an app below one instance per node). It is
// broken when an instance of it failed and none is starting any more: blue/
// green keeps the previous version serving on those nodes. An instance that
// passed its health gate but has not stayed ready for the rollout's
// MinHealthy (Progress.Proving) is not ready yet, and does not hold off a
// failure: a version that turns healthy and then crashes is broken.
func Judge(o Observation) (Verdict, string) {
	p := o.Progress
	converged := o.Starting == 0 && p.Proving == 0 && o.ReadyOther == 0 && p.Ready > 0 && p.Ready >= o.Claimed
	switch {
	case p.Desired > 0 && p.Ready >= p.Desired, converged:
		return Done, ""
	case o.Starting == 0 && len(o.Failures) > 0:
		return Broken, fmt.Sprintf("%d node(s) failed: %s", len(o.Failures), strings.Join(o.Failures, "; "))
	}
	return Waiting, ""
}

// Step advances an active rollout on what o observed of the digest it waits
// for (see Waits) at now, and returns the digest the plan must name from now
// on when that changes (a revert), else "". A rollout whose app's plan names
// another digest than the one it waits for was replaced from outside and is
// superseded.
func (r *Rollout) Step(o Observation, now time.Time) (publish string, err error) {
	if r.State.Terminal() {
		return "", nil
	}
	want := r.Waits()
	if r.State != Reverting && r.MinHealthy > 0 {
		for _, t := range o.ReadySince {
			if now.Sub(t) < r.MinHealthy && o.Progress.Ready > 0 {
				o.Progress.Ready--
				o.Progress.Proving++
			}
		}
	}
	r.Progress = o.Progress
	if r.State == Pending && o.PlanDigest != want && o.PlanDigest != "" {
		// Pending is recorded before the plan is published and left in
		// memory right after: a stored one whose plan does not name it was
		// never published, because the mesh stopped in between.
		return "", r.To(Failed, now, "never published: the mesh stopped before the plan named "+r.Digest+"; nothing changed, start it again")
	}
	if o.PlanDigest != want {
		return "", r.To(Superseded, now, "the plan now names "+orNone(o.PlanDigest))
	}
	if r.State == Pending {
		if err := r.To(Progressing, now, ""); err != nil {
			return "", err
		}
	}
	v, why := Judge(o)
	if v == Waiting && r.State == Progressing && r.AutoRevert && r.LastGood != "" && len(o.Failures) > 0 &&
		o.ReadyOther == 0 && o.Progress.Ready == 0 && o.Progress.Proving == 0 {
		// Nothing of the app serves (a mesh restarted mid-rollout starts
		// every instance afresh, with no old version beside the new one):
		// waiting for the instances still starting costs the app its
		// availability, and the digest has already failed somewhere.
		v = Broken
		why = fmt.Sprintf("%d node(s) failed with nothing of the app serving: %s", len(o.Failures), strings.Join(o.Failures, "; "))
	}
	if v == Waiting && !r.Deadline.IsZero() && !now.Before(r.Deadline) {
		v = Broken
		why = fmt.Sprintf("progress deadline of %s passed with %d/%d ready", r.Window, o.Progress.Ready, o.Progress.Desired)
	}
	switch {
	case v == Waiting:
		return "", nil
	case v == Done && r.State == Progressing:
		return "", r.To(Succeeded, now, "")
	case v == Done: // Reverting
		return "", r.To(Reverted, now, fmt.Sprintf("%s; reverted to %s", r.Detail, r.LastGood))
	case r.State == Reverting:
		return "", r.To(Failed, now, fmt.Sprintf("%s; the revert to %s failed too: %s", r.Detail, r.LastGood, why))
	case !r.AutoRevert:
		return "", r.To(Failed, now, why+"; auto-revert is off, the plan still names "+r.Digest)
	case r.LastGood == "":
		return "", r.To(Failed, now, why+"; no earlier good digest to revert to")
	}
	if err := r.To(Reverting, now, why); err != nil {
		return "", err
	}
	r.Deadline = now.Add(r.Window)
	return r.LastGood, nil
}

func orNone(d string) string {
	if d == "" {
		return "none (the app was removed)"
	}
	return d
}
