package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// edgeView is what an edge routes to, read from its admin listener: the
// edge keeps a mesh_edge_endpoint_requests_total series for exactly the
// endpoints in its routing table, created when an endpoint enters it and
// deleted when it leaves, so the series' endpoint labels are the table.
type edgeView struct {
	admin string
	hc    *http.Client
}

func newEdgeView(admin string) *edgeView {
	return &edgeView{admin: admin, hc: &http.Client{Timeout: 2 * time.Second}}
}

// endpoints returns the endpoint URLs the edge routes app to.
func (v *edgeView) endpoints(ctx context.Context, app string) (map[string]bool, error) {
	fams, err := scrape(ctx, v.hc, v.admin+"/metrics")
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	if f, ok := fams["mesh_edge_endpoint_requests_total"]; ok {
		for _, m := range f.GetMetric() {
			var a, ep string
			for _, lp := range m.GetLabel() {
				switch lp.GetName() {
				case "app":
					a = lp.GetValue()
				case "endpoint":
					ep = lp.GetValue()
				}
			}
			if a == app {
				out[ep] = true
			}
		}
	}
	return out, nil
}

// scrape reads a Prometheus text page.
func scrape(ctx context.Context, hc *http.Client, url string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: parse: %w", url, err)
	}
	return fams, nil
}

// hostOf is the address part of an endpoint URL.
func hostOf(u string) string {
	u = strings.TrimPrefix(u, "http://")
	if i := strings.LastIndexByte(u, ':'); i >= 0 {
		u = u[:i]
	}
	return strings.Trim(u, "[]")
}
