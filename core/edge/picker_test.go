package edge

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mycelium-mesh/mesh/sdk"
)

func testEndpoints(n int) []*endpoint {
	eps := make([]*endpoint, n)
	for i := range eps {
		eps[i] = &endpoint{id: string(rune('a' + i))}
	}
	return eps
}

func sequence(p *picker, rr *atomic.Uint64, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(p.pick(rr, nil).id)
	}
	return b.String()
}

func TestSmoothWeightedRoundRobin(t *testing.T) {
	cases := []struct {
		name    string
		weights []uint64
		want    string // one full cycle
	}{
		{"equal weights rotate exactly", []uint64{1, 1, 1}, "abc"},
		{"equal large weights reduce", []uint64{700, 700, 700}, "abc"},
		{"smooth 5:1:1", []uint64{5, 1, 1}, "aabacaa"},
		{"2:1", []uint64{200, 100}, "aba"},
		{"zero weight is out", []uint64{1, 0, 1}, "ac"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPicker(sdk.ModeRoundRobin, testEndpoints(len(tc.weights)), tc.weights, 50)
			var rr atomic.Uint64
			if got := sequence(p, &rr, 3*len(tc.want)); got != strings.Repeat(tc.want, 3) {
				t.Errorf("got %s, want cycles of %s", got, tc.want)
			}
		})
	}
}

func TestPickerCapsCycle(t *testing.T) {
	p := newPicker(sdk.ModeRoundRobin, testEndpoints(3), []uint64{1 << 30, 1, 7}, 50)
	if len(p.seq) > maxSeq+3 {
		t.Fatalf("cycle of %d picks", len(p.seq))
	}
	counts := map[string]int{}
	var rr atomic.Uint64
	for _, r := range sequence(p, &rr, len(p.seq)) {
		counts[string(r)]++
	}
	if counts["b"] < 1 || counts["c"] < 1 || counts["a"] < 4000 {
		t.Errorf("scaled weights lost an endpoint or the heavy one: %v", counts)
	}
}

func TestPickSkipsEjectedAndTried(t *testing.T) {
	for _, mode := range []sdk.PickMode{sdk.ModeRoundRobin, sdk.ModeP2C} {
		t.Run(string(mode), func(t *testing.T) {
			eps := testEndpoints(3)
			p := newPicker(mode, eps, []uint64{1, 1, 1}, 50)
			var rr atomic.Uint64
			eps[1].ejected.Store(true)
			for i := 0; i < 100; i++ {
				if got := p.pick(&rr, nil); got == eps[1] {
					t.Fatal("picked an ejected endpoint")
				}
				if got := p.pick(&rr, []*endpoint{eps[0]}); got != eps[2] {
					t.Fatalf("with a tried and b ejected, picked %s", got.id)
				}
			}
			// Everything else tried: an ejected endpoint beats none.
			if got := p.pick(&rr, []*endpoint{eps[0], eps[2]}); got != eps[1] {
				t.Fatalf("want the ejected endpoint as last resort, got %v", got)
			}
			if got := p.pick(&rr, eps); got != nil {
				t.Fatalf("all tried, picked %s", got.id)
			}
		})
	}
}

func TestP2CPrefersLessLoaded(t *testing.T) {
	eps := testEndpoints(2)
	p := newPicker(sdk.ModeP2C, eps, []uint64{100, 100}, 50)
	eps[0].inFlight.Store(10)
	var rr atomic.Uint64
	for i := 0; i < 50; i++ {
		if got := p.pick(&rr, nil); got != eps[1] {
			t.Fatalf("picked %s with 10 in flight over an idle one", got.id)
		}
	}
	// Weight divides load: 10 in flight at weight 100 beats 2 at weight 10.
	p = newPicker(sdk.ModeP2C, eps, []uint64{100, 10}, 50)
	eps[1].inFlight.Store(2)
	for i := 0; i < 50; i++ {
		if got := p.pick(&rr, nil); got != eps[0] {
			t.Fatalf("picked %s; load/weight favours a", got.id)
		}
	}
}

func TestParseRoute(t *testing.T) {
	cases := []struct {
		in, app, cleaned, rest string
		ok                     bool
	}{
		{"/", "", "/", "/", true},
		{"", "", "/", "/", true},
		{"/billing", "billing", "/billing", "/", true},
		{"/billing/", "billing", "/billing/", "/", true},
		{"/billing/a/b", "billing", "/billing/a/b", "/a/b", true},
		{"/billing/a%2Fb", "billing", "/billing/a%2Fb", "/a%2Fb", true},
		{"/billing/../admin/x", "admin", "/admin/x", "/x", true},
		{"/billing/./a/.", "billing", "/billing/a/", "/a/", true},
		{"/../../etc", "etc", "/etc", "/", true},
		{"/bil%6Cing/x", "billing", "/bil%6Cing/x", "/x", true},
		{"/a%2Fb/x", "", "", "", false},
		{"/billing/%2e%2E/admin/x", "admin", "/admin/x", "/x", true},
		{"/billing/.%2e", "", "/", "/", true},
		{"/billing/a%2F..%2Fb", "", "", "", false},
		{"/billing/a%2Fb..%2Fc", "billing", "/billing/a%2Fb..%2Fc", "/a%2Fb..%2Fc", true},
		{"billing/x", "billing", "/billing/x", "/x", true},
		{"/billing/a|b{c}", "billing", "/billing/a|b{c}", "/a|b{c}", true},
		{"/..a/b..", "..a", "/..a/b..", "/b..", true},
		{"/bad%zz/x", "", "", "", false},
	}
	for _, tc := range cases {
		r, ok := parseRoute(tc.in)
		if ok != tc.ok || (ok && (r.app != tc.app || r.cleaned != tc.cleaned || r.rest != tc.rest)) {
			t.Errorf("parseRoute(%q) = %+v %v, want app=%q cleaned=%q rest=%q %v", tc.in, r, ok, tc.app, tc.cleaned, tc.rest, tc.ok)
		}
	}
}

func BenchmarkPick(b *testing.B) {
	for _, mode := range []sdk.PickMode{sdk.ModeRoundRobin, sdk.ModeP2C} {
		for _, n := range []int{3, 16} {
			b.Run(fmt.Sprintf("%s/%d", mode, n), func(b *testing.B) {
				eps := testEndpoints(n)
				w := make([]uint64, n)
				for i := range w {
					w[i] = uint64(100 + i)
				}
				p := newPicker(mode, eps, w, 50)
				var rr atomic.Uint64
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						ep := p.pick(&rr, nil)
						ep.inFlight.Add(1)
						ep.inFlight.Add(-1)
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpicks/s")
			})
		}
	}
}

func BenchmarkParseRoute(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		parseRoute("/billing/api/v1/items/42")
	}
}
