package main

import (
	"reflect"
	"testing"
)

func TestRotation(t *testing.T) {
	// Over n rounds every target runs once in every position.
	const n = 4
	pos := map[[2]int]bool{}
	for r := 0; r < n; r++ {
		o := rotation(n, r)
		for p, i := range o {
			pos[[2]int{i, p}] = true
		}
	}
	if len(pos) != n*n {
		t.Fatalf("%d of %d (target, position) pairs covered", len(pos), n*n)
	}
	if got := rotation(3, 1); !reflect.DeepEqual(got, []int{1, 2, 0}) {
		t.Fatalf("rotation(3,1) = %v", got)
	}
}

func TestSpreadAndRatios(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    []float64
		want spread
	}{
		{"one", []float64{5}, spread{5, 5, 5}},
		{"odd", []float64{3, 1, 2}, spread{2, 1, 3}},
		{"even", []float64{4, 1, 3, 2}, spread{2.5, 1, 4}},
		{"none", nil, spread{}},
	} {
		if got := spreadOf(tc.v); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
	// Ratios pair rounds; a failed round (0) on either side drops out.
	sp, ok := ratioSpread([]float64{10, 20, 0, 30}, []float64{5, 5, 5, 0})
	if !ok || sp != (spread{3, 2, 4}) {
		t.Fatalf("got %+v %v, want median 3 range 2-4", sp, ok)
	}
	if _, ok := ratioSpread([]float64{1}, []float64{0}); ok {
		t.Fatal("ratio against a failed reference")
	}
}

func TestCountNames(t *testing.T) {
	if got := countNames([]string{"nginx", "nginx", "nginx"}); got != "nginx x3" {
		t.Fatalf("got %q", got)
	}
	if got := countNames([]string{"edgebench", "mesh"}); got != "edgebench, mesh" {
		t.Fatalf("got %q", got)
	}
}
