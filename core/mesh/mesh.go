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
	"path/filepath"
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
	"github.com/mycelium-mesh/mesh/core/edge"
	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/pluginhost"
	"github.com/mycelium-mesh/mesh/core/repo"
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
	fabric *fabric.Fabric
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
	sites       siteHolder // static sites served by Host (sites.go)
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
	log := opts.Logger
	if log == nil {
		log = hclog.New(&hclog.LoggerOptions{
			Name:   "mesh",
			Level:  hclog.LevelFromString(cfg.LogLevel),
			Output: os.Stderr,
		})
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
	ok := false
	defer func() {
		if !ok {
			m.closeAll()
		}
	}()

	// The fabric first: its store is locked by one mesh at a time, so a
	// second mesh on the same data_dir stops here, before any plugin starts.
	m.fabric, err = fabric.New(fabric.Options{DataDir: cfg.DataDir, Logger: log.Named("fabric")})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("data_dir %s is in use by another running mesh (its fabric store is locked); stop it or use another data_dir", cfg.DataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("open fabric: %w", err)
	}
	m.plug, err = startPlugins(ctx, cfg, opts.SelfExe, log.Named("plugins"))
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
// workload (SIGTERM, grace, SIGKILL) and every plugin.
func (m *Mesh) Run(ctx context.Context) error {
	defer m.closeAll()
	m.started = time.Now()
	cfg := m.Config()

	m.applyMu.Lock()
	err := m.applyApps(ctx, cfg)
	m.applyMu.Unlock()
	if err != nil {
		return err
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	var wg sync.WaitGroup
	errs := make(chan error, len(cfg.Agents.NodeIDs)+2)
	for _, node := range cfg.Agents.NodeIDs {
		a, err := agent.New(agent.Options{
			NodeID:        node,
			Fabric:        m.fabric,
			Repo:          m.repo,
			TrustedFunc:   m.trustedKeys,
			RunDir:        cfg.RunDir,
			Health:        m.plug.check,
			HealthPath:    cfg.Health.Path,
			HealthTimeout: cfg.Agents.HealthTimeout,
			Warmup:        cfg.Warmup,
			Grace:         cfg.Grace,
			Logger:        m.log.Named("agent").With("node", node),
		})
		if err != nil {
			return fmt.Errorf("agent %s: %w", node, err)
		}
		m.agents = append(m.agents, a)
		m.nodes = append(m.nodes, node)
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

	e, err := edge.New(m.edgeOptions(cfg))
	if err != nil {
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
	if err := m.applySites(); err != nil { // static sites, see sites.go
		m.log.Error("static sites not served", "error", err)
	}

	cs, err := startControl(m, cfg.Control)
	if err != nil {
		cancel()
		_ = e.Shutdown(context.Background())
		wg.Wait()
		return err
	}
	m.control = cs
	m.log.Info("mesh running", "nodes", len(m.agents), "apps", len(cfg.Apps), "control", cs.describe())

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
		m.log.Error("component failed, stopping the mesh", "error", runErr)
	}

	m.log.Info("stopping mesh")
	m.control.close()
	sctx, scancel := context.WithTimeout(context.Background(), cfg.Grace+5*time.Second)
	if err := e.Shutdown(sctx); err != nil {
		m.log.Warn("edge shutdown", "error", err)
	}
	scancel()
	cancel()
	wg.Wait()
	m.log.Info("mesh stopped")
	return runErr
}

func (m *Mesh) closeAll() {
	if m.plug != nil {
		m.plug.close()
	}
	if m.fabric != nil {
		_ = m.fabric.Close()
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

// appliedFile records, per app, the hash of the mesh.hcl block last applied,
// so a restart re-applies only blocks that changed and keeps digests deployed
// since through `mesh deploy`.
func (m *Mesh) appliedPath(cfg *config.Config) string {
	return filepath.Join(cfg.DataDir, "applied.json")
}

// applyApps turns the app blocks of cfg into plans and budgets. A block whose
// hash matches the one last applied is left alone (the fabric's persisted plan,
// possibly deployed since, stands); a changed or new block is published; apps
// no longer configured are removed.
func (m *Mesh) applyApps(ctx context.Context, cfg *config.Config) error {
	applied, err := readApplied(m.appliedPath(cfg))
	if err != nil {
		return err
	}
	next := map[string]string{}
	for _, a := range cfg.Apps {
		digest := a.Digest
		if a.Spore != "" {
			d, err := m.repo.Put(a.Spore)
			if err != nil {
				return fmt.Errorf("app %q: publish %s: %w", a.Name, a.Spore, err)
			}
			digest = d
		} else if _, err := m.repo.Path(digest); err != nil {
			return fmt.Errorf("app %q: %w", a.Name, err)
		}
		hash := a.Hash + "|" + digest
		next[a.Name] = hash
		_, havePlan := m.fabric.Plan(a.Name)
		if havePlan && applied[a.Name] == hash {
			m.log.Debug("app unchanged since last applied", "app", a.Name)
			continue
		}
		if a.Budget != nil {
			b := fabric.Budget{AppName: a.Name, MaxInstances: a.Budget.MaxInstances, CPUmilli: a.Budget.CPUMilli, MemoryMB: a.Budget.MemoryMB}
			if err := m.fabric.SetBudget(b); err != nil {
				return fmt.Errorf("app %q: set budget: %w", a.Name, err)
			}
		}
		p := fabric.Plan{AppName: a.Name, Digest: digest, Min: a.Min, Max: a.Max, Port: a.Port, Restart: a.Restart, HealthPath: a.HealthPath}
		m.markPublished(a.Name)
		if err := m.fabric.PublishPlan(p); err != nil {
			return fmt.Errorf("app %q: publish plan: %w", a.Name, err)
		}
		m.log.Info("app applied", "app", a.Name, "digest", digest)
	}
	for name := range applied {
		if _, still := next[name]; !still {
			if err := m.fabric.DeletePlan(name); err != nil {
				return fmt.Errorf("app %q: remove plan: %w", name, err)
			}
			m.log.Info("app removed", "app", name)
		}
	}
	return writeApplied(m.appliedPath(cfg), next)
}

// DeployResult is what a deploy changed.
type DeployResult struct {
	Plan     fabric.Plan `json:"plan"`
	Previous string      `json:"previous"` // the digest the plan named before
}

// Deploy publishes a new digest for app, keeping the rest of its plan. The
// spore must be in the repo and verify against the trusted keys: a plan never
// names a spore no agent would run.
func (m *Mesh) Deploy(ctx context.Context, app, digest string) (DeployResult, error) {
	digest, err := repo.NormalizeDigest(digest)
	if err != nil {
		return DeployResult{}, err
	}
	p, ok := m.fabric.Plan(app)
	if !ok {
		return DeployResult{}, fmt.Errorf("%w: %q", ErrUnknownApp, app)
	}
	path, err := m.repo.PathContext(ctx, digest)
	if err != nil {
		return DeployResult{}, err
	}
	if _, err := spore.Verify(path, m.trustedKeys()); err != nil {
		return DeployResult{}, fmt.Errorf("%w: %s: %s", ErrRefused, digest, verifyCause(err, path))
	}
	prev := p.Digest
	p.Digest = digest
	m.markPublished(app)
	if err := m.fabric.PublishPlan(p); err != nil {
		return DeployResult{}, fmt.Errorf("publish plan for %q: %w", app, err)
	}
	m.log.Info("deploy", "app", app, "digest", digest, "previous", prev)
	return DeployResult{Plan: p, Previous: prev}, nil
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

// Reload re-reads mesh.hcl and applies what changed: app blocks (plans and
// budgets) and trusted keys for later verifications. Changes to listeners,
// node counts or plugins need a restart and are reported as such.
func (m *Mesh) Reload(ctx context.Context) ([]string, error) {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	cfg, err := loadConfig(m.opts.ConfigPath)
	if err != nil {
		return nil, err
	}
	if m.opts.Warmup > 0 {
		cfg.Warmup = m.opts.Warmup
	}
	trust, err := spore.LoadTrustedKeys(cfg.TrustedKeys)
	if err != nil {
		return nil, fmt.Errorf("load trusted keys: %w", err)
	}
	fp := pluginsFingerprint(cfg)
	m.mu.Lock()
	old, oldFP := m.cfg, m.pluginsFP
	m.mu.Unlock()
	notes := restartNotes(old, cfg, oldFP, fp)
	if err := m.applyApps(ctx, cfg); err != nil {
		return notes, err
	}
	m.mu.Lock()
	m.cfg = cfg
	m.pluginsFP = fp
	m.trust = trust
	e := m.edge
	m.mu.Unlock()
	if e != nil {
		e.SetApps(edgeApps(cfg))
	}
	m.log.Info("configuration reloaded", "apps", len(cfg.Apps), "notes", len(notes))
	return notes, nil
}

// Status is a snapshot of the mesh for `mesh status`.
type Status struct {
	Started   time.Time                   `json:"started"`
	Nodes     []string                    `json:"nodes"`
	Apps      []AppStatus                 `json:"apps"`
	Instances []agent.InstanceStatus      `json:"instances"`
	Edge      map[string]edge.AppCounters `json:"edge"`
	Plugins   []pluginhost.Status         `json:"plugins"`
}

// AppStatus is desired versus running state of one app.
type AppStatus struct {
	Name      string            `json:"name"`
	Digest    string            `json:"digest"`
	Min       int               `json:"min"`
	Max       int               `json:"max"`
	Restart   string            `json:"restart"`
	Desired   int               `json:"desired"`
	Ready     int               `json:"ready"`
	Degraded  bool              `json:"degraded"` // fewer endpoints than Min
	Endpoints []fabric.Endpoint `json:"endpoints"`
}

// Status returns the current state.
func (m *Mesh) Status() Status {
	st := Status{Started: m.started}
	st.Nodes = append(st.Nodes, m.nodes...)
	for _, a := range m.agents {
		st.Instances = append(st.Instances, a.Instances()...)
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
	for _, p := range m.fabric.Plans() {
		as := AppStatus{Name: p.AppName, Digest: p.Digest, Min: p.Min, Max: p.Max, Restart: p.Restart,
			Desired: m.desired(p), Degraded: m.fabric.Degraded(p.AppName), Endpoints: m.fabric.Endpoints(p.AppName)}
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
		st.Edge = e.Counters()
	}
	return st
}

// desired is how many ready instances of plan p the mesh aims for: one per
// node, capped by the plan's Max and the budget's MaxInstances.
func (m *Mesh) desired(p fabric.Plan) int {
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

// Rollout reports the progress of digest for app.
func (m *Mesh) Rollout(app, digest string) (RolloutState, error) {
	p, ok := m.fabric.Plan(app)
	if !ok {
		return RolloutState{}, fmt.Errorf("%w: %q", ErrUnknownApp, app)
	}
	rs := RolloutState{App: app, Digest: digest, State: "progressing", Desired: m.desired(p)}
	if p.Digest != digest {
		rs.State, rs.Detail = "superseded", "the plan now names "+p.Digest
		return rs, nil
	}
	since := m.publishedAt(app)
	var failed []string
	var starting, readyOther int
	for _, a := range m.agents {
		for _, in := range a.Instances() {
			if in.App != app {
				continue
			}
			if in.Digest != digest {
				if in.State == "ready" {
					readyOther++
				}
				continue
			}
			switch in.State {
			case "ready":
				rs.Ready++
			case "starting":
				starting++
			case "failed":
				// Only failures of this rollout: an instance of the same
				// digest may have failed in an earlier one.
				if !in.Since.Before(since) {
					failed = append(failed, fmt.Sprintf("%s: %s", in.NodeID, in.LastError))
				}
			}
		}
	}
	// Converged: nothing of this digest is still starting, no node serves
	// another version, and every claimed slot is a ready instance. This is
	// how a rollout capped below one instance per node (by a CPU or memory
	// budget) completes.
	converged := starting == 0 && readyOther == 0 && rs.Ready > 0 && rs.Ready >= m.fabric.Usage(app).Instances
	switch {
	case rs.Desired > 0 && rs.Ready >= rs.Desired, converged:
		rs.State = "ready"
	case starting == 0 && len(failed) > 0:
		rs.State = "failed"
		rs.Detail = fmt.Sprintf("%d node(s) failed, the previous version keeps serving there: %s", len(failed), strings.Join(failed, "; "))
	}
	return rs, nil
}
