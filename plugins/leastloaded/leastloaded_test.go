package leastloaded_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/plugins/leastloaded"
	"github.com/mycelium-mesh/mesh/sdk"
	"github.com/mycelium-mesh/mesh/sdk/plugintest"
)

func TestMain(m *testing.M) {
	plugintest.ServeIfLaunched(func() sdk.Plugin { return leastloaded.New() })
	os.Exit(m.Run())
}

func eps(ids ...string) []sdk.Endpoint {
	var out []sdk.Endpoint
	for _, id := range ids {
		out = append(out, sdk.Endpoint{ID: id, URL: "http://127.0.0.1:1", NodeID: id})
	}
	return out
}

func TestWeightsFollowLoad(t *testing.T) {
	tests := []struct {
		name  string
		loads []sdk.EndpointLoad
		check func(t *testing.T, w map[string]uint32)
	}{
		{
			name:  "no reports: equal",
			loads: nil,
			check: func(t *testing.T, w map[string]uint32) {
				if w["a"] != w["b"] || w["a"] == 0 {
					t.Errorf("weights %v, want equal and non-zero", w)
				}
			},
		},
		{
			name:  "b four times slower gets a quarter",
			loads: []sdk.EndpointLoad{{ID: "a", LatencyEWMA: 1000, Requests: 100}, {ID: "b", LatencyEWMA: 4000, Requests: 100}},
			check: func(t *testing.T, w map[string]uint32) {
				if w["a"] != 100 || w["b"] != 25 {
					t.Errorf("weights %v, want a=100 b=25", w)
				}
			},
		},
		{
			name:  "failing endpoint loses weight at equal latency",
			loads: []sdk.EndpointLoad{{ID: "a", LatencyEWMA: 1000, Requests: 100}, {ID: "b", LatencyEWMA: 1000, Requests: 100, Failures: 50}},
			check: func(t *testing.T, w map[string]uint32) {
				if w["b"] >= w["a"] {
					t.Errorf("weights %v, want b < a", w)
				}
			},
		},
		{
			name:  "very slow endpoint keeps the floor",
			loads: []sdk.EndpointLoad{{ID: "a", LatencyEWMA: 100, Requests: 100}, {ID: "b", LatencyEWMA: 10_000_000, Requests: 1}},
			check: func(t *testing.T, w map[string]uint32) {
				if w["b"] != 1 {
					t.Errorf("weights %v, want b at min_weight 1", w)
				}
			},
		},
	}
	paths := map[string]func(t *testing.T) sdk.Balancer{
		"in-process gRPC": func(t *testing.T) sdk.Balancer { return plugintest.Balancer(t, leastloaded.New()) },
		"subprocess":      func(t *testing.T) sdk.Balancer { return plugintest.Launch(t, sdk.KindBalancer).(sdk.Balancer) },
	}
	for path, mk := range paths {
		for _, tt := range tests {
			t.Run(path+"/"+tt.name, func(t *testing.T) {
				b := mk(t)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := b.Configure(ctx, sdk.Config{}.WithDefaults(b.Schema())); err != nil {
					t.Fatal(err)
				}
				p, err := b.Balance(ctx, sdk.AppState{App: "web", Endpoints: eps("a", "b"), Loads: tt.loads})
				if err != nil {
					t.Fatal(err)
				}
				if p.Mode != sdk.ModeP2C {
					t.Fatalf("mode %s, want %s", p.Mode, sdk.ModeP2C)
				}
				tt.check(t, p.Weights)
			})
		}
	}
}

// A quiet interval (no report for an endpoint) keeps what was learnt.
func TestQuietIntervalKeepsScore(t *testing.T) {
	b := plugintest.Balancer(t, leastloaded.New())
	ctx := context.Background()
	slow := []sdk.EndpointLoad{{ID: "a", LatencyEWMA: 1000, Requests: 10}, {ID: "b", LatencyEWMA: 5000, Requests: 10}}
	if _, err := b.Balance(ctx, sdk.AppState{App: "web", Endpoints: eps("a", "b"), Loads: slow}); err != nil {
		t.Fatal(err)
	}
	p, err := b.Balance(ctx, sdk.AppState{App: "web", Endpoints: eps("a", "b")})
	if err != nil {
		t.Fatal(err)
	}
	if p.Weights["b"] != 20 || p.Weights["a"] != 100 {
		t.Fatalf("weights after a quiet interval %v, want a=100 b=20", p.Weights)
	}
}

func TestConfigureRefusesBadValues(t *testing.T) {
	b := plugintest.Balancer(t, leastloaded.New())
	tests := []struct {
		name string
		cfg  sdk.Config
	}{
		{"zero max", sdk.Config{"max_weight": 0.0}},
		{"min above max", sdk.Config{"max_weight": 10.0, "min_weight": 20.0}},
		{"negative penalty", sdk.Config{"failure_penalty": -1.0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := b.Configure(context.Background(), tt.cfg); err == nil {
				t.Fatal("Configure accepted a bad config")
			}
		})
	}
}
