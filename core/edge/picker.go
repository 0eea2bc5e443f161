package edge

import (
	"math/rand/v2"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mycelium-mesh/mesh/sdk"
)

// endpoint is one instance of an app as the data path sees it. Its counters
// are atomics written by the request path; the other fields are fixed at
// creation or owned by the app's controller.
type endpoint struct {
	id   string // node ID, unique within the app
	url  string
	host string // host:port the transport dials
	tgt  *url.URL

	inFlight  atomic.Int64
	requests  atomic.Uint64 // completed requests
	failures  atomic.Uint64 // connection errors and 5xx
	latencyUS atomic.Uint64 // sum of request latencies, microseconds

	consecConn atomic.Int32 // consecutive connection failures
	consec5xx  atomic.Int32 // consecutive 5xx answers
	ejected    atomic.Bool
	removed    atomic.Bool

	promRequests prometheus.Counter
	pool         *connPool // keep-alive connections

	// Owned by the controller (app.mu).
	ejections    int       // how often it was ejected; grows the ejection time
	ejectedAt    time.Time // zero until the controller saw the ejection
	ejectedUntil time.Time
	returnedAt   time.Time // end of the last ejection, for slow start
	firstSeen    time.Time
	last         loadMark
	ewmaUS       float64
}

// loadMark remembers the counters at the previous load report.
type loadMark struct {
	requests, failures, latencyUS uint64
}

// picker is the immutable routing state of one app: the endpoints that take
// picks and how to choose among them. It is replaced whole, never mutated.
type picker struct {
	mode    sdk.PickMode
	eps     []*endpoint // endpoints with a weight above zero
	weights []uint64    // effective weights, parallel to eps
	seq     []uint16    // smooth weighted round-robin cycle, indexes into eps
	// maxEjected bounds how many endpoints may be ejected at once.
	maxEjected int32
}

// maxSeq caps the round-robin cycle; weights are scaled down to fit.
const maxSeq = 4096

// newPicker compiles endpoints and effective weights into a picker. Weights
// are reduced by their greatest common divisor, so equal weights give an
// exact rotation in endpoint order.
func newPicker(mode sdk.PickMode, eps []*endpoint, weights []uint64, maxEjectPct int) *picker {
	p := &picker{mode: mode}
	for i, ep := range eps {
		if weights[i] == 0 {
			continue
		}
		p.eps = append(p.eps, ep)
		p.weights = append(p.weights, weights[i])
	}
	p.maxEjected = int32(len(p.eps) * maxEjectPct / 100)
	if len(p.eps) == 0 || mode == sdk.ModeP2C {
		return p
	}
	w := append([]uint64(nil), p.weights...)
	var g, sum uint64
	for _, x := range w {
		g = gcd(g, x)
	}
	for i := range w {
		w[i] /= g
		sum += w[i]
	}
	if sum > maxSeq {
		total := sum
		sum = 0
		for i := range w {
			w[i] = max(1, w[i]*maxSeq/total)
			sum += w[i]
		}
	}
	// Smooth weighted round-robin: each step every endpoint gains its
	// weight, the largest current value wins (first in order on ties) and
	// pays back the total.
	cur := make([]int64, len(w))
	p.seq = make([]uint16, 0, sum)
	for n := uint64(0); n < sum; n++ {
		best := -1
		for i := range w {
			cur[i] += int64(w[i])
			if best < 0 || cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= int64(sum)
		p.seq = append(p.seq, uint16(best))
	}
	return p
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// usable tells whether ep may take this pick.
func usable(ep *endpoint, tried []*endpoint, ignoreEjection bool) bool {
	if !ignoreEjection && ep.ejected.Load() {
		return false
	}
	for _, t := range tried {
		if t == ep {
			return false
		}
	}
	return true
}

// pick chooses an endpoint not in tried, skipping ejected endpoints unless
// nothing else is left. It returns nil when every endpoint was tried. It
// uses only atomics: rr is the app's rotation counter.
func (p *picker) pick(rr *atomic.Uint64, tried []*endpoint) *endpoint {
	n := len(p.eps)
	if n == 0 {
		return nil
	}
	if n == 1 {
		if usable(p.eps[0], tried, true) {
			return p.eps[0]
		}
		return nil
	}
	if p.mode == sdk.ModeP2C {
		i := rand.IntN(n)
		j := rand.IntN(n - 1)
		if j >= i {
			j++
		}
		a, b := p.eps[i], p.eps[j]
		ua, ub := usable(a, tried, false), usable(b, tried, false)
		switch {
		case ua && ub:
			// Compare inFlight/weight without division.
			la := uint64(max(a.inFlight.Load(), 0)) * p.weights[j]
			lb := uint64(max(b.inFlight.Load(), 0)) * p.weights[i]
			if lb < la {
				return b
			}
			return a
		case ua:
			return a
		case ub:
			return b
		}
		return p.scan(rand.IntN(n), tried)
	}
	start := rr.Add(1) - 1
	seq := p.seq
	m := uint64(len(seq))
	for k := uint64(0); k < m; k++ {
		ep := p.eps[seq[(start+k)%m]]
		if usable(ep, tried, false) {
			return ep
		}
	}
	return p.scan(int(start%uint64(n)), tried)
}

// scan walks all endpoints from start, first honouring ejections, then
// ignoring them: with every endpoint ejected the app is better served by a
// suspect endpoint than by none.
func (p *picker) scan(start int, tried []*endpoint) *endpoint {
	n := len(p.eps)
	for _, ignore := range [2]bool{false, true} {
		for k := 0; k < n; k++ {
			ep := p.eps[(start+k)%n]
			if usable(ep, tried, ignore) {
				return ep
			}
		}
	}
	return nil
}
