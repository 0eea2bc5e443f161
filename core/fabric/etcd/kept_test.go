package etcd_test

import (
	"errors"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/fabric/fabrictest"
	"github.com/mycelium-mesh/mesh/internal/etcdtest"
)

// TestKeptClaimTakenOver: an agent that stops leaving its workload running
// for its next run keeps the workload's claim. Until the next run of the
// same node claims the app again, the slot stays taken (another node is
// refused); the next run's claim takes the kept one over without counting
// twice; a kept claim that no next run takes over expires with the lease.
// Before, the stopping agent gave the claim back, and another host took
// the slot of the workload it was about to adopt.
func TestKeptClaimTakenOver(t *testing.T) {
	c := etcdtest.Start(t, 1)
	prefix := newPrefix()
	first := open(t, c.Endpoints(), prefix)
	other := open(t, c.Endpoints(), prefix)
	for _, app := range []string{"web", "api"} {
		if err := first.PublishPlan(fabric.Plan{AppName: app, Digest: fabrictest.Digest(1), Max: 1}); err != nil {
			t.Fatal(err)
		}
		l, err := first.Acquire(app, "h1", 100, 64)
		if err != nil {
			t.Fatal(err)
		}
		l.Keep()
		l.Release() // a no-op after Keep
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Acquire("web", "h2", 100, 64); !errors.Is(err, fabric.ErrBudgetExceeded) {
		t.Fatalf("another node claimed web while its slot was kept: %v", err)
	}

	next := open(t, c.Endpoints(), prefix)
	l, err := next.Acquire("web", "h1", 100, 64)
	if err != nil {
		t.Fatalf("the next run of h1 was refused its kept slot: %v", err)
	}
	if u := next.Usage("web"); u.Instances != 1 {
		t.Fatalf("web holds %d instances after the takeover, want 1", u.Instances)
	}
	if _, err := other.Acquire("web", "h2", 100, 64); !errors.Is(err, fabric.ErrBudgetExceeded) {
		t.Fatalf("another node claimed web after the takeover: %v", err)
	}
	l.Release()
	if _, err := other.Acquire("web", "h2", 100, 64); err != nil {
		t.Fatalf("web's slot not free after the next run released it: %v", err)
	}

	// api's kept claim is never taken over: it goes with the first run's
	// lease, which nothing keeps alive.
	deadline := time.Now().Add(3*leaseTTL + 10*time.Second)
	for {
		_, err := other.Acquire("api", "h2", 100, 64)
		if err == nil {
			break
		}
		if !errors.Is(err, fabric.ErrBudgetExceeded) || time.Now().After(deadline) {
			t.Fatalf("api's kept claim did not expire with its lease: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
