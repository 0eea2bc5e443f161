package edge

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/fabric"
)

// scrape returns the value of the series line that starts with series
// (name and labels, exactly as exposed) on e's /metrics; -1 when absent.
func scrape(t *testing.T, e *Edge, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + e.AdminAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return -1
}

func sendN(t *testing.T, e *Edge, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		resp, err := http.Get(edgeURL(e) + "/billing/hello")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %s", i, resp.Status)
		}
	}
}

// TestAppTotalsSurviveEndpointReplacement: a deploy replaces every
// endpoint of an app (new instances on new ports). The per-endpoint series
// of the old ones go, but the app's totals, in /metrics and in Totals,
// never drop and count every request.
func TestAppTotalsSurviveEndpointReplacement(t *testing.T) {
	f := newFabric(t)
	e := startEdge(t, Options{Source: f, AdminAddr: "127.0.0.1:0"})
	const app = `{app="billing"}`
	steps := []struct {
		name string
		urls []string // the endpoints of n1, n2 after the deploy
		reqs int
	}{
		{"v1", []string{startHello(t, "v1a"), startHello(t, "v1b")}, 10},
		{"v2 replaces both", []string{startHello(t, "v2a"), startHello(t, "v2b")}, 6},
		{"v3 replaces both", []string{startHello(t, "v3a"), startHello(t, "v3b")}, 4},
	}
	total := 0
	last := 0.0
	var oldURLs []string
	for _, st := range steps {
		for i, u := range st.urls {
			f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: u, NodeID: "n" + strconv.Itoa(i+1)})
		}
		waitFor(t, 5*time.Second, "the new endpoints routed", func() bool {
			return e.Counters()["billing"].Endpoints == 2 && routesOnly(e, "billing", st.urls)
		})
		for _, u := range oldURLs {
			if v := scrape(t, e, `mesh_edge_endpoint_requests_total{app="billing",endpoint="`+u+`"}`); v != -1 {
				t.Errorf("%s: replaced endpoint %s still has a series (%v)", st.name, u, v)
			}
		}
		sendN(t, e, st.reqs)
		total += st.reqs
		got := scrape(t, e, "mesh_edge_app_endpoint_requests_total"+app)
		if got != float64(total) {
			t.Errorf("%s: mesh_edge_app_endpoint_requests_total = %v, want %d", st.name, got, total)
		}
		if got < last {
			t.Errorf("%s: app total dropped from %v to %v", st.name, last, got)
		}
		last = got
		if v := scrape(t, e, `mesh_edge_requests_total{app="billing",code_class="2xx"}`); v != float64(total) {
			t.Errorf("%s: mesh_edge_requests_total 2xx = %v, want %d", st.name, v, total)
		}
		tot := e.Totals()["billing"]
		if tot.Requests != uint64(total) || tot.Upstream != uint64(total) || tot.Errors5xx != 0 {
			t.Errorf("%s: Totals %+v, want %d requests, all upstream, no 5xx", st.name, tot, total)
		}
		if n := len(tot.Buckets); n != len(LatencyBounds())+1 || tot.Buckets[n-1] != uint64(total) {
			t.Errorf("%s: latency buckets %v, want %d counted", st.name, tot.Buckets, total)
		}
		oldURLs = st.urls
	}
}

// routesOnly reports whether app's routing table holds exactly urls.
func routesOnly(e *Edge, app string, urls []string) bool {
	a := (*e.routes.Load())[app]
	if a == nil {
		return false
	}
	p := a.picker.Load()
	if len(p.eps) != len(urls) {
		return false
	}
	for _, ep := range p.eps {
		found := false
		for _, u := range urls {
			found = found || ep.url == u
		}
		if !found {
			return false
		}
	}
	return true
}
