package edge

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/events"
	"github.com/mycelium-mesh/mesh/core/fabric"
)

// TestEjectionEvents: passive health checking reports an endpoint it
// ejects, and the same endpoint when it takes traffic again.
func TestEjectionEvents(t *testing.T) {
	f := newFabric(t)
	bad := closedURL(t)
	f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: startHello(t, "a"), NodeID: "n1"})
	f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: bad, NodeID: "n2"})
	bus := events.New(0, 0)
	_, sub := bus.Subscribe(events.Filter{})
	defer sub.Close()
	e := startEdge(t, Options{Source: f, Events: bus.Sink(), Outlier: OutlierOptions{BaseEjection: 50 * time.Millisecond}})
	waitEndpoints(t, e, "billing", 2)
	for i := 0; i < 20; i++ {
		resp, err := http.Get(edgeURL(e) + "/billing/hello")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	for _, want := range []events.Type{events.EndpointEjected, events.EndpointReturned} {
		select {
		case ev := <-sub.C():
			if ev.Type != want || ev.App != "billing" || ev.Node != "n2" || ev.URL != bad {
				t.Fatalf("got %+v, want %s of n2 %s", ev, want, bad)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s event", want)
		}
	}
}
