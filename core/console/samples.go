package console

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/mycelium-mesh/mesh/core/edge"
)

// Point is one sample of an app's traffic over the interval that ended at
// Time.
type Point struct {
	Time          time.Time `json:"time"`
	RequestsPerS  float64   `json:"requests_per_s"`
	Errors5xxPerS float64   `json:"errors_5xx_per_s"`
	// LatencyP50MS and LatencyP95MS are estimated from the edge's latency
	// histogram (linear within a bucket); 0 when nothing was answered.
	LatencyP50MS float64 `json:"latency_p50_ms"`
	LatencyP95MS float64 `json:"latency_p95_ms"`
}

// Sampler keeps, per app, a ring of Points taken from the edge's totals
// every Interval, for the console's charts. The totals only grow (see
// edge.AppTotals), so each Point is the difference of two readings.
type Sampler struct {
	totals   func() map[string]edge.AppTotals
	interval time.Duration
	keep     int

	mu     sync.Mutex
	last   map[string]edge.AppTotals
	lastAt time.Time
	series map[string][]Point
}

// Defaults for NewSampler: five minutes of two-second samples.
const (
	DefaultInterval = 2 * time.Second
	DefaultKeep     = 150
)

// NewSampler returns a sampler of totals keeping keep points per app
// (DefaultKeep when <= 0), one every interval (DefaultInterval when <= 0).
func NewSampler(totals func() map[string]edge.AppTotals, interval time.Duration, keep int) *Sampler {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if keep <= 0 {
		keep = DefaultKeep
	}
	return &Sampler{totals: totals, interval: interval, keep: keep, series: map[string][]Point{}}
}

// Run samples every interval until ctx ends.
func (s *Sampler) Run(ctx context.Context) {
	if s == nil {
		return
	}
	t := time.NewTicker(s.interval)
	defer t.Stop()
	s.Sample(time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.Sample(now)
		}
	}
}

// Sample reads the totals now and appends a Point per app (the first
// reading only sets the baseline).
func (s *Sampler) Sample(now time.Time) {
	cur := s.totals()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last != nil {
		dt := now.Sub(s.lastAt).Seconds()
		if dt <= 0 {
			return
		}
		for app, t := range cur {
			p := diff(s.last[app], t, dt)
			p.Time = now
			ser := append(s.series[app], p)
			if len(ser) > s.keep {
				ser = ser[len(ser)-s.keep:]
			}
			s.series[app] = ser
		}
	}
	s.last, s.lastAt = cur, now
}

// diff is the Point between readings a and b taken dt seconds apart.
func diff(a, b edge.AppTotals, dt float64) Point {
	p := Point{
		RequestsPerS:  float64(b.Requests-min(a.Requests, b.Requests)) / dt,
		Errors5xxPerS: float64(b.Errors5xx-min(a.Errors5xx, b.Errors5xx)) / dt,
	}
	if len(b.Buckets) == 0 {
		return p
	}
	counts := make([]uint64, len(b.Buckets))
	for i, c := range b.Buckets {
		var prev uint64
		if i < len(a.Buckets) {
			prev = min(a.Buckets[i], c)
		}
		counts[i] = c - prev
	}
	p.LatencyP50MS = quantile(counts, 0.50) * 1000
	p.LatencyP95MS = quantile(counts, 0.95) * 1000
	return p
}

// quantile estimates the q-quantile, in seconds, of cumulative bucket
// counts over edge.LatencyBounds (the last count is the total).
func quantile(cum []uint64, q float64) float64 {
	bounds := edge.LatencyBounds()
	total := cum[len(cum)-1]
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	lower, below := 0.0, uint64(0)
	for i, c := range cum {
		if float64(c) >= rank {
			if i >= len(bounds) {
				return bounds[len(bounds)-1] // beyond the last bound: say the bound
			}
			upper := bounds[i]
			in := c - below
			if in == 0 {
				return upper
			}
			return lower + (upper-lower)*(rank-float64(below))/float64(in)
		}
		if i < len(bounds) {
			lower = bounds[i]
		}
		below = c
	}
	return bounds[len(bounds)-1]
}

// Series returns a copy of every app's points, oldest first, and the
// sampling interval.
func (s *Sampler) Series() SeriesDoc {
	doc := SeriesDoc{Apps: map[string][]Point{}}
	if s == nil {
		return doc
	}
	doc.IntervalMS = s.interval.Milliseconds()
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.series))
	for app := range s.series {
		names = append(names, app)
	}
	sort.Strings(names)
	for _, app := range names {
		doc.Apps[app] = append([]Point(nil), s.series[app]...)
	}
	return doc
}

// SeriesDoc is GET /console/api/metrics.
type SeriesDoc struct {
	IntervalMS int64              `json:"interval_ms"`
	Apps       map[string][]Point `json:"apps"`
}
