package pluginhost_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/pluginhost"
	"github.com/mycelium-mesh/mesh/sdk"
)

// The three benchmarks below back the rule that no plugin call sits on the
// request path: compare ns/op of a unary plugin call and of one balancer
// stream round trip with a local pick over the weights a policy carries.

// BenchmarkUnaryCall is one health Check through a real plugin process
// (gRPC over AutoMTLS); the plugin answers without any I/O of its own.
func BenchmarkUnaryCall(b *testing.B) {
	h, _ := newHost(b, nil)
	p, err := h.Load(context.Background(), pluginhost.Spec{Kind: sdk.KindHealth, Name: "ext", Command: testPlugin})
	if err != nil {
		b.Fatal(err)
	}
	hc, _ := p.Health()
	ctx := context.Background()
	c := sdk.HealthCheck{URL: "http://127.0.0.1:1", Timeout: time.Second}
	local := localPickNs()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := hc.Check(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	reportVsLocal(b, local)
}

// BenchmarkStreamMessage is one AppState → Policy round trip on the
// balancer stream of a real plugin process (4 endpoints with loads).
func BenchmarkStreamMessage(b *testing.B) {
	h, _ := newHost(b, nil)
	bal, err := h.Balancer(context.Background(), pluginhost.Spec{Name: "least-loaded"})
	if err != nil {
		b.Fatal(err)
	}
	st := sdk.AppState{App: "web"}
	for _, id := range []string{"a", "b", "c", "d"} {
		st.Endpoints = append(st.Endpoints, sdk.Endpoint{ID: id, URL: "http://127.0.0.1:1", NodeID: id})
		st.Loads = append(st.Loads, sdk.EndpointLoad{ID: id, InFlight: 3, Requests: 100, LatencyEWMA: 1500})
	}
	ctx := context.Background()
	local := localPickNs()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := bal.Balance(ctx, st); err != nil {
			b.Fatal(err)
		}
	}
	reportVsLocal(b, local)
}

// BenchmarkStreamMessageParallel keeps many AppStates in flight on the one
// stream: ns/op is the stream's cost per message when messages are
// pipelined, as load reports of many apps are.
func BenchmarkStreamMessageParallel(b *testing.B) {
	h, _ := newHost(b, nil)
	bal, err := h.Balancer(context.Background(), pluginhost.Spec{Name: "least-loaded"})
	if err != nil {
		b.Fatal(err)
	}
	st := sdk.AppState{App: "web"}
	for _, id := range []string{"a", "b", "c", "d"} {
		st.Endpoints = append(st.Endpoints, sdk.Endpoint{ID: id, URL: "http://127.0.0.1:1", NodeID: id})
		st.Loads = append(st.Loads, sdk.EndpointLoad{ID: id, InFlight: 3, Requests: 100, LatencyEWMA: 1500})
	}
	local := localPickNs()
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := bal.Balance(ctx, st); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportVsLocal(b, local)
}

// BenchmarkLocalPick is what the edge does per request instead: a
// lock-free smooth pick over the policy's weights, in process.
func BenchmarkLocalPick(b *testing.B) {
	pk := newPicker(map[string]uint32{"a": 5, "b": 3, "c": 1, "d": 1})
	b.ReportAllocs()
	b.ResetTimer()
	var sink string
	for i := 0; i < b.N; i++ {
		sink = pk.pick()
	}
	_ = sink
}

// picker is a minimal weighted rotation over a precomputed table: an
// atomic counter indexes a slice in which each endpoint appears as often
// as its weight. It stands in for the edge's picker.
type picker struct {
	table []string
	next  atomic.Uint64
}

func newPicker(w map[string]uint32) *picker {
	p := &picker{}
	for id, n := range w {
		for i := uint32(0); i < n; i++ {
			p.table = append(p.table, id)
		}
	}
	return p
}

func (p *picker) pick() string {
	n := p.next.Add(1)
	return p.table[n%uint64(len(p.table))]
}

// localPickNs measures one local pick in this run, so the RPC benchmarks
// can report their cost in local picks.
func localPickNs() float64 {
	pk := newPicker(map[string]uint32{"a": 5, "b": 3, "c": 1, "d": 1})
	const n = 1 << 22
	start := time.Now()
	var sink string
	for i := 0; i < n; i++ {
		sink = pk.pick()
	}
	_ = sink
	return float64(time.Since(start).Nanoseconds()) / n
}

// reportVsLocal adds the cost of one operation in local picks.
func reportVsLocal(b *testing.B, local float64) {
	b.StopTimer()
	if b.N == 0 || local <= 0 {
		return
	}
	perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(perOp/local, "local-picks/op")
}
