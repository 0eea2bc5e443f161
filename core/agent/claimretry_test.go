package agent

import (
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/fabric"
)

// countingStore counts the claims a node asks its fabric for.
type countingStore struct {
	fabric.Store
	claims atomic.Int64
}

func (s *countingStore) Acquire(app, node string, cpu, mem int) (*fabric.Lease, error) {
	s.claims.Add(1)
	return s.Store.Acquire(app, node, cpu, mem)
}

// A node refused because the app is at its instance limit asks the fabric
// for a claim again only once the fabric shows a free slot: while the app
// stays full its retries cost no claim (in a cluster, no etcd
// transaction), and a freed slot is still taken.
func TestRefusedNodeClaimsOnlyWhenASlotFrees(t *testing.T) {
	for _, tc := range []struct {
		name   string
		plan   fabric.Plan
		budget fabric.Budget
	}{
		{"plan max", fabric.Plan{Max: 1}, fabric.Budget{}},
		{"budget instances", fabric.Plan{Max: 3}, fabric.Budget{MaxInstances: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			d := e.spore("v1", nil)
			tc.budget.AppName = "billing"
			if err := e.fab.SetBudget(tc.budget); err != nil {
				t.Fatal(err)
			}
			first := e.startAgent("n1", nil)
			tc.plan.Digest, tc.plan.Restart = d, fabric.RestartNever
			e.publish(tc.plan)
			held := first.readyWith(t, "billing", d, 10*time.Second)

			counted := &countingStore{Store: e.fab}
			second := e.startAgent("n2", func(o *Options) { o.Fabric = counted })
			waitFor(t, 10*time.Second, "the second node refused", func() bool { return counted.claims.Load() >= 1 })
			// Two retry rounds while the app stays full: no claim.
			waitFor(t, 10*time.Second, "two retries without a claim", func() bool {
				return strings.Count(e.logs.String(), "no claim tried") >= 2
			})
			if n := counted.claims.Load(); n != 1 {
				t.Fatalf("the refused node asked for %d claims while the app was full, want 1", n)
			}

			// The slot frees (the workload dies for good): the node claims it.
			if err := syscall.Kill(held.PID, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			second.readyWith(t, "billing", d, 15*time.Second)
			if n := counted.claims.Load(); n < 2 {
				t.Fatalf("%d claims, want a second once the slot freed", n)
			}
		})
	}
}
