// Package mesh assembles a running Mycelium Mesh from mesh.hcl: the control
// fabric, the agents (one per node ID), the HTTP edge, the plugins behind
// them, and the control API that `mesh deploy`, `mesh status` and
// `mesh reload` talk to.
package mesh

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
	"github.com/prometheus/client_golang/prometheus"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/mycelium-mesh/mesh/core/agent"
	"github.com/mycelium-mesh/mesh/core/config"
	"github.com/mycelium-mesh/mesh/core/console"
	"github.com/mycelium-mesh/mesh/core/edge"
	"github.com/mycelium-mesh/mesh/core/events"
	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/fdlimit"
	"github.com/mycelium-mesh/mesh/core/pluginhost"
	"github.com/mycelium-mesh/mesh/core/repo"
	"github.com/mycelium-mesh/mesh/core/rollout"
	"github.com/mycelium-mesh/mesh/core/spore"
)

// Options configure a Mesh.
type Options struct {
	// ConfigPath is the mesh.hcl to load.
	ConfigPath string
	// Warmup overrides the configuration's blue/green warmup when > 0.
	Warmup time.Duration
	// Logger receives every component's logs. Defaults to stderr at the
	// configured level.
	Logger hclog.Logger
	// SelfExe is the mesh binary, re-executed to serve bundled plugins.
	// Defaults to the running executable.
	SelfExe string
	// Roles are the parts of the mesh this process runs (cluster.go);
	// zero means every one.
	Roles Role
}

// ConfigError carries HCL diagnostics of a configuration that did not load.
type ConfigError struct {
	Diags hcl.Diagnostics
}

func (e *ConfigError) Error() string { return e.Diags.Error() }

// Mesh is one running mesh.
type Mesh struct {
	opts   Options
	log    hclog.Logger
	cfg    *config.Config
	trust  []ed25519.PublicKey
	fabric fabric.Store
	repo   *repo.Repo
	plug   *plugins
	edge   *edge.Edge
	agents []*agent.Agent
	nodes  []string

	mu sync.Mutex // guards cfg, pluginsFP, trust and edge
	// pluginsFP fingerprints the plugin blocks of cfg as loaded.
	pluginsFP string
	applyMu   sync.Mutex // serialises applying app blocks (start, reload, SIGHUP)

	publishedMu sync.Mutex
	published   map[string]time.Time // when each app's current plan was published
	started     time.Time
	control     *controlServer
	rollouts    *rollouts  // every rollout, followed server-side (rollouts.go)
	sites       siteHolder // static sites served by Host (sites.go)

	// verified remembers the repo spores deploys verified, by digest and
	// trusted-key set (deploy.go).
	verified spore.VerifyCache

	events  *events.Bus      // the event stream (events.go)
	samples *console.Sampler // per-app traffic for the console's charts (console.go)
	// quit closes when Run starts stopping, ending the event streams it
	// serves (the admin listener's shutdown would otherwise wait for them).
	quit      chan struct{}
	clustered bool // the fabric is on etcd (a cluster block); fixed at New
	seenMu    sync.Mutex
	seen      map[string]time.Time // in a cluster: when each ready endpoint was first seen (cluster.go)
}

// New loads the configuration and opens the fabric, the repo and the
// plugins. Nothing is launched until Run.
func New(ctx context.Context, opts Options) (*Mesh, error) {
	cfg, err := loadConfig(opts.ConfigPath)
	if err != nil {
		return nil, err
	}
	if opts.Warmup > 0 {
		cfg.Warmup = opts.Warmup
	}
	if err := checkRoles(cfg, opts.Roles); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = hclog.New(&hclog.LoggerOptions{
			Name:   "mesh",
			Level:  hclog.LevelFromString(cfg.LogLevel),
			Output: os.Stderr,
		})
	}
	// Every connection, pipe and plugin channel is a descriptor: take the
	// whole hard limit, which sizes the edge's connection cap.
	if soft, hard, err := fdlimit.Raise(); err != nil {
		log.Warn("cannot raise the open file limit", "soft", soft, "hard", hard, "error", err)
	} else {
		log.Debug("open file limit", "soft", soft, "hard", hard)
	}
	if opts.SelfExe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find mesh executable: %w", err)
		}
		opts.SelfExe = exe
	}
	trust, err := spore.LoadTrustedKeys(cfg.TrustedKeys)
	if err != nil {
		return nil, fmt.Errorf("load trusted keys: %w", err)
	}
	if len(trust) == 0 {
		log.Warn("no trusted_keys configured: every spore will be refused")
	}
	for _, d := range []string{cfg.DataDir, cfg.RunDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}

	m := &Mesh{opts: opts, log: log, cfg: cfg, pluginsFP: pluginsFingerprint(cfg), trust: trust, published: map[string]time.Time{}}
	m.events, m.quit = events.New(0, 0), make(chan struct{})
	ok := false
	defer func() {
		if !ok {
			m.closeAll()
		}
	}()

	// The fabric first: its store is locked by one mesh at a time, so a
	// second mesh on the same data_dir stops here, before any plugin starts.
	// Through a concrete variable: a failed New's nil *Fabric stored in the
	// Store interface would not be nil, and closeAll would call Close on it.
	if cfg.Cluster != nil { // the fabric on etcd, shared by every host (cluster.go)
		m.clustered = true
		st, err := openClusterFabric(ctx, cfg, m)
		if err != nil {
			return nil, err
		}
		m.fabric = st
	} else {
		fab, err := fabric.New(fabric.Options{DataDir: cfg.DataDir, Logger: log.Named("fabric")})
		if err == nil {
			m.fabric = fab
		}
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("data_dir %s is in use by another running mesh (its fabric store is locked); stop it or use another data_dir", cfg.DataDir)
		}
		if errors.Is(err, fabric.ErrCorrupt) {
			return nil, corruptStoreError(cfg, err)
		}
		if err != nil {
			return nil, fmt.Errorf("open fabric: %w", err)
		}
	}
	m.fabric = eventFabric{Store: m.fabric, emit: m.events.Sink()} // plan writes become events
	if m.has(RoleControl) {
		if err := checkState(cfg, m.fabric); err != nil {
			return nil, err
		}
		if m.rollouts, err = openRollouts(m, cfg.DataDir, log.Named("rollouts")); err != nil {
			return nil, err
		}
	}
	m.plug, err = startPlugins(ctx, cfg, opts.SelfExe, log.Named("plugins"), m.events.Sink())
	if err != nil {
		return nil, err
	}
	var ropts []repo.Option
	if m.plug.backend != nil {
		ropts = append(ropts, repo.WithBackend(m.plug.backend))
	}
	m.repo, err = repo.Open(cfg.Repo.Dir, ropts...)
	if err != nil {
		return nil, fmt.Errorf("open repo: %w", err)
	}
	ok = true
	return m, nil
}

func loadConfig(path string) (*config.Config, error) {
	cfg, diags := Validate(path)
	if diags.HasErrors() {
		return nil, &ConfigError{Diags: diags}
	}
	return cfg, nil
}

// Config returns the configuration in force.
func (m *Mesh) Config() *config.Config {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cfg
}

// Run applies the configured apps, starts the agents, the edge and the control
// API, and blocks until ctx ends. It then stops the edge gracefully, every
// workload (SIGTERM, grace, SIGKILL) and every plugin. A process that runs
// only some roles (Options.Roles) starts only those parts.
func (m *Mesh) Run(ctx context.Context) error {
	defer m.closeAll()
	m.started = time.Now()
	cfg := m.Config()

	if m.has(RoleControl) {
		m.applyMu.Lock()
		err := m.applyApps(ctx, cfg)
		m.applyMu.Unlock()
		if err != nil {
			return err
		}
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	var wg sync.WaitGroup
	errs := make(chan error, len(cfg.Agents.NodeIDs)+2)
	if m.has(RoleAgents) {
		for _, node := range cfg.Agents.NodeIDs {
			a, err := agent.New(m.agentOptions(cfg, node))
			if err != nil {
				return fmt.Errorf("agent %s: %w", node, err)
			}
			m.agents = append(m.agents, a)
			m.nodes = append(m.nodes, node)
		}
	}
	for _, a := range m.agents {
		wg.Add(1)
		go func(a *agent.Agent) {
			defer wg.Done()
			if err := a.Start(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				errs <- err
			}
		}(a)
	}

	// Workloads adopted from a previous run are registered again before
	// the edge takes traffic, so a restart costs no request.
	for _, a := range m.agents {
		select {
		case <-a.Adopted():
		case <-time.After(cfg.Agents.HealthTimeout + time.Second):
		case <-ctx.Done():
		}
	}
	var e *edge.Edge
	if m.has(RoleEdge) {
		var err error
		if e, err = edge.New(m.edgeOptions(cfg)); err != nil {
			cancel()
			wg.Wait()
			return fmt.Errorf("edge: %w", err)
		}
		if err := e.Start(cfg.Edge.Listen); err != nil {
			cancel()
			wg.Wait()
			return err
		}
		m.mu.Lock()
		m.edge = e
		m.mu.Unlock()
		go m.samples.Run(runCtx)
		if err := m.applySites(); err != nil { // static sites, see sites.go
			m.log.Error("static sites not served", "error", err)
		}
	}
	shutEdge := func(ctx context.Context) {
		if e == nil {
			return
		}
		if err := e.Shutdown(ctx); err != nil {
			m.log.Warn("edge shutdown", "error", err)
		}
	}

	watched := make(chan struct{})
	stopWatch := func() {}
	if m.has(RoleControl) {
		if err := m.dropStaleSiteApps(""); err != nil { // apps a site moved away from before a stop
			m.log.Error("site apps not withdrawn", "error", err)
		}
		cs, err := startControl(m, cfg.Control)
		if err != nil {
			cancel()
			shutEdge(context.Background())
			wg.Wait()
			return err
		}
		m.control = cs
		// The watcher stops first on the way out, so workloads being stopped
		// are never judged as a failed rollout.
		var watchCtx context.Context
		watchCtx, stopWatch = context.WithCancel(runCtx)
		go func() {
			defer close(watched)
			m.rollouts.run(watchCtx)
		}()
		m.log.Info("mesh running", "roles", m.roles().String(), "nodes", len(m.agents), "apps", len(cfg.Apps), "control", cs.describe())
	} else {
		close(watched)
		m.log.Info("mesh running", "roles", m.roles().String(), "nodes", len(m.agents))
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
		m.log.Error("component failed, stopping the mesh", "error", runErr)
	}

	m.log.Info("stopping mesh")
	close(m.quit)
	stopWatch()
	<-watched
	if m.control != nil {
		m.control.close()
	}
	sctx, scancel := context.WithTimeout(context.Background(), cfg.Grace+5*time.Second)
	shutEdge(sctx)
	scancel()
	cancel()
	wg.Wait()
	m.log.Info("mesh stopped")
	return runErr
}

// agentOptions builds the options of the agent of node from cfg.
func (m *Mesh) agentOptions(cfg *config.Config, node string) agent.Options {
	return agent.Options{
		NodeID:        node,
		Fabric:        m.fabric,
		Repo:          m.repo,
		TrustedFunc:   m.trustedKeys,
		RunDir:        cfg.RunDir,
		Health:        m.plug.check,
		HealthPath:    cfg.Health.Path,
		HealthTimeout: cfg.Agents.HealthTimeout,
		CheckTimeout:  cfg.Health.Timeout,
		Warmup:        cfg.Warmup,
		Grace:         cfg.Grace,
		Logger:        m.log.Named("agent").With("node", node),
		Host:          agentHost(cfg), // the advertise address in a cluster

		EnforceNutrients: cfg.Agents.EnforceNutrients,
		MaxPids:          cfg.Agents.MaxPids,
		Logs:             m.logPolicy,
		Secrets:          []string{cfg.Control.Token},
		ShimCommand:      []string{m.opts.SelfExe, agent.ShimArg},
		Adopt:            cfg.Agents.Adopt,
		LogRelayCommand:  []string{m.opts.SelfExe, agent.LogRelayArg},
		Events:           m.events.Sink(),
	}
}

func (m *Mesh) closeAll() {
	if m.plug != nil {
		m.plug.close()
	}
	if m.fabric != nil {
		_ = m.fabric.Close()
	}
	if m.rollouts != nil {
		_ = m.rollouts.close()
	}
}

// edgeOptions builds the edge's options from cfg.
func (m *Mesh) edgeOptions(cfg *config.Config) edge.Options {
	return edge.Options{
		Source:            m.fabric,
		Balancers:         m.plug.balancerFor(cfg),
		Logger:            m.log.Named("edge"),
		AdminAddr:         cfg.Edge.Admin,
		LogInterval:       cfg.Edge.LogInterval,
		Apps:              edgeApps(cfg),
		Collectors:        []prometheus.Collector{newCollector(m)},
		ReadHeaderTimeout: cfg.Edge.ReadHeaderTimeout,
		IdleTimeout:       cfg.Edge.IdleTimeout,
		UpstreamTimeout:   cfg.Edge.UpstreamTimeout,
		MaxHeaderBytes:    cfg.Edge.MaxHeaderBytes,

		RequestBodyTimeout:  cfg.Edge.RequestBodyTimeout,
		WriteTimeout:        cfg.Edge.WriteTimeout,
		StreamIdleTimeout:   cfg.Edge.StreamIdleTimeout,
		MaxConnections:      cfg.Edge.MaxConnections,
		TrustedProxies:      cfg.Edge.TrustedProxies,
		Events:              m.events.Sink(),
		AdminHandler:        m.consoleHandler(cfg),
		MaxConnsPerEndpoint: cfg.Edge.MaxConnsPerEndpoint,
	}
}

// edgeApps returns the edge's per-app settings from cfg.
func edgeApps(cfg *config.Config) map[string]edge.AppOptions {
	apps := map[string]edge.AppOptions{}
	for _, a := range cfg.Apps {
		strip := a.StripPrefix
		apps[a.Name] = edge.AppOptions{StripPrefix: &strip}
	}
	return apps
}

// ErrRefused is returned for a spore that does not verify.
var ErrRefused = errors.New("spore refused")

// verifyCause words a verification error for an operator: the path of a
// file the operator never named (an upload, a repo blob) is left out.
func verifyCause(err error, path string) string {
	msg := strings.ReplaceAll(err.Error(), "verify "+path+": ", "")
	msg = strings.ReplaceAll(msg, path, "the spore")
	if errors.Is(err, spore.ErrUntrustedKey) {
		msg += " (add the signer's public key to trusted_keys in mesh.hcl and run `mesh reload`)"
	}
	return msg
}

func (m *Mesh) markPublished(app string) {
	m.publishedMu.Lock()
	m.published[app] = time.Now()
	m.publishedMu.Unlock()
}

func (m *Mesh) publishedAt(app string) time.Time {
	m.publishedMu.Lock()
	defer m.publishedMu.Unlock()
	return m.published[app]
}

// ErrUnknownApp is returned for an app the mesh has no plan for.
var ErrUnknownApp = errors.New("unknown app")

// trustedKeys returns the trusted keys in force; a reload replaces them.
func (m *Mesh) trustedKeys() []ed25519.PublicKey {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.trust
}

// Publish verifies a spore file against the trusted keys, stores it in the
// repo (and its backend) and returns its digest.
func (m *Mesh) Publish(path string) (string, error) {
	if _, err := spore.Verify(path, m.trustedKeys()); err != nil {
		return "", fmt.Errorf("%w: %s", ErrRefused, verifyCause(err, path))
	}
	return m.repo.Put(path)
}

// Status is a snapshot of the mesh for `mesh status`.
// Its JSON is the control API's GET /v1/status (see SchemaVersion).
type Status struct {
	SchemaVersion int                     `json:"schema_version"`
	Started       time.Time               `json:"started"`
	Nodes         []string                `json:"nodes"`
	Apps          []AppStatus             `json:"apps"`
	Instances     []InstanceStatus        `json:"instances"`
	Edge          map[string]EdgeCounters `json:"edge"`
	Plugins       []pluginhost.Status     `json:"plugins"`
}

// AppStatus is desired versus running state of one app.
type AppStatus struct {
	Name      string     `json:"name"`
	Site      string     `json:"site,omitempty"` // the site that owns the app, when the mesh created it for one
	Digest    string     `json:"digest"`
	Min       int        `json:"min"`
	Max       int        `json:"max"`
	Restart   string     `json:"restart"`
	Desired   int        `json:"desired"`
	Ready     int        `json:"ready"`
	Degraded  bool       `json:"degraded"` // fewer endpoints than Min
	Endpoints []Endpoint `json:"endpoints"`
	// Rollout is the app's rollout in progress, if any.
	Rollout *rollout.Rollout `json:"rollout,omitempty"`
}

// Status returns the current state.
func (m *Mesh) Status() Status {
	st := Status{SchemaVersion: SchemaVersion, Started: m.started}
	st.Nodes = append(st.Nodes, m.nodes...)
	for _, a := range m.agents {
		st.Instances = append(st.Instances, instanceViews(a.Instances())...)
	}
	if m.plug != nil {
		st.Plugins = m.plug.statuses()
	}
	sort.SliceStable(st.Instances, func(i, j int) bool {
		a, b := st.Instances[i], st.Instances[j]
		if a.App != b.App {
			return a.App < b.App
		}
		return a.NodeID < b.NodeID
	})
	owners, err := m.siteOwners()
	if err != nil {
		m.log.Warn("status: site apps unknown", "error", err)
	}
	for _, p := range m.fabric.Plans() {
		as := AppStatus{Name: p.AppName, Site: owners[p.AppName], Digest: p.Digest, Min: p.Min, Max: p.Max, Restart: p.Restart,
			Desired: m.desired(p), Degraded: m.fabric.Degraded(p.AppName), Endpoints: endpointViews(m.fabric.Endpoints(p.AppName))}
		as.Rollout = m.activeRollout(p.AppName)
		if m.clustered { // instances on other hosts show as endpoints
			as.Ready = clusterReady(m.fabric.Endpoints(p.AppName), p.Digest)
			st.Apps = append(st.Apps, as)
			continue
		}
		for _, in := range st.Instances {
			if in.App == p.AppName && in.Digest == p.Digest && in.State == "ready" {
				as.Ready++
			}
		}
		st.Apps = append(st.Apps, as)
	}
	sort.Slice(st.Apps, func(i, j int) bool { return st.Apps[i].Name < st.Apps[j].Name })
	m.mu.Lock()
	e := m.edge
	m.mu.Unlock()
	if e != nil {
		st.Edge = edgeViews(e.Counters())
	}
	return st
}

// desired is how many ready instances of plan p the mesh aims for: one per
// node, capped by the plan's Max and the budget's MaxInstances.
func (m *Mesh) desired(p fabric.Plan) int {
	if m.clustered {
		return m.clusterDesired(p) // agents on other hosts are not counted here
	}
	n := len(m.agents)
	if p.Max > 0 && p.Max < n {
		n = p.Max
	}
	if b, ok := m.fabric.GetBudget(p.AppName); ok && b.MaxInstances > 0 && b.MaxInstances < n {
		n = b.MaxInstances
	}
	return n
}

// RolloutState says where the rollout of digest for app stands.
type RolloutState struct {
	App     string `json:"app"`
	Digest  string `json:"digest"`
	State   string `json:"state"` // progressing | ready | failed | superseded
	Ready   int    `json:"ready"`
	Desired int    `json:"desired"`
	Detail  string `json:"detail,omitempty"`
}

// Rollout reports the progress of digest for app, judged from the agents
// as they are now (the rollout objects of the watcher carry the history,
// the deadline and the revert; see Mesh.RolloutByID).
func (m *Mesh) Rollout(app, digest string) (RolloutState, error) {
	p, ok := m.fabric.Plan(app)
	if !ok {
		return RolloutState{}, fmt.Errorf("%w: %q", ErrUnknownApp, app)
	}
	o := m.observe(app, digest, m.publishedAt(app))
	rs := RolloutState{App: app, Digest: digest, State: "progressing", Desired: o.Progress.Desired, Ready: o.Progress.Ready}
	if p.Digest != digest {
		rs.State, rs.Detail = "superseded", "the plan now names "+p.Digest
		return rs, nil
	}
	switch v, why := rollout.Judge(o); v {
	case rollout.Done:
		rs.State = "ready"
	case rollout.Broken:
		rs.State = "failed"
		rs.Detail = why + " (the previous version keeps serving there)"
	}
	return rs, nil
}
