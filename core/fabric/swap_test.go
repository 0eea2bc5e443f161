package fabric

import (
	"errors"
	"strings"
	"testing"
)

func TestSwapPlan(t *testing.T) {
	d1, d2 := "sha256:"+strings.Repeat("1", 64), "sha256:"+strings.Repeat("2", 64)
	v1 := Plan{AppName: "billing", Digest: d1, Min: 1, Max: 3}
	deployed := v1
	deployed.Digest = d2
	tests := []struct {
		name     string
		existing *Plan
		old      *Plan
		wantErr  error
	}{
		{"new app", nil, nil, nil},
		{"new app, but one appeared", &v1, nil, ErrConflict},
		{"unchanged since read", &v1, &v1, nil},
		{"deployed since read", &deployed, &v1, ErrConflict},
		{"withdrawn since read", nil, &v1, ErrConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := New(Options{DataDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if tc.existing != nil {
				if err := f.PublishPlan(*tc.existing); err != nil {
					t.Fatal(err)
				}
			}
			next := v1
			next.Max = 2
			err = f.SwapPlan(tc.old, next)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("SwapPlan: %v, want %v", err, tc.wantErr)
			}
			got, ok := f.Plan("billing")
			switch {
			case tc.wantErr == nil && got != next:
				t.Fatalf("plan %+v, want %+v", got, next)
			case tc.wantErr != nil && tc.existing != nil && got != *tc.existing:
				t.Fatalf("a refused swap changed the plan to %+v", got)
			case tc.wantErr != nil && tc.existing == nil && ok:
				t.Fatalf("a refused swap created plan %+v", got)
			}
		})
	}
}
