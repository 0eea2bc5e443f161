package main

import (
	"context"
	"maps"
	"strings"
	"testing"

	"github.com/mycelium-mesh/mesh/sdk"
	"github.com/mycelium-mesh/mesh/sdk/plugintest"
)

func TestMain(m *testing.M) { plugintest.Main(m, func() sdk.Plugin { return &balancer{} }) }

// Each case configures the plugin process from a config block, decoded
// as mesh decodes it, and asks it for a policy.
func TestBalance(t *testing.T) {
	eps := []sdk.Endpoint{{ID: "node-1"}, {ID: "node-2"}, {ID: "node-3"}}
	for _, tc := range []struct {
		name, hcl string
		want      map[string]uint32
		mode      sdk.PickMode
		err       string // with the line it is reported at
		line      int
	}{
		{"defaults", ``, map[string]uint32{"node-1": 1, "node-2": 1, "node-3": 1}, sdk.ModeRoundRobin, "", 0},
		{"listed and fallback", "weights = { \"node-1\" = 5, \"node-2\" = 0 }\ndefault_weight = 2",
			map[string]uint32{"node-1": 5, "node-2": 0, "node-3": 2}, sdk.ModeRoundRobin, "", 0},
		{"p2c", `mode = "p2c"`, map[string]uint32{"node-1": 1, "node-2": 1, "node-3": 1}, sdk.ModeP2C, "", 0},
		{"weights as a list", "\nweights = [\"node-1=5\"]", nil, "", "a map of whole numbers is required", 2},
		{"negative weight", `weights = { "node-1" = -1 }`, nil, "", `element "node-1" must be between 0`, 1},
		{"unknown mode", `mode = "random"`, nil, "", `must be one of ["round_robin" "p2c"]`, 1},
		{"nothing takes traffic", "weights = { \"node-1\" = 0 }\ndefault_weight = 0", nil, "", "no endpoint would take traffic", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := plugintest.Run(t)
			err := p.Configure(tc.hcl)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || plugintest.Line(err) != tc.line {
					t.Fatalf("err %v, want %q at line %d", err, tc.err, tc.line)
				}
				if verr := p.Validate(tc.hcl); verr == nil || verr.Error() != err.Error() {
					t.Fatalf("ValidateConfig says %v, Configure %v", verr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			pol, err := p.Balancer().Balance(context.Background(), sdk.AppState{App: "hello", Endpoints: eps})
			if err != nil {
				t.Fatal(err)
			}
			if pol.Mode != tc.mode || !maps.Equal(pol.Weights, tc.want) {
				t.Fatalf("policy %+v, want mode %s weights %v", pol, tc.mode, tc.want)
			}
		})
	}
}
