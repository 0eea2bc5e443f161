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

// countingBalancer answers round-robin and counts the reports it gets.
type countingBalancer struct{ calls atomic.Int64 }

func (b *countingBalancer) Balance(_ context.Context, s sdk.AppState) (sdk.Policy, error) {
	b.calls.Add(1)
	return sdk.Policy{App: s.App, Mode: sdk.ModeRoundRobin}, nil
}

// TestIdleAppSendsNoLoadReports: once an app has served nothing since its
// last load report, its balancer loop stops reporting and its controller
// stops ticking; the next request wakes the reports.
func TestIdleAppSendsNoLoadReports(t *testing.T) {
	f := newFabric(t)
	f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: startHello(t, "w1"), NodeID: "n1"})
	bal := &countingBalancer{}
	e := startEdge(t, Options{Source: f, Balancers: func(string) Balancer { return bal }, ReportInterval: 5 * time.Millisecond})
	waitEndpoints(t, e, "billing", 1)
	e.mu.Lock()
	a := e.apps["billing"]
	e.mu.Unlock()
	if a == nil {
		t.Fatal("no app billing in the edge")
	}
	waitFor(t, 5*time.Second, "load reports idle", a.reportsIdle.Load)
	before := bal.calls.Load()

	resp, err := http.Get(edgeURL(e) + "/billing/hello")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitFor(t, 5*time.Second, "a report after the request", func() bool { return bal.calls.Load() > before })
	waitFor(t, 5*time.Second, "load reports idle again", a.reportsIdle.Load)
}

func TestControllerTendsOnlyWhilePending(t *testing.T) {
	f := newFabric(t)
	f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: startHello(t, "w1"), NodeID: "n1"})
	e := startEdge(t, Options{Source: f})
	waitEndpoints(t, e, "billing", 1)
	e.mu.Lock()
	a := e.apps["billing"]
	e.mu.Unlock()
	cases := []struct {
		name    string
		set     func(ep *endpoint)
		pending bool
	}{
		{"healthy", func(ep *endpoint) {}, false},
		{"ejected", func(ep *endpoint) { ep.ejected.Store(true) }, true},
		{"past ejections to forget", func(ep *endpoint) { ep.ejections = 1; ep.ejectedUntil = time.Now() }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a.mu.Lock()
			ep := a.eps[0]
			ep.ejected.Store(false)
			ep.ejectedAt, ep.returnedAt, ep.ejections = time.Time{}, time.Time{}, 0
			tc.set(ep)
			a.mu.Unlock()
			if got := a.tend(time.Now()); got != tc.pending {
				t.Fatalf("tend pending = %v, want %v", got, tc.pending)
			}
		})
	}
}
