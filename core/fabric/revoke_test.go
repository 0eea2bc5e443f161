package fabric

import (
	"errors"
	"testing"
)

func revoked(l *Lease) bool {
	select {
	case <-l.Revoked():
		return true
	default:
		return false
	}
}

// Lowering an app's limits below what its claims hold revokes the claims of
// the nodes with the highest IDs, exactly as many as needed; the survivors
// keep their claims, may still claim a rollout successor, and the revoked
// nodes get a slot again once the limits allow it.
func TestLoweredLimitsRevokeHighestNodes(t *testing.T) {
	const cpu, mem = 100, 64
	tests := []struct {
		name string
		// limit sets the app's limits so that n instances of cpu/mem fit.
		limit func(f *Fabric, n int) error
	}{
		{"plan max", func(f *Fabric, n int) error {
			return f.PublishPlan(Plan{AppName: "app", Digest: digest(1), Max: n})
		}},
		{"budget instances", func(f *Fabric, n int) error {
			return f.SetBudget(Budget{AppName: "app", MaxInstances: n})
		}},
		{"budget cpu", func(f *Fabric, n int) error {
			return f.SetBudget(Budget{AppName: "app", CPUmilli: n*cpu + cpu/2})
		}},
		{"budget memory", func(f *Fabric, n int) error {
			return f.SetBudget(Budget{AppName: "app", MemoryMB: n * mem})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFabric(t, "")
			if err := f.PublishPlan(Plan{AppName: "app", Digest: digest(1)}); err != nil {
				t.Fatal(err)
			}
			if err := tc.limit(f, 3); err != nil {
				t.Fatal(err)
			}
			leases := map[string]*Lease{}
			// Claimed out of ID order: the order of claims must not matter.
			for _, n := range []string{"n3", "n1", "n2"} {
				l, err := f.Acquire("app", n, cpu, mem)
				if err != nil {
					t.Fatalf("claim on %s: %v", n, err)
				}
				leases[n] = l
			}
			check := func(step string, want map[string]bool) {
				t.Helper()
				for n, l := range leases {
					if got := revoked(l); got != want[n] {
						t.Fatalf("%s: lease of %s revoked=%v, want %v", step, n, got, want[n])
					}
				}
			}
			check("at the limit", nil)

			if err := tc.limit(f, 2); err != nil {
				t.Fatal(err)
			}
			check("limit 2", map[string]bool{"n3": true})
			if u := f.Usage("app"); u.Instances != 3 {
				t.Fatalf("usage %+v: a revoked claim counts until it is released", u)
			}
			if _, err := f.Acquire("app", "n3", cpu, mem); !errors.Is(err, ErrBudgetExceeded) {
				t.Fatalf("new claim of the node in excess: %v, want ErrBudgetExceeded", err)
			}
			succ, err := f.Acquire("app", "n1", cpu, mem)
			if err != nil {
				t.Fatalf("rollout successor on a surviving node: %v", err)
			}
			leases["n1"].Release()
			leases["n1"] = succ
			leases["n3"].Release()
			leases["n3"].Release()
			if _, err := f.Acquire("app", "n3", cpu, mem); !errors.Is(err, ErrBudgetExceeded) {
				t.Fatalf("claim above limit 2 after the release: %v, want ErrBudgetExceeded", err)
			}
			delete(leases, "n3")
			check("n3 released", nil)

			if err := tc.limit(f, 1); err != nil {
				t.Fatal(err)
			}
			check("limit 1", map[string]bool{"n2": true})
			leases["n2"].Release()
			delete(leases, "n2")
			if u := f.Usage("app"); u.Instances != 1 || u.CPUmilli != cpu || u.MemoryMB != mem {
				t.Fatalf("usage %+v at limit 1", u)
			}

			if err := tc.limit(f, 3); err != nil {
				t.Fatal(err)
			}
			for _, n := range []string{"n2", "n3"} {
				l, err := f.Acquire("app", n, cpu, mem)
				if err != nil {
					t.Fatalf("claim on %s after the limit was raised: %v", n, err)
				}
				leases[n] = l
			}
			check("raised again", nil)
			if _, err := f.Acquire("app", "n4", cpu, mem); !errors.Is(err, ErrBudgetExceeded) {
				t.Fatalf("fourth node at limit 3: %v, want ErrBudgetExceeded", err)
			}
		})
	}
}

// A lowered limit revokes the claims of a node that the lower IDs push out,
// even when its own claim is small, and revokes every claim of that node,
// a rollout successor included.
func TestRevokeIsByNodeOrder(t *testing.T) {
	f := newFabric(t, "")
	if err := f.PublishPlan(Plan{AppName: "app", Digest: digest(1)}); err != nil {
		t.Fatal(err)
	}
	claim := func(node string, cpu int) *Lease {
		t.Helper()
		l, err := f.Acquire("app", node, cpu, 0)
		if err != nil {
			t.Fatalf("claim %s: %v", node, err)
		}
		return l
	}
	a, b, c := claim("a", 300), claim("b", 100), claim("c", 100)
	c2 := claim("c", 100) // successor of c
	other, err := f.Acquire("other", "c", 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	// 500m: a and b fit (400m), c does not.
	if err := f.SetBudget(Budget{AppName: "app", CPUmilli: 450}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		l    *Lease
		want bool
	}{{"a", a, false}, {"b", b, false}, {"c", c, true}, {"c successor", c2, true}, {"other app", other, false}} {
		if got := revoked(tc.l); got != tc.want {
			t.Errorf("%s revoked=%v, want %v", tc.name, got, tc.want)
		}
	}
	// Below a's own size: every node is in excess.
	if err := f.SetBudget(Budget{AppName: "app", CPUmilli: 200}); err != nil {
		t.Fatal(err)
	}
	if !revoked(a) || !revoked(b) {
		t.Errorf("budget below the first node: a revoked=%v b revoked=%v, want both", revoked(a), revoked(b))
	}
	// A lease released before the limits drop is never revoked.
	if err := f.SetBudget(Budget{AppName: "app"}); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*Lease{a, b, c, c2} {
		l.Release()
	}
	d := claim("d", 100)
	d.Release()
	if err := f.SetBudget(Budget{AppName: "app", MaxInstances: 1}); err != nil {
		t.Fatal(err)
	}
	if revoked(d) {
		t.Error("a released lease was revoked")
	}
}
