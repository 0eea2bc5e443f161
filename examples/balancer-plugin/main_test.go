package main

import (
	"context"
	"os"
	"testing"

	"github.com/mycelium-mesh/mesh/sdk"
	"github.com/mycelium-mesh/mesh/sdk/plugintest"
)

func TestMain(m *testing.M) {
	plugintest.ServeIfLaunched(func() sdk.Plugin { return &balancer{} })
	os.Exit(m.Run())
}

func TestBalance(t *testing.T) {
	eps := []sdk.Endpoint{{ID: "node-1"}, {ID: "node-2"}, {ID: "node-3"}}
	tests := []struct {
		name    string
		cfg     sdk.Config
		want    map[string]uint32
		mode    sdk.PickMode
		wantErr bool
	}{
		{"defaults", sdk.Config{}, map[string]uint32{"node-1": 1, "node-2": 1, "node-3": 1}, sdk.ModeRoundRobin, false},
		{"listed and fallback", sdk.Config{"weights": map[string]int64{"node-1": 5, "node-2": 0}, "default_weight": int64(2)},
			map[string]uint32{"node-1": 5, "node-2": 0, "node-3": 2}, sdk.ModeRoundRobin, false},
		{"p2c", sdk.Config{"mode": "p2c"}, map[string]uint32{"node-1": 1, "node-2": 1, "node-3": 1}, sdk.ModeP2C, false},
		{"nothing takes traffic", sdk.Config{"default_weight": int64(0)}, nil, "", true},
	}
	paths := map[string]func(t *testing.T) sdk.Balancer{
		"in-process gRPC": func(t *testing.T) sdk.Balancer { return plugintest.Balancer(t, &balancer{}) },
		"subprocess":      func(t *testing.T) sdk.Balancer { return plugintest.Launch(t, sdk.KindBalancer).(sdk.Balancer) },
	}
	for path, mk := range paths {
		for _, tt := range tests {
			t.Run(path+"/"+tt.name, func(t *testing.T) {
				b := mk(t)
				ctx := context.Background()
				err := b.Configure(ctx, tt.cfg.WithDefaults(b.Schema()))
				if tt.wantErr {
					if err == nil {
						t.Fatal("Configure accepted a bad config")
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				p, err := b.Balance(ctx, sdk.AppState{App: "hello", Endpoints: eps})
				if err != nil {
					t.Fatal(err)
				}
				if p.Mode != tt.mode || len(p.Weights) != len(tt.want) {
					t.Fatalf("policy %+v", p)
				}
				for id, w := range tt.want {
					if p.Weights[id] != w {
						t.Fatalf("weights %v, want %v", p.Weights, tt.want)
					}
				}
			})
		}
	}
}
