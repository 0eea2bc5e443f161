// Package leastloaded is the bundled balancer "least-loaded". The edge
// picks with power of two choices on in-flight requests divided by weight;
// this plugin sets the weights from the load reports the host streams:
// an endpoint slower than the fastest one, or failing, gets proportionally
// less weight. Endpoints that saw no traffic in an interval keep the score
// of their last report, so one quiet interval does not erase what was
// learnt.
package leastloaded

import (
	"context"
	"math"
	"sync"

	"github.com/mycelium-mesh/mesh/sdk"
)

// Name is the plugin's name in mesh.hcl.
const Name = "least-loaded"

// Version is the plugin's version.
const Version = "1.0.0"

type balancer struct {
	mu        sync.Mutex
	maxWeight float64
	minWeight float64
	penalty   float64
	// last latency seen per app and endpoint, for quiet intervals
	last map[string]map[string]float64
}

// New returns the least-loaded balancer with its default settings.
func New() sdk.Balancer {
	b := &balancer{last: map[string]map[string]float64{}}
	_ = b.Configure(context.Background(), sdk.Config{}.WithDefaults(b.Schema()))
	return b
}

func (b *balancer) Info() sdk.Info {
	return sdk.Info{Kind: sdk.KindBalancer, Name: Name, Version: Version, APIVersions: []uint32{sdk.APIVersion}}
}

func (b *balancer) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "max_weight", Type: sdk.TypeNumber, Default: 100.0, Description: "weight of the fastest healthy endpoint"},
		{Name: "min_weight", Type: sdk.TypeNumber, Default: 1.0, Description: "floor, so a slow endpoint still gets probed"},
		{Name: "failure_penalty", Type: sdk.TypeNumber, Default: 4.0, Description: "how much a failure ratio of 1 divides the weight beyond 1"},
	}}
}

func (b *balancer) Configure(_ context.Context, cfg sdk.Config) error {
	maxW := cfg.Number("max_weight", 100)
	minW := cfg.Number("min_weight", 1)
	pen := cfg.Number("failure_penalty", 4)
	if maxW < 1 || maxW > math.MaxUint32 {
		return sdk.AttrErrorf("max_weight", "must be between 1 and %d, got %v", uint32(math.MaxUint32), maxW)
	}
	if minW < 0 || minW > maxW {
		return sdk.AttrErrorf("min_weight", "must be between 0 and max_weight (%v), got %v", maxW, minW)
	}
	if pen < 0 {
		return sdk.AttrErrorf("failure_penalty", "must not be negative, got %v", pen)
	}
	b.mu.Lock()
	b.maxWeight, b.minWeight, b.penalty = maxW, minW, pen
	b.mu.Unlock()
	return nil
}

// Balance derives P2C weights from latency and failures.
func (b *balancer) Balance(_ context.Context, s sdk.AppState) (sdk.Policy, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	last := b.last[s.App]
	if last == nil {
		last = map[string]float64{}
		b.last[s.App] = last
	}
	loads := make(map[string]sdk.EndpointLoad, len(s.Loads))
	for _, l := range s.Loads {
		loads[l.ID] = l
	}
	live := make(map[string]bool, len(s.Endpoints))
	latency := make(map[string]float64, len(s.Endpoints))
	best := math.Inf(1)
	for _, e := range s.Endpoints {
		live[e.ID] = true
		lat := last[e.ID]
		if l, ok := loads[e.ID]; ok && l.LatencyEWMA > 0 {
			lat = l.LatencyEWMA
			last[e.ID] = lat
		}
		latency[e.ID] = lat
		if lat > 0 && lat < best {
			best = lat
		}
	}
	for id := range last {
		if !live[id] {
			delete(last, id)
		}
	}
	w := make(map[string]uint32, len(s.Endpoints))
	for _, e := range s.Endpoints {
		score := 1.0
		if lat := latency[e.ID]; lat > 0 && !math.IsInf(best, 1) {
			score = lat / best
		}
		if l, ok := loads[e.ID]; ok && l.Failures > 0 {
			ratio := float64(l.Failures) / math.Max(float64(l.Requests), float64(l.Failures))
			score *= 1 + b.penalty*ratio
		}
		weight := math.Round(b.maxWeight / score)
		weight = math.Max(b.minWeight, math.Min(b.maxWeight, weight))
		w[e.ID] = uint32(weight)
	}
	return sdk.Policy{App: s.App, Mode: sdk.ModeP2C, Weights: w}, nil
}

// ValidateConfig says whether Configure would accept cfg, by configuring a
// fresh value: Configure only parses, so nothing outside changes.
func (b *balancer) ValidateConfig(ctx context.Context, cfg sdk.Config) error {
	return New().Configure(ctx, cfg)
}
