// Package roundrobin is the bundled balancer "round-robin", the default:
// every endpoint gets the same weight and the edge rotates through them in
// order, skipping none.
package roundrobin

import (
	"context"

	"github.com/mycelium-mesh/mesh/sdk"
)

// Name is the plugin's name in mesh.hcl.
const Name = "round-robin"

// Version is the plugin's version.
const Version = "1.0.0"

type balancer struct{}

// New returns the round-robin balancer.
func New() sdk.Balancer { return balancer{} }

func (balancer) Info() sdk.Info {
	return sdk.Info{Kind: sdk.KindBalancer, Name: Name, Version: Version, APIVersions: []uint32{sdk.APIVersion}}
}

func (balancer) Schema() sdk.Schema { return sdk.Schema{} }

func (balancer) Configure(context.Context, sdk.Config) error { return nil }

// Balance gives every endpoint weight 1 in round-robin mode.
func (balancer) Balance(_ context.Context, s sdk.AppState) (sdk.Policy, error) {
	w := make(map[string]uint32, len(s.Endpoints))
	for _, e := range s.Endpoints {
		w[e.ID] = 1
	}
	return sdk.Policy{App: s.App, Mode: sdk.ModeRoundRobin, Weights: w}, nil
}

// ValidateConfig accepts every configuration: there is nothing to set.
func (balancer) ValidateConfig(context.Context, sdk.Config) error { return nil }
