// Command weighted-static is an example third-party balancer plugin for
// Mycelium Mesh. It gives endpoints fixed weights read from its config
// block, for example to send most traffic to bigger machines:
//
//	plugin "balancer" "weighted-static" {
//	  command = "./weighted-static"
//	  config {
//	    weights        = { "node-1" = 5, "node-2" = 1 }
//	    default_weight = 1
//	    mode           = "round_robin"
//	  }
//	}
//
// It imports only the mesh sdk. Build it with `go build`.
package main

import (
	"context"
	"math"
	"sync"

	"github.com/mycelium-mesh/mesh/sdk"
)

// settings is one decoded configuration; the host has already checked
// types, bounds and modes against the Schema.
type settings struct {
	Weights  map[string]uint32 `mesh:"weights"` // by endpoint ID (the node ID)
	Fallback uint32            `mesh:"default_weight"`
	Mode     sdk.PickMode      `mesh:"mode"`
}

// balancer serves the current settings. Configure may run again after a
// restart or a reload, so they are guarded.
type balancer struct {
	mu sync.RWMutex
	s  settings
}

func (b *balancer) Info() sdk.Info {
	return sdk.Info{Kind: sdk.KindBalancer, Name: "weighted-static", Version: "2.0.0", APIVersions: []uint32{sdk.APIVersion}}
}

func (b *balancer) Schema() sdk.Schema {
	weight := []*float64{new(0.0), new(float64(math.MaxUint32))}
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "weights", Type: sdk.TypeIntMap, Default: map[string]int64{}, Min: weight[0], Max: weight[1],
			Description: "weight by endpoint ID; 0 takes the endpoint out"},
		{Name: "default_weight", Type: sdk.TypeInt, Default: int64(1), Min: weight[0], Max: weight[1],
			Description: "weight of endpoints not listed"},
		{Name: "mode", Type: sdk.TypeString, Default: string(sdk.ModeRoundRobin),
			OneOf: []string{string(sdk.ModeRoundRobin), string(sdk.ModeP2C)}},
	}}
}

// parse decodes a block and refuses what the schema cannot say: a block
// that would take every endpoint out of picks. It changes nothing, so
// ValidateConfig and Configure share it.
func parse(cfg sdk.Config) (settings, error) {
	var s settings
	if err := cfg.Decode(&s); err != nil {
		return settings{}, err
	}
	if s.Fallback == 0 {
		for _, w := range s.Weights {
			if w > 0 {
				return s, nil
			}
		}
		return settings{}, sdk.AttrErrorf("default_weight", "is 0 and no endpoint in weights has a weight above 0, so no endpoint would take traffic")
	}
	return s, nil
}

// ValidateConfig lets `mesh validate` ask whether Configure would accept a
// block, without applying it.
func (b *balancer) ValidateConfig(_ context.Context, cfg sdk.Config) error {
	_, err := parse(cfg)
	return err
}

func (b *balancer) Configure(_ context.Context, cfg sdk.Config) error {
	s, err := parse(cfg)
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.s = s
	b.mu.Unlock()
	sdk.Logger().Info("configured", "weights", len(s.Weights), "mode", s.Mode)
	return nil
}

// Balance is called when an app's endpoints change or a load report
// arrives, never per request: the edge applies the returned weights itself.
func (b *balancer) Balance(_ context.Context, st sdk.AppState) (sdk.Policy, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	w := make(map[string]uint32, len(st.Endpoints))
	for _, e := range st.Endpoints {
		n, ok := b.s.Weights[e.ID]
		if !ok {
			n = b.s.Fallback
		}
		w[e.ID] = n
	}
	return sdk.Policy{App: st.App, Mode: b.s.Mode, Weights: w}, nil
}

func main() { sdk.Serve(&balancer{}) }
