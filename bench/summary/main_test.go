package main

import (
	"strings"
	"testing"
)

func TestSummaryMediansAndRatios(t *testing.T) {
	in := `pkg: github.com/mycelium-mesh/mesh/core/spore
BenchmarkPack-2   	 10	 100 ns/op	 300.00 MB/s
BenchmarkPack-2   	 10	 100 ns/op	 100.00 MB/s
BenchmarkPack-2   	 10	 100 ns/op	 200.00 MB/s
BenchmarkSHA256Sum-2	 10	 100 ns/op	 400.00 MB/s
`
	var b strings.Builder
	if err := run(strings.NewReader(in), &b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"core/spore", "BenchmarkPack", "200", "0.5x"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
