package rollout

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"
)

// TestLastGoodFromMemory drives a store through creates, saves, supersedes
// and prunes (keep 4) and checks after every write, and after reopening,
// that the in-memory answer equals the one read from the history.
func TestLastGoodFromMemory(t *testing.T) {
	digests := []string{"sha256:aa", "sha256:bb", "sha256:cc"}
	ends := []State{Succeeded, Failed, Reverted, Superseded}
	for _, seed := range []uint64{1, 2, 3, 4, 5} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "rollouts.db")
			s, err := Open(path, 4)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { s.Close() }()
			rnd := rand.New(rand.NewPCG(seed, 0))
			active := map[string]*Rollout{}
			check := func(step string) {
				t.Helper()
				for _, app := range []string{"billing", "search"} {
					h, err := s.History(app, 0)
					if err != nil {
						t.Fatal(err)
					}
					for _, except := range append(digests, "") {
						want := LastGood(h, except)
						if got := s.LastGood(app, except); got != want {
							t.Fatalf("%s: LastGood(%s, %q) = %q, history says %q", step, app, except, got, want)
						}
					}
				}
			}
			now := time.Unix(1000, 0)
			for i := 0; i < 60; i++ {
				app := []string{"billing", "search"}[rnd.IntN(2)]
				if old := active[app]; old != nil && rnd.IntN(2) == 0 {
					// End the active rollout on its own.
					end := ends[rnd.IntN(len(ends))]
					if end == Reverted {
						if err := old.To(Reverting, now, ""); err != nil {
							t.Fatal(err)
						}
					}
					if err := old.To(end, now, "done"); err != nil {
						t.Fatal(err)
					}
					if err := s.Save(*old); err != nil {
						t.Fatal(err)
					}
					delete(active, app)
					check(fmt.Sprintf("step %d: %s ended %s", i, old.ID, end))
					continue
				}
				d := digests[rnd.IntN(len(digests))]
				r := &Rollout{App: app, Digest: d, LastGood: digests[rnd.IntN(len(digests))], State: Progressing, Started: now}
				old := active[app]
				if err := s.Create(r, func(nr *Rollout) []Rollout {
					if old == nil {
						return nil
					}
					o := *old
					if err := o.To(Superseded, now, "superseded by "+nr.ID); err != nil {
						t.Fatal(err)
					}
					return []Rollout{o}
				}); err != nil {
					t.Fatal(err)
				}
				active[app] = r
				check(fmt.Sprintf("step %d: created %s", i, r.ID))
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if s, err = Open(path, 4); err != nil {
				t.Fatal(err)
			}
			check("after reopen")
		})
	}
}
