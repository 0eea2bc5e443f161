package fabric

import (
	"context"
	"testing"
)

// TestPublishSamePlanWritesNothing publishes plans in turn and checks which
// reached the disk: the plan in force published again is handed to the
// subscribers but costs no write, a changed one is written, and what is on
// disk after a reopen is the last plan published.
func TestPublishSamePlanWritesNothing(t *testing.T) {
	dir := t.TempDir()
	f := newFabric(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub := f.Subscribe(ctx)
	base := Plan{AppName: "billing", Digest: digest(1), Min: 1, Max: 3}
	changed := base
	changed.Digest = digest(2)
	steps := []struct {
		name  string
		plan  Plan
		write bool
	}{
		{"new app", base, true},
		{"same plan", base, false},
		{"same plan again", base, false},
		{"new digest", changed, true},
		{"back to the first", base, true},
		{"new max", Plan{AppName: "billing", Digest: digest(1), Min: 1, Max: 4}, true},
		{"unchanged", Plan{AppName: "billing", Digest: digest(1), Min: 1, Max: 4}, false},
	}
	writes := func() int64 {
		st := f.db.Stats()
		return st.TxStats.GetWrite()
	}
	for _, s := range steps {
		before := writes()
		if err := f.PublishPlan(s.plan); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		wrote := writes() > before
		if wrote != s.write {
			t.Errorf("%s: wrote %v, want %v", s.name, wrote, s.write)
		}
		if got := recvPlan(t, sub); got != s.plan {
			t.Errorf("%s: subscriber got %+v, want %+v", s.name, got, s.plan)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	g := newFabric(t, dir)
	want := steps[len(steps)-1].plan
	if got, ok := g.Plan("billing"); !ok || got != want {
		t.Fatalf("after reopen: %+v %v, want %+v", got, ok, want)
	}
}
