package edge

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/sdk"
)

// fixedBalancer answers every call with the same policy.
type fixedBalancer struct {
	calls  atomic.Int64
	policy sdk.Policy
}

func (b *fixedBalancer) Balance(context.Context, sdk.AppState) (sdk.Policy, error) {
	b.calls.Add(1)
	return b.policy, nil
}

// The balancer contract the sdk documents: the edge applies a policy to
// the app it asked about whatever Policy.App says, serves a policy whose
// weights are all zero as if every weight were 1, and takes an unknown
// Mode as round-robin.
func TestBalancerContract(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy sdk.Policy
		want   map[string]bool // instances that must serve, and only them
	}{
		{"all weights zero", sdk.Policy{App: "billing", Weights: map[string]uint32{"n1": 0, "n2": 0}}, map[string]bool{"w1": true, "w2": true}},
		{"policy names another app", sdk.Policy{App: "other", Weights: map[string]uint32{"n1": 1, "n2": 0}}, map[string]bool{"w1": true}},
		{"unknown mode", sdk.Policy{App: "billing", Mode: "zigzag", Weights: map[string]uint32{"n2": 0}}, map[string]bool{"w1": true}},
		{"unknown mode, equal weights", sdk.Policy{App: "billing", Mode: "zigzag"}, map[string]bool{"w1": true, "w2": true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFabric(t)
			f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: startHello(t, "w1"), NodeID: "n1"})
			f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: startHello(t, "w2"), NodeID: "n2"})
			bal := &fixedBalancer{policy: tc.policy}
			e := startEdge(t, Options{Source: f, Balancers: func(string) Balancer { return bal }, ReportInterval: 20 * time.Millisecond})
			get := func() string {
				t.Helper()
				resp, err := http.Get(edgeURL(e) + "/billing/hello")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d: the policy switched the app off", resp.StatusCode)
				}
				return resp.Header.Get("X-Hello-Instance")
			}
			// Calls follow traffic; by the third the first policy is installed.
			waitFor(t, 5*time.Second, "balancer calls", func() bool {
				get()
				return bal.calls.Load() >= 3
			})
			seen := map[string]bool{}
			for i := 0; i < 40; i++ {
				seen[get()] = true
			}
			for inst := range seen {
				if !tc.want[inst] {
					t.Errorf("%s served; want only %v", inst, tc.want)
				}
			}
			for inst := range tc.want {
				if !seen[inst] {
					t.Errorf("%s never served in 40 requests; want %v", inst, tc.want)
				}
			}
		})
	}
}
