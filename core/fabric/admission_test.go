package fabric

import (
	"errors"
	"testing"
)

func TestAdmit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		claims AppClaims
		limits Limits
		node   string
		size   ClaimSize
		ok     bool
	}{
		{"no limits", AppClaims{"n1": {{CPU: 500}}}, Limits{}, "n2", ClaimSize{CPU: 500}, true},
		{"instance limit reached", AppClaims{"n1": {{}}, "n2": {{}}}, Limits{Instances: 2}, "n3", ClaimSize{}, false},
		{"successor on a node already counted", AppClaims{"n1": {{}}, "n2": {{}}}, Limits{Instances: 2}, "n2", ClaimSize{}, true},
		{"cpu raised past the budget", AppClaims{"n1": {{CPU: 600}}}, Limits{CPUmilli: 1000}, "n2", ClaimSize{CPU: 500}, false},
		{"node already over a lowered cpu budget", AppClaims{"n1": {{CPU: 600}}}, Limits{CPUmilli: 500}, "n1", ClaimSize{CPU: 300}, false},
		{"revoked claims still count as usage", AppClaims{"n1": {{Revoked: true}}}, Limits{Instances: 1}, "n2", ClaimSize{}, false},
		{"node beyond lowered limits", AppClaims{"n1": {{}}, "n2": {{}}}, Limits{Instances: 1}, "n2", ClaimSize{}, false},
		{"first node within lowered limits", AppClaims{"n1": {{}}, "n2": {{}}}, Limits{Instances: 1}, "n1", ClaimSize{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.claims.Admit("billing", tc.node, tc.limits, tc.size)
			if (err == nil) != tc.ok {
				t.Fatalf("Admit = %v, want ok %v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrBudgetExceeded) {
				t.Fatalf("refusal %v does not wrap ErrBudgetExceeded", err)
			}
		})
	}
}

func TestLimitsOf(t *testing.T) {
	for _, tc := range []struct {
		p       Plan
		hasPlan bool
		b       Budget
		want    Limits
	}{
		{Plan{Max: 3}, true, Budget{}, Limits{Instances: 3}},
		{Plan{Max: 3}, true, Budget{MaxInstances: 2, CPUmilli: 100}, Limits{Instances: 2, CPUmilli: 100}},
		{Plan{Max: 0}, true, Budget{MaxInstances: 4}, Limits{Instances: 4}},
		{Plan{Max: 3}, false, Budget{MemoryMB: 64}, Limits{MemoryMB: 64}},
	} {
		if got := LimitsOf(tc.p, tc.hasPlan, tc.b); got != tc.want {
			t.Errorf("LimitsOf(%+v, %v, %+v) = %+v, want %+v", tc.p, tc.hasPlan, tc.b, got, tc.want)
		}
	}
}
