package edge

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mycelium-mesh/mesh/core/events"
	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/sdk"
)

// weightScale is the weight of an endpoint at full strength with policy
// weight 1; slow start takes a share of it.
const weightScale = 100

// minSlowStart is the share of its weight an endpoint gets right after it
// returns from an ejection.
const minSlowStart = 0.1

// app is the routing state of one app. The request path reads picker and
// touches atomics only; everything under mu belongs to the controller.
type app struct {
	e     *Edge
	name  string
	strip atomic.Bool // strip the /{app} prefix; changed by SetApps

	picker atomic.Pointer[picker]
	rr     atomic.Uint64 // round-robin position, kept across table swaps

	requests     atomic.Uint64
	errors5xx    atomic.Uint64
	clientClosed atomic.Uint64
	inFlight     atomic.Int64
	ejectedCount atomic.Int32
	retries      atomic.Uint64 // replays in the current budget window
	window       atomic.Pointer[budgetWindow]

	prom appMetrics

	kick    chan struct{} // wakes the controller (ejections)
	balKick chan struct{} // wakes the balancer loop (endpoint changes)
	// reportsIdle is set while the balancer loop sends no load reports:
	// nothing was served since the last one. The request that ends it
	// wakes the loop (wakeReports).
	reportsIdle atomic.Bool
	balancer    Balancer

	mu        sync.Mutex
	eps       []*endpoint // current endpoints, sorted by ID
	policy    sdk.Policy
	hasPolicy bool
}

// budgetWindow is the start of the current retry budget window.
type budgetWindow struct {
	start    time.Time
	requests uint64 // the app's request count at start
}

// budgetWindowLen is how long a retry budget window lasts.
const budgetWindowLen = 10 * time.Second

func newApp(e *Edge, name string) *app {
	strip := true
	if o, ok := e.opts.Apps[name]; ok && o.StripPrefix != nil {
		strip = *o.StripPrefix
	}
	a := &app{
		e:       e,
		name:    name,
		prom:    e.metrics.forApp(name),
		kick:    make(chan struct{}, 1),
		balKick: make(chan struct{}, 1),
	}
	a.strip.Store(strip)
	a.window.Store(&budgetWindow{start: time.Now()})
	a.picker.Store(&picker{mode: sdk.ModeRoundRobin})
	return a
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// setEndpoints replaces the endpoint set. Endpoints that stay (same node and
// URL) keep their counters and health state. Called with e.mu held.
func (a *app) setEndpoints(in []fabric.Endpoint) {
	a.mu.Lock()
	defer a.mu.Unlock()
	old := make(map[string]*endpoint, len(a.eps))
	for _, ep := range a.eps {
		old[ep.id+"\x00"+ep.url] = ep
	}
	next := make([]*endpoint, 0, len(in))
	now := time.Now()
	for _, fe := range in {
		id := fe.NodeID
		if id == "" {
			id = fe.URL
		}
		key := id + "\x00" + fe.URL
		if ep, ok := old[key]; ok {
			next = append(next, ep)
			delete(old, key)
			continue
		}
		tgt, err := parseTarget(fe.URL)
		if err != nil {
			a.e.log.Warn("ignoring endpoint", "app", a.name, "node", fe.NodeID, "error", err)
			continue
		}
		next = append(next, &endpoint{
			id: id, url: fe.URL, host: tgt.Host, tgt: tgt, firstSeen: now,
			promRequests: a.e.metrics.endpointRequests.WithLabelValues(a.name, fe.URL),
			pool:         newConnPool(a.e.opts.MaxConnsPerEndpoint, a.e.opts.MaxIdleConnsPerHost),
		})
	}
	for _, ep := range old {
		ep.removed.Store(true)
		closeIdle(ep)
		a.e.metrics.endpointRequests.DeleteLabelValues(a.name, ep.url)
	}
	changed := len(old) > 0 || len(next) != len(a.eps)
	a.eps = next
	a.rebuildLocked(now)
	if changed {
		a.e.log.Debug("endpoints changed", "app", a.name, "endpoints", len(next))
	}
	signal(a.balKick)
}

// rebuildLocked compiles the current endpoints, policy and slow-start state
// into a new picker and swaps it in.
func (a *app) rebuildLocked(now time.Time) {
	mode := sdk.ModeRoundRobin
	if a.hasPolicy && a.policy.Mode == sdk.ModeP2C {
		mode = sdk.ModeP2C
	}
	weights := make([]uint64, len(a.eps))
	any := false
	for i, ep := range a.eps {
		w := uint64(1)
		if a.hasPolicy {
			if pw, ok := a.policy.Weights[ep.id]; ok {
				w = uint64(pw)
			}
		}
		weights[i] = w * weightScale
		if w > 0 {
			any = true
		}
	}
	if !any && len(a.eps) > 0 {
		// A policy that takes every endpoint out would turn the app off;
		// serve with equal weights instead.
		for i := range weights {
			weights[i] = weightScale
		}
	}
	ss := a.e.opts.Outlier.SlowStart
	for i, ep := range a.eps {
		if ep.returnedAt.IsZero() || weights[i] == 0 {
			continue
		}
		if f := float64(now.Sub(ep.returnedAt)) / float64(ss); f < 1 {
			weights[i] = max(1, uint64(float64(weights[i])*math.Max(minSlowStart, f)))
		}
	}
	var ejected int32
	for _, ep := range a.eps {
		if ep.ejected.Load() {
			ejected++
		}
	}
	a.ejectedCount.Store(ejected)
	a.picker.Store(newPicker(mode, a.eps, weights, a.e.opts.Outlier.MaxEjectionPercent))
}

// run is the app's controller: it rolls the retry budget window, times
// ejections out and ramps slow-starting endpoints.
//
// It ticks only while some endpoint is ejected, slow-starting or has
// ejections to forget; otherwise it sleeps until an ejection wakes it, so
// an app without trouble costs no timer wake-ups. (The retry budget window
// also rolls on the request path, in takeRetry.)
func (a *app) run(ctx context.Context) {
	defer a.e.wg.Done()
	const every = 250 * time.Millisecond
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
		case <-t.C:
		}
		now := time.Now()
		a.rollBudget(now)
		t.Stop()
		if a.tend(now) {
			t.Reset(every)
		}
	}
}

// takeRetry spends one replay from the budget: within a window, replays
// may reach RetryBudgetRatio of the requests plus RetryBudgetMinPerSec per
// second (at least one second's worth).
func (a *app) takeRetry() bool {
	o := &a.e.opts
	a.rollBudget(time.Now())
	w := a.window.Load()
	secs := max(time.Since(w.start).Seconds(), 1)
	allowed := o.RetryBudgetRatio*float64(a.requests.Load()-w.requests) + o.RetryBudgetMinPerSec*secs
	if float64(a.retries.Add(1)) > allowed {
		a.retries.Add(^uint64(0))
		return false
	}
	return true
}

// rollBudget starts a new retry budget window when the current one is over.
func (a *app) rollBudget(now time.Time) {
	w := a.window.Load()
	if now.Sub(w.start) >= budgetWindowLen &&
		a.window.CompareAndSwap(w, &budgetWindow{start: now, requests: a.requests.Load()}) {
		a.retries.Store(0)
	}
}

// tend processes ejections: new ones get their deadline, expired ones come
// back, and slow-starting endpoints get their next weight. It reports
// whether some endpoint still needs tending later.
func (a *app) tend(now time.Time) (pending bool) {
	o := &a.e.opts.Outlier
	a.mu.Lock()
	defer a.mu.Unlock()
	rebuild := false
	for _, ep := range a.eps {
		switch {
		case ep.ejected.Load() && ep.ejectedAt.IsZero():
			ep.ejections++
			d := o.BaseEjection * time.Duration(ep.ejections)
			if d > o.MaxEjection {
				d = o.MaxEjection
			}
			ep.ejectedAt, ep.ejectedUntil = now, now.Add(d)
			a.e.log.Warn("endpoint ejected", "app", a.name, "node", ep.id, "url", ep.url, "for", d)
			a.e.opts.Events.Emit(events.Event{Type: events.EndpointEjected, App: a.name, Node: ep.id, URL: ep.url, Detail: "ejected for " + d.String()})
			rebuild = true
		case ep.ejected.Load() && !now.Before(ep.ejectedUntil):
			ep.ejectedAt = time.Time{}
			ep.returnedAt = now
			ep.consecConn.Store(0)
			ep.consec5xx.Store(0)
			ep.ejected.Store(false)
			a.e.log.Info("endpoint returned", "app", a.name, "node", ep.id, "url", ep.url)
			a.e.opts.Events.Emit(events.Event{Type: events.EndpointReturned, App: a.name, Node: ep.id, URL: ep.url})
			rebuild = true
		case !ep.ejected.Load() && !ep.returnedAt.IsZero():
			if now.Sub(ep.returnedAt) >= o.SlowStart {
				ep.returnedAt = time.Time{}
			}
			rebuild = true
		case !ep.ejected.Load() && ep.ejections > 0 && now.Sub(ep.ejectedUntil) > o.MaxEjection:
			// A long healthy stretch forgets past ejections.
			ep.ejections = 0
		}
	}
	if rebuild {
		a.rebuildLocked(now)
	}
	for _, ep := range a.eps {
		if ep.ejected.Load() || !ep.returnedAt.IsZero() || ep.ejections > 0 {
			return true
		}
	}
	return false
}

// eject takes ep out of picks if the app's ejection cap allows it. Called
// on the request path; the controller does the rest.
func (a *app) eject(p *picker, ep *endpoint) {
	if ep.removed.Load() || !ep.ejected.CompareAndSwap(false, true) {
		return
	}
	if a.ejectedCount.Add(1) > p.maxEjected {
		a.ejectedCount.Add(-1)
		ep.ejected.Store(false)
		return
	}
	signal(a.kick)
}

// balanceLoop sends the app's state to its balancer on every endpoint change
// and every ReportInterval, and installs the answers.
func (a *app) balanceLoop(ctx context.Context) {
	defer a.e.wg.Done()
	t := time.NewTicker(a.e.opts.ReportInterval)
	defer t.Stop()
	failing, asleep := false, false
	for {
		tick := false
		select {
		case <-ctx.Done():
			return
		case <-a.balKick:
		case <-t.C:
			tick = true
		}
		seen := a.requests.Load()
		st, ok := a.state()
		if !ok {
			continue
		}
		if tick && !failing && idleState(st) {
			// Nothing served since the last report: stop reporting
			// until a request ends (wakeReports) or the endpoints change.
			t.Stop()
			asleep = true
			a.reportsIdle.Store(true)
			if a.requests.Load() != seen {
				a.wakeReports() // one ended meanwhile and saw no flag
			}
			continue
		}
		if asleep {
			asleep = false
			a.reportsIdle.Store(false)
			t.Reset(a.e.opts.ReportInterval)
		}
		cctx, cancel := context.WithTimeout(ctx, a.e.opts.BalanceTimeout)
		pol, err := a.balancer.Balance(cctx, st)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				a.e.log.Warn("balancer failed; keeping the last policy", "app", a.name, "error", err)
			}
			failing = true
			continue
		}
		if failing {
			a.e.log.Info("balancer answering again", "app", a.name)
			failing = false
		}
		a.install(pol)
	}
}

// idleState reports whether st carries no load: no request ended since the
// previous report and none is in flight.
func idleState(st sdk.AppState) bool {
	for _, l := range st.Loads {
		if l.Requests != 0 || l.Failures != 0 || l.InFlight != 0 {
			return false
		}
	}
	return true
}

// wakeReports restarts the load reports of an app whose balancer loop went
// idle; called as a request ends, it costs one atomic load otherwise.
func (a *app) wakeReports() {
	if a.reportsIdle.Load() && a.reportsIdle.CompareAndSwap(true, false) {
		signal(a.balKick)
	}
}

// state builds the balancer's view of the app and advances the load marks.
func (a *app) state() (sdk.AppState, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.eps) == 0 {
		return sdk.AppState{}, false
	}
	st := sdk.AppState{App: a.name, Endpoints: make([]sdk.Endpoint, len(a.eps)), Loads: make([]sdk.EndpointLoad, len(a.eps))}
	for i, ep := range a.eps {
		cur := loadMark{ep.requests.Load(), ep.failures.Load(), ep.latencyUS.Load()}
		dr := cur.requests - ep.last.requests
		if dr > 0 {
			avg := float64(cur.latencyUS-ep.last.latencyUS) / float64(dr)
			if ep.ewmaUS == 0 {
				ep.ewmaUS = avg
			} else {
				ep.ewmaUS = 0.3*avg + 0.7*ep.ewmaUS
			}
		}
		st.Endpoints[i] = sdk.Endpoint{ID: ep.id, URL: ep.url, NodeID: ep.id}
		st.Loads[i] = sdk.EndpointLoad{
			ID:          ep.id,
			InFlight:    uint32(max(ep.inFlight.Load(), 0)),
			Requests:    dr,
			Failures:    cur.failures - ep.last.failures,
			LatencyEWMA: ep.ewmaUS,
		}
		ep.last = cur
	}
	return st, true
}

// install applies a policy, rebuilding the picker only when it changed.
func (a *app) install(p sdk.Policy) {
	switch p.Mode {
	case sdk.ModeRoundRobin, sdk.ModeP2C:
	case "":
		p.Mode = sdk.ModeRoundRobin
	default:
		a.e.log.Warn("balancer asked for an unknown pick mode; using round-robin", "app", a.name, "mode", p.Mode)
		p.Mode = sdk.ModeRoundRobin
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.hasPolicy && samePolicy(a.policy, p) {
		return
	}
	a.policy, a.hasPolicy = p, true
	a.rebuildLocked(time.Now())
}

func samePolicy(x, y sdk.Policy) bool {
	if x.Mode != y.Mode || len(x.Weights) != len(y.Weights) {
		return false
	}
	for k, v := range x.Weights {
		if w, ok := y.Weights[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func (a *app) counters() AppCounters {
	p := a.picker.Load()
	return AppCounters{
		Requests:     a.requests.Load(),
		Errors5xx:    a.errors5xx.Load(),
		ClientClosed: a.clientClosed.Load(),
		InFlight:     a.inFlight.Load(),
		Endpoints:    len(p.eps),
		Ejected:      int(a.ejectedCount.Load()),
	}
}

// appMetrics are the Prometheus children of one app, resolved once so the
// request path does no label lookups.
type appMetrics struct {
	byClass  [6]prometheus.Counter // index: status/100; 0 unused
	duration prometheus.Observer
	inFlight prometheus.Gauge
}
