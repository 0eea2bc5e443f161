package rollout

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTransitions(t *testing.T) {
	all := []State{Pending, Progressing, Reverting, Succeeded, Failed, Reverted, Superseded}
	allowed := map[[2]State]bool{
		{Pending, Progressing}: true, {Pending, Failed}: true, {Pending, Superseded}: true,
		{Progressing, Succeeded}: true, {Progressing, Reverting}: true, {Progressing, Failed}: true, {Progressing, Superseded}: true,
		{Reverting, Reverted}: true, {Reverting, Failed}: true, {Reverting, Superseded}: true,
	}
	now := time.Unix(1000, 0)
	for _, from := range all {
		if !from.Valid() {
			t.Errorf("%s not valid", from)
		}
		for _, to := range all {
			r := Rollout{ID: "a-1", State: from}
			err := r.To(to, now, "why")
			want := allowed[[2]State{from, to}]
			if want != (err == nil) {
				t.Errorf("%s → %s: err %v, allowed %v", from, to, err, want)
			}
			if err != nil {
				if !errors.Is(err, ErrTransition) || r.State != from {
					t.Errorf("%s → %s: refused move changed state or lost its error: %v %s", from, to, err, r.State)
				}
				continue
			}
			if to.Terminal() != !r.Ended.IsZero() {
				t.Errorf("%s → %s: Ended %v", from, to, r.Ended)
			}
		}
	}
	if State("ready").Valid() {
		t.Error(`"ready" is not a rollout state`)
	}
}

func TestStep(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const d1, d2 = "sha256:11", "sha256:22"
	ready := func(n int) Progress { return Progress{Desired: 3, Ready: n, Healthy: n} }
	tests := []struct {
		name    string
		r       Rollout
		obs     Observation
		at      time.Duration // after t0
		state   State
		publish string
		detail  string // substring of Detail
	}{
		{"pending resumes once the plan names it", Rollout{State: Pending, Digest: d2},
			Observation{PlanDigest: d2, Progress: ready(1), Starting: 2}, 0, Progressing, "", ""},
		{"pending never published fails, it was not superseded", Rollout{State: Pending, Digest: d2, LastGood: d1, AutoRevert: true},
			Observation{PlanDigest: d1, Progress: ready(3)}, 0, Failed, "", "never published"},
		{"pending of a removed app is superseded", Rollout{State: Pending, Digest: d2},
			Observation{}, 0, Superseded, "", "app was removed"},
		{"all ready succeeds", Rollout{State: Progressing, Digest: d2},
			Observation{PlanDigest: d2, Progress: ready(3)}, 0, Succeeded, "", ""},
		{"capped by a budget, converged", Rollout{State: Progressing, Digest: d2},
			Observation{PlanDigest: d2, Progress: ready(1), Claimed: 1}, 0, Succeeded, "", ""},
		{"old still serving elsewhere is not converged", Rollout{State: Progressing, Digest: d2},
			Observation{PlanDigest: d2, Progress: ready(1), Claimed: 1, ReadyOther: 1}, 0, Progressing, "", ""},
		{"failure while others start waits", Rollout{State: Progressing, Digest: d2, LastGood: d1, AutoRevert: true},
			Observation{PlanDigest: d2, Starting: 1, ReadyOther: 2, Failures: []string{"n1: boom"}}, 0, Progressing, "", ""},
		{"failure reverts to last good", Rollout{State: Progressing, Digest: d2, LastGood: d1, AutoRevert: true, Window: time.Minute},
			Observation{PlanDigest: d2, Failures: []string{"n1: unhealthy"}}, 0, Reverting, d1, "n1: unhealthy"},
		{"deadline reverts", Rollout{State: Progressing, Digest: d2, LastGood: d1, AutoRevert: true, Deadline: t0.Add(time.Second), Window: time.Second},
			Observation{PlanDigest: d2, Progress: ready(1), Starting: 2}, time.Second, Reverting, d1, "progress deadline"},
		{"before the deadline waits", Rollout{State: Progressing, Digest: d2, LastGood: d1, AutoRevert: true, Deadline: t0.Add(time.Second)},
			Observation{PlanDigest: d2, Starting: 3}, time.Second - 1, Progressing, "", ""},
		{"first deploy fails with nothing to revert to", Rollout{State: Progressing, Digest: d2, AutoRevert: true},
			Observation{PlanDigest: d2, Failures: []string{"n1: x"}}, 0, Failed, "", "no earlier good digest"},
		{"auto-revert off fails in place", Rollout{State: Progressing, Digest: d2, LastGood: d1},
			Observation{PlanDigest: d2, Failures: []string{"n1: x"}}, 0, Failed, "", "auto-revert is off"},
		{"revert done", Rollout{State: Reverting, Digest: d2, LastGood: d1, Detail: "n1: x"},
			Observation{PlanDigest: d1, Progress: ready(3)}, 0, Reverted, "", "reverted to " + d1},
		{"revert broken too", Rollout{State: Reverting, Digest: d2, LastGood: d1, Detail: "n1: x"},
			Observation{PlanDigest: d1, Failures: []string{"n2: y"}}, 0, Failed, "", "revert to " + d1 + " failed too"},
		{"plan replaced from outside", Rollout{State: Progressing, Digest: d2},
			Observation{PlanDigest: d1}, 0, Superseded, "", "plan now names " + d1},
		{"app removed", Rollout{State: Reverting, Digest: d2, LastGood: d1},
			Observation{}, 0, Superseded, "", "app was removed"},
		{"ready but still proving waits", Rollout{State: Progressing, Digest: d2, LastGood: d1, AutoRevert: true},
			Observation{PlanDigest: d2, Progress: Progress{Desired: 3, Ready: 1, Proving: 2}}, 0, Progressing, "", ""},
		{"proving does not count as converged", Rollout{State: Progressing, Digest: d2},
			Observation{PlanDigest: d2, Progress: Progress{Desired: 3, Ready: 0, Proving: 1}, Claimed: 1}, 0, Progressing, "", ""},
		{"a crash of a proving digest reverts though others prove", Rollout{State: Progressing, Digest: d2, LastGood: d1, AutoRevert: true, Window: time.Minute},
			Observation{PlanDigest: d2, Progress: Progress{Desired: 3, Proving: 2}, Failures: []string{"n1: exit status 3"}}, 0, Reverting, d1, "n1: exit status 3"},
		{"instances younger than MinHealthy are proving", Rollout{State: Progressing, Digest: d2, MinHealthy: 10 * time.Second},
			Observation{PlanDigest: d2, Progress: ready(3), ReadySince: []time.Time{t0, t0.Add(-5 * time.Second), t0.Add(-20 * time.Second)}}, 0, Progressing, "", ""},
		{"instances ready for MinHealthy succeed", Rollout{State: Progressing, Digest: d2, MinHealthy: 10 * time.Second},
			Observation{PlanDigest: d2, Progress: ready(3), ReadySince: []time.Time{t0, t0, t0}}, 10 * time.Second, Succeeded, "", ""},
		{"a crash while proving reverts", Rollout{State: Progressing, Digest: d2, LastGood: d1, AutoRevert: true, Window: time.Minute, MinHealthy: 10 * time.Second},
			Observation{PlanDigest: d2, Progress: ready(2), ReadySince: []time.Time{t0, t0}, Failures: []string{"n3: exit status 3"}}, time.Second, Reverting, d1, "n3: exit status 3"},
		{"a revert does not wait for MinHealthy", Rollout{State: Reverting, Digest: d2, LastGood: d1, MinHealthy: 10 * time.Second, Detail: "n1: x"},
			Observation{PlanDigest: d1, Progress: ready(3), ReadySince: []time.Time{t0, t0, t0}}, 0, Reverted, "", "reverted to " + d1},
		{"a failure with nothing of the app serving reverts at once", Rollout{State: Progressing, Digest: d2, LastGood: d1, AutoRevert: true, Window: time.Minute},
			Observation{PlanDigest: d2, Starting: 2, Failures: []string{"n1: not healthy"}}, 0, Reverting, d1, "nothing of the app serving"},
		{"a failure with the old version serving waits for the others", Rollout{State: Progressing, Digest: d2, LastGood: d1, AutoRevert: true},
			Observation{PlanDigest: d2, Starting: 2, ReadyOther: 3, Failures: []string{"n1: not healthy"}}, 0, Progressing, "", ""},
		{"a first rollout failing somewhere waits for the others", Rollout{State: Progressing, Digest: d2, AutoRevert: true},
			Observation{PlanDigest: d2, Starting: 2, Failures: []string{"n1: not healthy"}}, 0, Progressing, "", ""},
		{"terminal stays", Rollout{State: Failed, Digest: d2},
			Observation{PlanDigest: d2, Progress: ready(3)}, 0, Failed, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.r
			r.ID = "billing-1"
			now := t0.Add(tt.at)
			pub, err := r.Step(tt.obs, now)
			if err != nil {
				t.Fatal(err)
			}
			if r.State != tt.state || pub != tt.publish {
				t.Fatalf("state %s publish %q, want %s %q (detail %q)", r.State, pub, tt.state, tt.publish, r.Detail)
			}
			if !strings.Contains(r.Detail, tt.detail) {
				t.Fatalf("detail %q lacks %q", r.Detail, tt.detail)
			}
			if r.State == Reverting && !r.Deadline.Equal(now.Add(r.Window)) {
				t.Fatalf("revert deadline %v, want %v", r.Deadline, now.Add(r.Window))
			}
		})
	}
}

func TestLastGood(t *testing.T) {
	h := []Rollout{ // newest first
		{State: Failed, Digest: "c"},
		{State: Reverted, Digest: "c", LastGood: "b"},
		{State: Succeeded, Digest: "b"},
		{State: Succeeded, Digest: "a"},
	}
	for _, tt := range []struct{ except, want string }{{"c", "b"}, {"b", "a"}, {"a", "b"}} {
		if got := LastGood(h, tt.except); got != tt.want {
			t.Errorf("LastGood except %s = %q, want %q", tt.except, got, tt.want)
		}
	}
	if got := LastGood(h[:1], ""); got != "" {
		t.Errorf("no good rollout: got %q", got)
	}
}
