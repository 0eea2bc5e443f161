package edge

import (
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// metrics is the edge's own Prometheus registry (never the global one, so
// several edges can live in one process).
//
// Every per-app series only grows for the life of the edge: apps are never
// dropped, and the requests sent to an app's endpoints are also counted per
// app (mesh_edge_app_endpoint_requests_total), so a deploy that replaces
// every endpoint, whose per-endpoint series then go away, takes nothing
// from the app's totals.
type metrics struct {
	reg              *prometheus.Registry
	requests         *prometheus.CounterVec
	duration         *prometheus.HistogramVec
	inFlight         *prometheus.GaugeVec
	endpointRequests *endpointCounters
}

var classes = [6]string{"", "1xx", "2xx", "3xx", "4xx", "5xx"}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mesh_edge_requests_total",
			Help: "Requests served by the edge, by app and status class (client-closed requests count as 4xx).",
		}, []string{"app", "code_class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mesh_edge_request_duration_seconds",
			Help:    "Time from request arrival to the end of the response, by app.",
			Buckets: LatencyBounds(),
		}, []string{"app"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mesh_edge_in_flight",
			Help: "Requests in flight through the edge, by app.",
		}, []string{"app"}),
		endpointRequests: newEndpointCounters(),
	}
	m.reg.MustRegister(m.requests, m.duration, m.inFlight, m.endpointRequests.perEndpoint, m.endpointRequests.perApp)
	return m
}

func (m *metrics) forApp(app string) appMetrics {
	var am appMetrics
	for i := 1; i < len(classes); i++ {
		am.byClass[i] = m.requests.WithLabelValues(app, classes[i])
	}
	am.duration = m.duration.WithLabelValues(app)
	am.inFlight = m.inFlight.WithLabelValues(app)
	return am
}

// endpointCounters count the requests sent to each endpoint, and to all the
// endpoints an app ever had. The series of an endpoint goes when the
// endpoint leaves the routing table; the app's total stays and keeps
// counting, requests still finishing on the removed endpoint included.
type endpointCounters struct {
	perEndpoint *prometheus.CounterVec
	perApp      *prometheus.CounterVec
}

func newEndpointCounters() *endpointCounters {
	return &endpointCounters{
		perEndpoint: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mesh_edge_endpoint_requests_total",
			Help: "Requests sent to each endpoint in the routing table, by app and endpoint URL; the series goes with the endpoint (see mesh_edge_app_endpoint_requests_total).",
		}, []string{"app", "endpoint"}),
		perApp: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mesh_edge_app_endpoint_requests_total",
			Help: "Requests sent to the endpoints of an app, those since replaced or removed included: it never drops when endpoints change.",
		}, []string{"app"}),
	}
}

// WithLabelValues returns the counter of the endpoint url of app; every
// increment also counts in the app's total.
func (c *endpointCounters) WithLabelValues(app, url string) prometheus.Counter {
	return teeCounter{Counter: c.perEndpoint.WithLabelValues(app, url), app: c.perApp.WithLabelValues(app)}
}

// DeleteLabelValues drops the series of the endpoint url of app; the
// app's total keeps what it counted.
func (c *endpointCounters) DeleteLabelValues(app, url string) bool {
	return c.perEndpoint.DeleteLabelValues(app, url)
}

// teeCounter is an endpoint's counter that also counts in its app's.
type teeCounter struct {
	prometheus.Counter
	app prometheus.Counter
}

func (t teeCounter) Inc() {
	t.Counter.Inc()
	t.app.Inc()
}

func (t teeCounter) Add(v float64) {
	t.Counter.Add(v)
	t.app.Add(v)
}

// AppTotals are an app's totals from the edge's metrics at one moment.
// Every field only grows; the difference of two samples is what happened
// between them.
type AppTotals struct {
	Requests   uint64 // answered, every status class
	Errors5xx  uint64 // answered with a 5xx status
	Upstream   uint64 // sent to an endpoint, replaced endpoints included
	LatencySum float64
	// Buckets are the cumulative counts of the request duration
	// histogram, one per upper bound in LatencyBounds, then +Inf.
	Buckets []uint64
}

// LatencyBounds are the upper bounds, in seconds, of AppTotals.Buckets.
func LatencyBounds() []float64 {
	return []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
}

// Totals returns the totals of every app the edge knows, read from its
// metrics (a few microseconds per app; never on the request path).
func (e *Edge) Totals() map[string]AppTotals {
	return e.metrics.totals()
}

func (m *metrics) totals() map[string]AppTotals {
	out := map[string]AppTotals{}
	get := func(app string) AppTotals { return out[app] }
	for _, mt := range collect(m.requests) {
		app, class := label(mt, "app"), label(mt, "code_class")
		t := get(app)
		n := uint64(mt.GetCounter().GetValue())
		t.Requests += n
		if class == "5xx" {
			t.Errors5xx += n
		}
		out[app] = t
	}
	for _, mt := range collect(m.endpointRequests.perApp) {
		app := label(mt, "app")
		t := get(app)
		t.Upstream = uint64(mt.GetCounter().GetValue())
		out[app] = t
	}
	for _, mt := range collect(m.duration) {
		app := label(mt, "app")
		t := get(app)
		h := mt.GetHistogram()
		t.LatencySum = h.GetSampleSum()
		t.Buckets = t.Buckets[:0]
		for _, b := range h.GetBucket() {
			t.Buckets = append(t.Buckets, b.GetCumulativeCount())
		}
		t.Buckets = append(t.Buckets, h.GetSampleCount())
		out[app] = t
	}
	return out
}

// collect reads every metric c holds.
func collect(c prometheus.Collector) []*dto.Metric {
	ch := make(chan prometheus.Metric, 64)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.Collect(ch)
		close(ch)
	}()
	var out []*dto.Metric
	for pm := range ch {
		var mt dto.Metric
		if err := pm.Write(&mt); err == nil {
			out = append(out, &mt)
		}
	}
	wg.Wait()
	return out
}

func label(mt *dto.Metric, name string) string {
	for _, lp := range mt.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

// handler serves the registry in the Prometheus text format at /metrics
// and, when extra is set, every other path through extra (the mesh's
// console).
func (m *metrics) handler(extra http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		mfs, err := m.reg.Gather()
		if err != nil && len(mfs) == 0 {
			http.Error(w, "gather metrics: "+err.Error(), http.StatusInternalServerError)
			return
		}
		format := expfmt.NewFormat(expfmt.TypeTextPlain)
		w.Header().Set("Content-Type", string(format))
		enc := expfmt.NewEncoder(w, format)
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				return
			}
		}
	})
	if extra != nil {
		mux.Handle("/", extra)
	}
	return mux
}
