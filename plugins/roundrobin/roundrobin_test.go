package roundrobin_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/plugins/roundrobin"
	"github.com/mycelium-mesh/mesh/sdk"
	"github.com/mycelium-mesh/mesh/sdk/pluginclient"
	"github.com/mycelium-mesh/mesh/sdk/plugintest"
)

func TestMain(m *testing.M) {
	plugintest.ServeIfLaunched(func() sdk.Plugin { return roundrobin.New() })
	os.Exit(m.Run())
}

func TestBalance(t *testing.T) {
	clients := map[string]sdk.Balancer{
		"in-process gRPC": plugintest.Balancer(t, roundrobin.New()),
		"subprocess":      plugintest.Launch(t, sdk.KindBalancer).(sdk.Balancer),
	}
	tests := []struct {
		name string
		eps  []string
	}{
		{"none", nil},
		{"one", []string{"n1"}},
		{"three", []string{"n1", "n2", "n3"}},
	}
	for path, b := range clients {
		for _, tt := range tests {
			t.Run(path+"/"+tt.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				st := sdk.AppState{App: "web"}
				for _, id := range tt.eps {
					st.Endpoints = append(st.Endpoints, sdk.Endpoint{ID: id, URL: "http://127.0.0.1:1/" + id, NodeID: id})
				}
				// Load reports must not change an equal rotation.
				st.Loads = []sdk.EndpointLoad{{ID: "n1", LatencyEWMA: 99999, Failures: 10, Requests: 10}}
				p, err := b.Balance(ctx, st)
				if err != nil {
					t.Fatal(err)
				}
				if p.App != "web" || p.Mode != sdk.ModeRoundRobin {
					t.Fatalf("policy = %+v, want app web, mode %s", p, sdk.ModeRoundRobin)
				}
				if len(p.Weights) != len(tt.eps) {
					t.Fatalf("weights = %v, want one per endpoint %v", p.Weights, tt.eps)
				}
				for _, id := range tt.eps {
					if p.Weights[id] != 1 {
						t.Errorf("weight of %s = %d, want 1", id, p.Weights[id])
					}
				}
			})
		}
	}
}

func TestInfo(t *testing.T) {
	b := plugintest.Launch(t, sdk.KindBalancer).(pluginclient.Remote)
	info, err := b.GetInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Kind != sdk.KindBalancer || info.Name != roundrobin.Name {
		t.Fatalf("info = %+v", info)
	}
}
