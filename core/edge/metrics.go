package edge

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// metrics is the edge's own Prometheus registry (never the global one, so
// several edges can live in one process).
type metrics struct {
	reg              *prometheus.Registry
	requests         *prometheus.CounterVec
	duration         *prometheus.HistogramVec
	inFlight         *prometheus.GaugeVec
	endpointRequests *prometheus.CounterVec
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
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"app"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mesh_edge_in_flight",
			Help: "Requests in flight through the edge, by app.",
		}, []string{"app"}),
		endpointRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mesh_edge_endpoint_requests_total",
			Help: "Requests sent to each endpoint, by app and endpoint URL.",
		}, []string{"app", "endpoint"}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.inFlight, m.endpointRequests)
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

// handler serves the registry in the Prometheus text format at /metrics.
func (m *metrics) handler() http.Handler {
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
	return mux
}
