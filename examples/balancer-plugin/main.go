// Command weighted-static is an example third-party balancer plugin for
// Mycelium Mesh. It gives endpoints fixed weights read from its config
// block, for example to send most traffic to bigger machines:
//
//	plugin "balancer" "weighted-static" {
//	  command = "./weighted-static"
//	  config {
//	    weights        = ["node-1=5", "node-2=1"]
//	    default_weight = 1
//	    mode           = "round_robin"
//	  }
//	}
//
// It imports only the mesh sdk. Build it with `go build`.
package main

import (
	"context"
	"strconv"
	"strings"
	"sync"

	"github.com/mycelium-mesh/mesh/sdk"
)

// balancer holds the parsed configuration. Configure may run again after a
// restart or a reload, so the fields are guarded.
type balancer struct {
	mu       sync.RWMutex
	weights  map[string]uint32 // by endpoint ID (the node ID)
	fallback uint32
	mode     sdk.PickMode
}

func (b *balancer) Info() sdk.Info {
	return sdk.Info{
		Kind:        sdk.KindBalancer,
		Name:        "weighted-static",
		Version:     "1.0.0",
		APIVersions: []uint32{sdk.APIVersion},
	}
}

func (b *balancer) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "weights", Type: sdk.TypeStringList, Default: []string{}, Description: `"<endpoint id>=<weight>" pairs`},
		{Name: "default_weight", Type: sdk.TypeNumber, Default: 1.0, Description: "weight of endpoints not listed; 0 takes them out"},
		{Name: "mode", Type: sdk.TypeString, Default: string(sdk.ModeRoundRobin), Description: `"round_robin" or "p2c"`},
	}}
}

// settings is one parsed configuration.
type settings struct {
	weights  map[string]uint32
	fallback uint32
	mode     sdk.PickMode
}

// parse checks and converts a decoded config block; it changes nothing, so
// ValidateConfig and Configure share it.
func parse(cfg sdk.Config) (settings, error) {
	weights := map[string]uint32{}
	for _, pair := range cfg.StringList("weights", nil) {
		id, w, ok := strings.Cut(pair, "=")
		if !ok || id == "" {
			return settings{}, sdk.AttrErrorf("weights", "%q is not <endpoint id>=<weight>", pair)
		}
		n, err := strconv.ParseUint(strings.TrimSpace(w), 10, 32)
		if err != nil {
			return settings{}, sdk.AttrErrorf("weights", "%q: weight must be a whole number: %v", pair, err)
		}
		weights[strings.TrimSpace(id)] = uint32(n)
	}
	def := cfg.Number("default_weight", 1)
	if def < 0 || def != float64(uint32(def)) {
		return settings{}, sdk.AttrErrorf("default_weight", "must be a whole number ≥ 0, got %v", def)
	}
	mode := sdk.PickMode(cfg.String("mode", string(sdk.ModeRoundRobin)))
	if mode != sdk.ModeRoundRobin && mode != sdk.ModeP2C {
		return settings{}, sdk.AttrErrorf("mode", "must be %q or %q, got %q", sdk.ModeRoundRobin, sdk.ModeP2C, mode)
	}
	return settings{weights: weights, fallback: uint32(def), mode: mode}, nil
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
	b.weights, b.fallback, b.mode = s.weights, s.fallback, s.mode
	b.mu.Unlock()
	sdk.Logger().Info("configured", "weights", len(s.weights), "mode", s.mode)
	return nil
}

// Balance is called when an app's endpoints change or a load report
// arrives, never per request: the edge applies the returned weights itself.
func (b *balancer) Balance(_ context.Context, s sdk.AppState) (sdk.Policy, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	w := make(map[string]uint32, len(s.Endpoints))
	for _, e := range s.Endpoints {
		if n, ok := b.weights[e.ID]; ok {
			w[e.ID] = n
		} else {
			w[e.ID] = b.fallback
		}
	}
	return sdk.Policy{App: s.App, Mode: b.mode, Weights: w}, nil
}

func main() {
	sdk.Serve(&balancer{mode: sdk.ModeRoundRobin, fallback: 1})
}
