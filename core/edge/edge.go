// Package edge is the HTTP entry point of the mesh (F5, F7): it routes
// /{app}/... to the endpoints of app and counts what it serves.
//
// The routing table is rebuilt from the fabric's endpoint snapshots and from
// the balancer's policies, off the request path, and swapped atomically: a
// request takes no lock and calls neither the fabric nor a plugin. A balancer
// receives the endpoint set and batched load reports and answers with a
// policy (smooth weighted round-robin or power of two choices) that the edge
// executes in-process. Passive health checking ejects endpoints whose
// connections fail or that answer runs of 5xx, within a bounded share of the
// app, and brings them back with a slow start.
//
// Requests reach endpoints over the edge's own HTTP/1.1 connection pool
// (pool.go, upstream.go, reqhead.go, reqbody.go, respparse.go), written and
// read on the handler goroutine, with one set of rules for every method:
// stale pooled connections are retried when that is safe, bodies are
// relayed full duplex, and framing follows net/http's client, which a
// differential fuzz test holds it to.
//
// Client connections are served by the edge's own HTTP/1.1 loop (serve.go,
// serveconn.go, reqparse.go, respwriter.go, connctx.go) for plain requests
// without a body, and by net/http's server for everything else, handed
// over with the connection; a differential fuzz test holds the loop to
// net/http's behaviour.
//
// Clients are not trusted (client.go, deadline.go, conns.go, forwarded.go):
// their mistakes are answered 4xx and never counted against an endpoint,
// a client that is gone gets its response aborted rather than a status
// nobody sent, every body and stream has a deadline or an idle limit, the
// number of client connections is capped below the process's descriptor
// limit, and forwarding headers are believed only from trusted proxies.
package edge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mycelium-mesh/mesh/core/config/defaults"
	"github.com/mycelium-mesh/mesh/core/events"
	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/fdlimit"
	"github.com/mycelium-mesh/mesh/sdk"
)

// Source yields endpoint tables: the current one first, then the newest one
// after each change, until ctx ends. Every fabric.Store satisfies it.
type Source interface {
	WatchEndpoints(ctx context.Context) <-chan fabric.Snapshot
}

// Balancer turns an app's endpoints and loads into a picking policy. It is
// called from a background goroutine per app, never per request.
// sdk.Balancer satisfies it.
type Balancer interface {
	Balance(ctx context.Context, s sdk.AppState) (sdk.Policy, error)
}

// DefaultAdminAddr is where callers usually serve /metrics.
const DefaultAdminAddr = defaults.EdgeAdmin

// ErrNoSource is returned by New without a Source.
var ErrNoSource = errors.New("edge: no endpoint source")

// AppOptions are per-app settings.
type AppOptions struct {
	// StripPrefix removes /{app} before forwarding; nil means true.
	StripPrefix *bool
}

// OutlierOptions tune passive health checking. Zero values take defaults.
type OutlierOptions struct {
	ConsecutiveConnFailures int           // default 3
	Consecutive5xx          int           // default 5
	BaseEjection            time.Duration // default 10s; grows with each ejection
	MaxEjection             time.Duration // default 5m
	MaxEjectionPercent      int           // default 50; share of an app's endpoints
	SlowStart               time.Duration // default 10s; weight ramps from 10% to 100%
}

// Options configure an Edge. Zero durations and sizes take the defaults in
// parentheses.
type Options struct {
	Source    Source                    // required
	Balancers func(app string) Balancer // once per new app, must not block; nil (or nil for an app): equal-weight round-robin
	Apps      map[string]AppOptions     // per-app settings; listed apps answer 503, not 404, before they have endpoints
	Logger    hclog.Logger              // used as given, callers name it (null logger)
	AdminAddr string                    // /metrics listener; "" disables it (see DefaultAdminAddr)
	// Collectors are served on /metrics beside the edge's own metrics
	// (the mesh adds instance, rollout and plugin state).
	Collectors []prometheus.Collector
	// AdminHandler, when set, serves every path of the admin listener
	// but /metrics (the mesh's web console).
	AdminHandler http.Handler

	LogInterval    time.Duration // counters log line (10s)
	ReportInterval time.Duration // load reports to the balancer (500ms)
	BalanceTimeout time.Duration // one Balance call (2s)

	ReadHeaderTimeout   time.Duration // (5s)
	IdleTimeout         time.Duration // client keep-alive (90s)
	UpstreamTimeout     time.Duration // sending a request and awaiting the response header (30s)
	DialTimeout         time.Duration // upstream connect (3s)
	MaxHeaderBytes      int           // (64 KiB); larger headers get 431
	MaxIdleConnsPerHost int           // upstream pool (1024)
	// MaxConnsPerEndpoint caps the connections, busy and idle, to one
	// endpoint (1024); a request that finds them all busy waits for one,
	// up to UpstreamTimeout (504 after).
	MaxConnsPerEndpoint int

	// Hostile or broken clients and endpoints. A request body must arrive
	// within RequestBodyTimeout of the handler starting (60s; 408 otherwise).
	// A non-streaming answer must be relayed, first byte of the header to
	// the last of the body, within WriteTimeout (60s); the deadline bounds
	// both the client's reading and the endpoint's sending. Streaming
	// answers (server-sent events, bodies of unknown length) and upgraded
	// connections have no total limit but are closed after
	// StreamIdleTimeout (5m) without a byte in either direction.
	RequestBodyTimeout time.Duration
	WriteTimeout       time.Duration
	StreamIdleTimeout  time.Duration
	// MaxConnections caps the client connections open at once; further
	// connections wait in the listen backlog until one closes. Zero or less
	// takes ConnectionCap of the process's file descriptor limit, which
	// leaves a reserve for the control plane.
	MaxConnections int
	// TrustedProxies are the peers whose X-Forwarded-*, X-Real-IP and
	// Forwarded headers are passed on; from anyone else they are replaced.
	TrustedProxies []netip.Prefix
	// Events, when set, receives endpoint.ejected and endpoint.returned
	// from passive health checking. It must not block.
	Events events.Sink

	// DisableIdempotentRetry stops replaying GET/HEAD/OPTIONS requests that
	// already reached an endpoint. Requests that never reached one (connect
	// failures) are always retried on another endpoint.
	DisableIdempotentRetry bool
	// RetryBudgetRatio is the share of requests that may be replayed (0.2),
	// on top of RetryBudgetMinPerSec (3) replays per second.
	RetryBudgetRatio     float64
	RetryBudgetMinPerSec float64

	Outlier OutlierOptions

	// netHTTPOnly serves every request with net/http's server instead of
	// the edge's own connection loop: the reference the loop is tested
	// against.
	netHTTPOnly bool

	// probeAfter is how long a pooled connection may have been idle before
	// it is probed ahead of an idempotent request (1s); negative: always.
	probeAfter time.Duration
}

func (o *Options) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	def(&o.LogInterval, defaults.LogInterval)
	def(&o.ReportInterval, defaults.ReportInterval)
	def(&o.BalanceTimeout, defaults.BalanceTimeout)
	def(&o.ReadHeaderTimeout, defaults.ReadHeaderTimeout)
	def(&o.IdleTimeout, defaults.IdleTimeout)
	def(&o.UpstreamTimeout, defaults.UpstreamTimeout)
	def(&o.DialTimeout, defaults.DialTimeout)
	def(&o.RequestBodyTimeout, defaults.RequestBodyTimeout)
	def(&o.WriteTimeout, defaults.WriteTimeout)
	def(&o.StreamIdleTimeout, defaults.StreamIdleTimeout)
	if o.MaxConnections <= 0 {
		o.MaxConnections = ConnectionCap(fdlimit.Soft())
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = defaults.MaxHeaderBytes
	}
	if o.MaxIdleConnsPerHost <= 0 {
		o.MaxIdleConnsPerHost = defaults.MaxIdleConnsPerHost
	}
	if o.MaxConnsPerEndpoint <= 0 {
		o.MaxConnsPerEndpoint = defaults.MaxConnsPerEndpoint
	}
	if o.probeAfter == 0 {
		o.probeAfter = probeAfterDefault
	}
	if o.RetryBudgetRatio <= 0 {
		o.RetryBudgetRatio = defaults.RetryBudgetRatio
	}
	if o.RetryBudgetMinPerSec <= 0 {
		o.RetryBudgetMinPerSec = defaults.RetryBudgetMinPerSec
	}
	oo := &o.Outlier
	if oo.ConsecutiveConnFailures <= 0 {
		oo.ConsecutiveConnFailures = defaults.ConsecutiveConnFailures
	}
	if oo.Consecutive5xx <= 0 {
		oo.Consecutive5xx = defaults.Consecutive5xx
	}
	def(&oo.BaseEjection, defaults.BaseEjection)
	def(&oo.MaxEjection, defaults.MaxEjection)
	if oo.MaxEjectionPercent <= 0 || oo.MaxEjectionPercent > 100 {
		oo.MaxEjectionPercent = defaults.MaxEjectionPercent
	}
	def(&oo.SlowStart, defaults.SlowStart)
}

// AppCounters are the counters of one app since the edge started.
type AppCounters struct {
	Requests     uint64 // completed requests, all statuses
	Errors5xx    uint64 // answers with a 5xx status, the edge's own included
	ClientClosed uint64 // clients gone before the answer (counted as 499)
	InFlight     int64
	Endpoints    int // endpoints in the routing table
	Ejected      int // of those, ejected by passive health checking
}

// Edge is the reverse proxy. Create it with New, then Start it.
type Edge struct {
	opts      Options
	log       hclog.Logger
	transport *http.Transport
	dialer    *net.Dialer
	metrics   *metrics

	routes atomic.Pointer[map[string]*app]
	sites  siteTable     // static sites by Host (sites.go)
	probes atomic.Uint64 // pooled connections probed before reuse

	mu       sync.Mutex // guards apps, started, upgraded
	apps     map[string]*app
	served   map[string]bool // apps whose last snapshot had endpoints
	started  bool
	upgraded map[net.Conn]struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	srv     *http.Server // serves what the edge's own loop hands over (serve.go)
	front   *front
	ln      net.Listener
	capLn   *capListener
	admin   *http.Server
	adminLn net.Listener
}

// New checks opts and builds an edge; nothing listens until Start.
func New(opts Options) (*Edge, error) {
	if opts.Source == nil {
		return nil, ErrNoSource
	}
	opts.setDefaults()
	met := newMetrics()
	for _, c := range opts.Collectors {
		if err := met.reg.Register(c); err != nil {
			return nil, fmt.Errorf("edge: register metrics collector: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Edge{
		opts:     opts,
		log:      opts.Logger,
		metrics:  met,
		apps:     map[string]*app{},
		upgraded: map[net.Conn]struct{}{},
		ctx:      ctx,
		cancel:   cancel,
	}
	dialer := &net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}
	e.dialer = dialer
	e.transport = &http.Transport{
		DialContext:            dialer.DialContext,
		MaxIdleConns:           0, // no global cap; per host below
		MaxIdleConnsPerHost:    opts.MaxIdleConnsPerHost,
		IdleConnTimeout:        defaults.UpstreamIdle, // as the edge's own pool (upstream.go)
		ResponseHeaderTimeout:  opts.UpstreamTimeout,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		ExpectContinueTimeout:  time.Second,
		DisableCompression:     true,
		ForceAttemptHTTP2:      false,
		WriteBufferSize:        16 << 10,
		ReadBufferSize:         16 << 10,
	}
	empty := map[string]*app{}
	e.routes.Store(&empty)
	for name := range opts.Apps {
		e.appLocked(name)
	}
	e.publishLocked()
	return e, nil
}

// Start binds addr, serves in the background, and starts watching the
// source, balancing and logging. It binds the admin listener too when
// Options.AdminAddr is set.
func (e *Edge) Start(addr string) error {
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return errors.New("edge: already started")
	}
	e.started = true
	e.mu.Unlock()

	ln, err := listenClients(context.Background(), addr)
	if err != nil {
		return fmt.Errorf("edge: %w", err)
	}
	if e.opts.AdminAddr != "" {
		aln, err := net.Listen("tcp", e.opts.AdminAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("edge: listen admin %s: %w", e.opts.AdminAddr, err)
		}
		e.adminLn = aln
		e.admin = &http.Server{
			Handler:           e.metrics.handler(e.opts.AdminHandler),
			ReadHeaderTimeout: defaults.AdminReadHeaderTimeout,
			IdleTimeout:       defaults.AdminIdleTimeout,
			ErrorLog:          e.log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
		}
		go func() {
			if err := e.admin.Serve(aln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				e.log.Error("admin listener stopped", "error", err)
			}
		}()
	}
	e.ln = ln
	e.capLn = newCapListener(ln, e.opts.MaxConnections, e.log)
	e.srv = &http.Server{
		Handler:           e,
		ReadHeaderTimeout: e.opts.ReadHeaderTimeout,
		IdleTimeout:       e.opts.IdleTimeout,
		// The server arms the write deadline as each request arrives, so
		// no deadline outlives its request; relay re-arms it for the answer.
		WriteTimeout:   e.opts.WriteTimeout,
		MaxHeaderBytes: e.opts.MaxHeaderBytes,
		ErrorLog:       e.log.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug}),
	}
	// Take the first snapshot before serving so that requests arriving
	// right after Start already see the endpoints.
	snaps := e.opts.Source.WatchEndpoints(e.ctx)
	select {
	case s, ok := <-snaps:
		if ok {
			e.apply(s)
		}
	case <-time.After(time.Second):
	}
	e.wg.Add(3)
	go e.watch(snaps)
	go e.logLoop()
	go e.reapLoop()
	if e.opts.netHTTPOnly {
		go func() {
			if err := e.srv.Serve(e.capLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				e.log.Error("listener stopped", "error", err)
			}
		}()
	} else {
		e.front = newFront(e, e.capLn, e.srv)
		go e.front.serve()
	}
	e.log.Info("edge listening", "addr", ln.Addr().String(), "admin", e.AdminAddr(), "max_connections", e.opts.MaxConnections)
	return nil
}

// Addr is the bound address after Start, nil before.
func (e *Edge) Addr() net.Addr {
	if e.ln == nil {
		return nil
	}
	return e.ln.Addr()
}

// AdminAddr is the bound admin address after Start, nil when disabled.
func (e *Edge) AdminAddr() net.Addr {
	if e.adminLn == nil {
		return nil
	}
	return e.adminLn.Addr()
}

// Shutdown stops accepting, waits for in-flight requests to finish (or ctx
// to end), then stops the background work and closes upgraded connections.
func (e *Edge) Shutdown(ctx context.Context) error {
	var err error
	switch {
	case e.front != nil:
		err = e.front.shutdown(ctx)
	case e.srv != nil:
		err = e.srv.Shutdown(ctx)
	}
	if e.admin != nil {
		if aerr := e.admin.Shutdown(ctx); aerr != nil && err == nil {
			err = aerr
		}
	}
	e.cancel()
	e.mu.Lock()
	for c := range e.upgraded {
		c.Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
	e.transport.CloseIdleConnections()
	e.mu.Lock()
	for _, a := range e.apps {
		a.mu.Lock()
		for _, ep := range a.eps {
			closeIdle(ep)
		}
		a.mu.Unlock()
	}
	e.mu.Unlock()
	if err != nil {
		return fmt.Errorf("edge: shutdown: %w", err)
	}
	return nil
}

// Counters returns the counters of every app the edge knows.
func (e *Edge) Counters() map[string]AppCounters {
	apps := *e.routes.Load()
	out := make(map[string]AppCounters, len(apps))
	for name, a := range apps {
		out[name] = a.counters()
	}
	return out
}

// watch applies snapshots until the source closes or the edge stops.
func (e *Edge) watch(snaps <-chan fabric.Snapshot) {
	defer e.wg.Done()
	for {
		select {
		case <-e.ctx.Done():
			return
		case s, ok := <-snaps:
			if !ok {
				if e.ctx.Err() == nil {
					e.log.Warn("endpoint source closed; keeping the last routing table")
				}
				return
			}
			e.apply(s)
		}
	}
}

// apply installs one endpoint snapshot. Apps missing from it keep their
// entry with no endpoints, so they answer 503 rather than 404.
func (e *Edge) apply(s fabric.Snapshot) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for name, eps := range s.Apps {
		e.appLocked(name).setEndpoints(eps)
	}
	for name, a := range e.apps {
		if _, ok := s.Apps[name]; !ok {
			a.setEndpoints(nil)
		}
	}
	e.served = make(map[string]bool, len(s.Apps))
	for name, eps := range s.Apps {
		if len(eps) > 0 {
			e.served[name] = true
		}
	}
	e.publishLocked()
}

// SetApps replaces the per-app settings, as a configuration reload does:
// strip-prefix changes take effect for the next request, and an app that is
// neither listed nor has endpoints is no longer routed (it answers 404
// instead of 503).
func (e *Edge) SetApps(apps map[string]AppOptions) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.opts.Apps = apps
	for name, a := range e.apps {
		strip := true
		if o, ok := apps[name]; ok && o.StripPrefix != nil {
			strip = *o.StripPrefix
		}
		a.strip.Store(strip)
	}
	for name := range apps {
		e.appLocked(name)
	}
	e.publishLocked()
}

// appLocked returns the app called name, creating it and its goroutines.
func (e *Edge) appLocked(name string) *app {
	if a, ok := e.apps[name]; ok {
		return a
	}
	a := newApp(e, name)
	e.apps[name] = a
	if e.opts.Balancers != nil {
		a.balancer = e.opts.Balancers(name)
	}
	e.wg.Add(1)
	go a.run(e.ctx)
	if a.balancer != nil {
		e.wg.Add(1)
		go a.balanceLoop(e.ctx)
	}
	return a
}

// publishLocked swaps in a new app map for the request path.
func (e *Edge) publishLocked() {
	m := make(map[string]*app, len(e.apps))
	for k, v := range e.apps {
		// An app is routed while it has endpoints or is configured; one
		// withdrawn and drained answers 404 like any unknown app. Its
		// state is kept for when it comes back.
		if _, listed := e.opts.Apps[k]; listed || e.served[k] {
			m[k] = v
		}
	}
	e.routes.Store(&m)
}

// logLoop writes one counters line per app every LogInterval.
func (e *Edge) logLoop() {
	defer e.wg.Done()
	t := time.NewTicker(e.opts.LogInterval)
	defer t.Stop()
	last := map[string]AppCounters{}
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		}
		cs := e.Counters()
		names := make([]string, 0, len(cs))
		for n := range cs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			c, p := cs[n], last[n]
			e.log.Info("counters", "app", n,
				"requests", c.Requests, "5xx", c.Errors5xx,
				"requests_interval", c.Requests-p.Requests, "5xx_interval", c.Errors5xx-p.Errors5xx,
				"client_closed", c.ClientClosed, "in_flight", c.InFlight,
				"endpoints", c.Endpoints, "ejected", c.Ejected)
		}
		last = cs
	}
}

func parseTarget(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("want http://host:port, got %q", raw)
	}
	return u, nil
}
