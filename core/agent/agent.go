// Package agent is a mesh node: it follows the plans of the control fabric
// and runs each planned spore as a plain process on this machine.
//
// For every plan it receives, an agent that does not already run the plan's
// digest fetches the spore from the repo, verifies it against the trusted
// keys and extracts it (once per digest per run directory, under
// <RunDir>/.spores/<hex>/, one read-only copy shared by every agent there:
// see shared.go), claims an instance slot from the fabric
// (sized by the manifest's nutrients), and launches the binary in a fresh
// instance directory <RunDir>/<node>/<app>-<rand>/. The workload's stdout
// and stderr are pipes the agent copies into stdout.log and stderr.log
// there, rotated at a size cap with a retention count per app
// (Options.Logs), and the last lines of stderr are kept in memory for
// status and for the message of a failed start. The directories of the
// last few finished instances of an app are kept, older ones removed, and
// all of them once the app is withdrawn. The workload runs in its own
// process group on a port given in PORT of the address given in HOST
// (Options.Host, loopback by default), next to the manifest's
// env and MESH_APP, MESH_NODE and MESH_INSTANCE; it inherits only PATH (and
// LANG, TZ, TMPDIR when set) from the mesh, and never MESH_TOKEN or a
// variable carrying the control token. It is gated on health (polled every
// few milliseconds at first, backing off to 100ms, up to HealthTimeout) and
// only then registered as the node's endpoint of the app.
//
// Where the kernel allows (see package cgroup: a writable cgroup2
// hierarchy, or the v1 freezer hierarchy with Options.ShimCommand), each
// instance is also started inside a cgroup of its own, so that
// every process it starts, setsid and double fork included, is killed with
// it; with EnforceNutrients the manifest's memory and CPU and a pids limit
// are written into that cgroup. Elsewhere the agent logs a warning and
// contains by process group only.
//
// A new digest for an app already running here is rolled out blue/green: the
// old instance serves until the new one is healthy, the new endpoint then
// replaces the old one, and the old instance drains for Warmup before it is
// stopped. A new version that never becomes healthy leaves the old one
// serving. When plans change faster than rollouts finish, the superseded
// starting instance is killed and the agent converges on the newest digest.
//
// When a workload exits its endpoint is withdrawn at once and the plan's
// restart policy applies (backoff from 100ms doubling to 10s). An app that
// stays down by its policy (or whose start failed) is tried again when a plan
// for it is published again. A claim refused by the fabric is retried every
// second, so a node takes over a slot another node gave up. When a plan or
// budget lowers the app's limits below the running instances, the fabric
// revokes the claims of the nodes in excess (the highest node IDs); such a
// node withdraws its endpoint, lets the instance drain for Warmup, stops it,
// and then goes idle, claiming again every second, so raising the limit
// brings it back. A plan that changes only the limits never restarts the
// instances that stay. Stopping an
// instance sends SIGTERM to its group and, after Grace, SIGKILL to its
// cgroup (or group); once the workload's main process has exited, whatever
// else still runs in its cgroup (or group, on Linux) is killed, so
// processes a workload forks never outlive it. With
// TrustedFunc the trusted keys can change while the agent runs: a spore
// already extracted is verified again against a changed key set before its
// next launch. Each running workload is recorded under
// <RunDir>/<node>/instances/; a later Start stops what a crashed run left
// behind, checking the recorded process start time so that a reused pid is
// never signalled, and killing what the workload forked even when its main
// process is gone: its whole recorded cgroup, and by group and start time.
// Cgroups of the node's scope that no record names (a crash between
// creating one and writing the record) are killed too. On Linux workloads also get
// SIGKILL when the mesh process dies. The package runs on Unix systems;
// identifying leftovers by process start time needs Linux /proc.
//
// With Options.Adopt the opposite holds on purpose: workloads outlive the
// agent (no death signal; their logs go through a small relay process of
// their own, see logrelay.go), a stopping agent leaves its ready instances
// serving with their endpoints registered, and the next Start adopts each
// recorded workload that is still the same process (pidfd and start time),
// still in its cgroup, and still what the plan wants, instead of stopping
// it: an agent restart or upgrade then costs no request (see adopt.go).
package agent

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mycelium-mesh/mesh/core/cgroup"
	"github.com/mycelium-mesh/mesh/core/config/defaults"
	"github.com/mycelium-mesh/mesh/core/events"
	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/spore"
	"github.com/mycelium-mesh/mesh/sdk"
)

// Defaults for zero Options fields, from the mesh's one table of defaults.
const (
	DefaultHealthPath    = defaults.HealthPath
	DefaultHealthTimeout = defaults.HealthTimeout
	DefaultWarmup        = defaults.Warmup
	DefaultGrace         = defaults.Grace
	DefaultHost          = "127.0.0.1"
)

// Instance states reported by Instances.
const (
	StateStarting = "starting"
	StateReady    = "ready"
	StateDraining = "draining"
	StateStopped  = "stopped"
	StateFailed   = "failed"
)

// Repo is where the agent gets spores from; *repo.Repo satisfies it.
type Repo interface {
	Path(digest string) (string, error)
}

// HealthChecker checks one workload; sdk.HealthChecker satisfies it.
type HealthChecker interface {
	Check(ctx context.Context, c sdk.HealthCheck) (sdk.HealthResult, error)
}

// Options configure an Agent. NodeID, Fabric, Repo, Trusted or TrustedFunc,
// RunDir and Health are required.
type Options struct {
	NodeID  string
	Fabric  fabric.Store
	Repo    Repo
	Trusted []ed25519.PublicKey
	// TrustedFunc, when set, is called at every verification and takes
	// precedence over Trusted, so that a reloaded key set applies to the next
	// launch. It must be safe for concurrent use.
	TrustedFunc   func() []ed25519.PublicKey
	RunDir        string
	Health        HealthChecker
	HealthPath    string        // default /health
	HealthTimeout time.Duration // default 6s: how long a new instance may take to become healthy
	CheckTimeout  time.Duration // default 1s: how long one health check may take (health.timeout)
	Warmup        time.Duration // default 2s: how long a replaced instance drains before it is stopped
	Grace         time.Duration // default 5s: SIGTERM to SIGKILL
	Logger        hclog.Logger

	// NoCgroups contains workloads by process group only, even where the
	// kernel offers cgroups (a workload that calls setsid then escapes).
	NoCgroups bool
	// EnforceNutrients writes each instance's nutrients (memory, CPU) and
	// a pids limit into its cgroup. Start fails when the machine cannot
	// enforce them.
	EnforceNutrients bool
	// MaxPids is the pids limit with EnforceNutrients; default
	// DefaultMaxPids.
	MaxPids int
	// Logs, when set, returns the log rotation policy of an app's
	// instances; zero fields take the defaults (10 MiB, 3 files).
	Logs func(app string) LogPolicy
	// Secrets are values no workload may see in its environment (the
	// control token); variables holding them are dropped.
	Secrets []string
	// ShimCommand is the command that runs RunShim, e.g. the mesh binary
	// and ShimArg. It is needed only where cgroups are v1 only: a workload
	// there joins its cgroups through the shim before it starts. Without
	// it such machines are contained by process group.
	ShimCommand []string
	// Adopt lets workloads outlive the agent: they get no death signal,
	// their logs go through a relay process (LogRelayCommand), a stopping
	// agent leaves its ready instances running, and the next Start adopts
	// those that still match their record and plan instead of stopping
	// them (adopt.go).
	Adopt bool
	// LogRelayCommand is the command that runs RunLogRelay, e.g. the mesh
	// binary and LogRelayArg; required with Adopt.
	LogRelayCommand []string
	// Events, when set, receives what happens to the instances and
	// endpoints of this node (launched, healthy, unhealthy, exited,
	// restarted; endpoint registered and removed). It must not block.
	Events events.Sink
	// Host is the IP address workloads listen on, given to them in HOST,
	// and that their endpoints carry; default 127.0.0.1. In a cluster it
	// is the host's advertise address, so edges on other hosts reach them.
	Host string

	forceV1 bool // tests: track on the v1 freezer even where cgroup2 works
}

// InstanceStatus describes one workload instance of this node.
type InstanceStatus struct {
	App       string
	NodeID    string
	Instance  string
	Digest    string
	State     string // starting, ready, draining, stopped or failed
	PID       int
	Port      int
	URL       string
	Restarts  int // restarts of the app on this node before this instance
	LastError string
	Since     time.Time // when State was entered
	// Containment is ContainCgroup or ContainProcessGroup.
	Containment string
	// Limits are the enforced nutrients, e.g. "mem=64MiB cpu=500m
	// pids=4096"; "" when none are.
	Limits string
	// StderrTail holds the last lines the workload wrote to stderr.
	StderrTail []string
	// Dir is the instance directory: stdout.log and stderr.log (and their
	// rotated predecessors .1, .2, …) are in it.
	Dir string
}

// ErrSubscriptionClosed is returned by Start when the fabric closes the plan
// subscription before the context ends.
var ErrSubscriptionClosed = errors.New("plan subscription closed")

// Agent runs the workloads of one node.
type Agent struct {
	opts    Options
	log     hclog.Logger
	nodeDir string

	mu      sync.Mutex
	started bool
	apps    map[string]*appCtl
	contain string          // ContainCgroup or ContainProcessGroup, set by Start
	cg      *cgroup.Manager // nil with process groups

	sporesMu sync.Mutex
	spores   map[string]*extracted
	// previous holds, per planned app, the digest its plan named before the
	// current one: its copy is kept, so rolling back (or flipping between
	// two versions) starts from an extracted spore. Guarded by sporesMu.
	previous map[string]recentDigests
	sporeGC  chan struct{} // kickSporeGC

	adopting sync.WaitGroup // adoptions not yet registered or given up
	adoptedC chan struct{}  // closed once every adoption settled (Adopted)
}

// extracted is a spore unpacked on this node; mu serialises its extraction.
type extracted struct {
	mu       sync.Mutex
	done     bool
	dir      string
	manifest spore.Manifest
	source   string // the verified spore file
	trustID  string // the trusted key set it was last verified against
}

// trusted returns the keys spores are verified against now.
func (a *Agent) trusted() []ed25519.PublicKey {
	if a.opts.TrustedFunc != nil {
		return a.opts.TrustedFunc()
	}
	return a.opts.Trusted
}

// trustID identifies a key set regardless of order.
func trustID(keys []ed25519.PublicKey) string {
	ids := make([]string, len(keys))
	for k, key := range keys {
		ids[k] = string(key)
	}
	sort.Strings(ids)
	return strings.Join(ids, "\x00")
}

// New checks opts and returns an agent; nothing runs before Start.
func New(opts Options) (*Agent, error) {
	switch {
	case opts.NodeID == "" || !fabric.ValidAppName(opts.NodeID):
		return nil, fmt.Errorf("agent: invalid node id %q", opts.NodeID)
	case opts.Fabric == nil:
		return nil, errors.New("agent: no fabric")
	case opts.Repo == nil:
		return nil, errors.New("agent: no repo")
	case len(opts.Trusted) == 0 && opts.TrustedFunc == nil:
		return nil, errors.New("agent: no trusted keys")
	case opts.RunDir == "":
		return nil, errors.New("agent: no run dir")
	case opts.Health == nil:
		return nil, errors.New("agent: no health checker")
	case opts.HealthTimeout < 0 || opts.CheckTimeout < 0 || opts.Warmup < 0 || opts.Grace < 0:
		return nil, errors.New("agent: negative duration")
	case opts.MaxPids < 0:
		return nil, errors.New("agent: negative pids limit")
	case opts.Adopt && len(opts.LogRelayCommand) == 0:
		return nil, errors.New("agent: adopting workloads needs a log relay command")
	}
	if opts.Host == "" {
		opts.Host = DefaultHost
	}
	if opts.HealthPath == "" {
		opts.HealthPath = DefaultHealthPath
	}
	if opts.HealthTimeout == 0 {
		opts.HealthTimeout = DefaultHealthTimeout
	}
	if opts.CheckTimeout == 0 {
		opts.CheckTimeout = defaults.CheckTimeout
	}
	if opts.Warmup == 0 {
		opts.Warmup = DefaultWarmup
	}
	if opts.Grace == 0 {
		opts.Grace = DefaultGrace
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	runDir, err := filepath.Abs(opts.RunDir)
	if err != nil {
		return nil, fmt.Errorf("agent: run dir: %w", err)
	}
	opts.RunDir = runDir
	return &Agent{
		opts:     opts,
		log:      opts.Logger.With("node", opts.NodeID),
		nodeDir:  filepath.Join(runDir, opts.NodeID),
		apps:     map[string]*appCtl{},
		spores:   map[string]*extracted{},
		previous: map[string]recentDigests{},
		sporeGC:  make(chan struct{}, 1),
		adoptedC: make(chan struct{}),
	}, nil
}

// Start runs the node until ctx ends, then stops every workload it started
// and returns. Leftovers of a previous run on the same RunDir and node are
// stopped first. Start may be called once.
func (a *Agent) Start(ctx context.Context) error {
	a.mu.Lock()
	if a.started {
		a.mu.Unlock()
		return errors.New("agent: already started")
	}
	a.started = true
	err := a.setupContainment()
	a.mu.Unlock()
	if err != nil {
		return fmt.Errorf("agent %s: %w", a.opts.NodeID, err)
	}

	for _, d := range []string{a.nodeDir, a.recordsDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("agent %s: %w", a.opts.NodeID, err)
		}
	}
	lock, err := lockNode(a.nodeDir)
	if err != nil {
		return fmt.Errorf("agent %s: %w", a.opts.NodeID, err)
	}
	defer lock.Close()
	adopted, err := a.clearLeftovers()
	if err != nil {
		return fmt.Errorf("agent %s: %w", a.opts.NodeID, err)
	}
	keepDirs := map[string]bool{}
	for _, ad := range adopted {
		keepDirs[ad.rec.Instance] = true
	}
	a.clearLeftoverGroups(keepDirs)
	// Per-node extractions of earlier versions are not used any more;
	// shared copies left by a previous run are extracted again when first
	// needed (shared.go).
	if err := os.RemoveAll(filepath.Join(a.nodeDir, "spores")); err != nil {
		return fmt.Errorf("agent %s: clear old spores: %w", a.opts.NodeID, err)
	}
	a.pruneOldInstanceDirs(a.plannedApps(), keepDirs)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	plans := a.opts.Fabric.Subscribe(runCtx)
	a.log.Info("agent started", "run_dir", a.nodeDir)

	var wg sync.WaitGroup
	var result error
	for _, ad := range adopted {
		a.startAdopted(runCtx, &wg, ad)
	}
	go func() {
		a.adopting.Wait()
		close(a.adoptedC)
	}()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case p, ok := <-plans:
			if !ok {
				if ctx.Err() == nil {
					result = fmt.Errorf("agent %s: %w", a.opts.NodeID, ErrSubscriptionClosed)
				}
				break loop
			}
			a.mu.Lock()
			c := a.apps[p.AppName]
			if c == nil {
				c = newAppCtl(a, p.AppName)
				a.apps[p.AppName] = c
				wg.Add(1)
				go func() {
					defer wg.Done()
					c.run(runCtx)
				}()
			}
			a.mu.Unlock()
			c.offer(p)
			a.dropUnusedSpores(false)
		case <-a.sporeGC:
			a.dropUnusedSpores(false)
		}
	}
	cancel()
	wg.Wait()
	// With Adopt, the copies that running workloads were started from stay
	// for them (and for the next run): only the unneeded ones go.
	a.dropUnusedSpores(!a.opts.Adopt)
	if a.cg != nil {
		a.cg.RemoveScope(a.cgroupScope())
	}
	a.log.Info("agent stopped")
	return result
}

// Instances returns the live instances of this node and the last few that
// stopped or failed, sorted by app and start.
func (a *Agent) Instances() []InstanceStatus {
	a.mu.Lock()
	ctls := make([]*appCtl, 0, len(a.apps))
	for _, c := range a.apps {
		ctls = append(ctls, c)
	}
	a.mu.Unlock()
	var out []InstanceStatus
	for _, c := range ctls {
		out = append(out, c.statuses()...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].App != out[j].App {
			return out[i].App < out[j].App
		}
		return out[i].Since.Before(out[j].Since)
	})
	return out
}

// contextRepo is a Repo whose fetches can be cancelled; *repo.Repo is one.
type contextRepo interface {
	PathContext(ctx context.Context, digest string) (string, error)
}

// prepare returns the extracted directory and manifest of digest, fetching,
// verifying and extracting the spore the first time it is needed.
func (a *Agent) prepare(ctx context.Context, digest string) (string, spore.Manifest, error) {
	a.sporesMu.Lock()
	e := a.spores[digest]
	if e == nil {
		e = &extracted{}
		a.spores[digest] = e
	}
	a.sporesMu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	keys := a.trusted()
	id := trustID(keys)
	if e.done {
		if e.trustID == id {
			return e.dir, e.manifest, nil
		}
		// The trusted keys changed since this spore was verified: check it
		// again, so that a key withdrawn on reload stops new launches of the
		// spores it signed.
		if _, err := verified.Verify(digest, e.source, keys); err != nil {
			return "", spore.Manifest{}, fmt.Errorf("verify spore %s against the current trusted keys: %w", digest, err)
		}
		e.trustID = id
		return e.dir, e.manifest, nil
	}
	if len(keys) == 0 {
		return "", spore.Manifest{}, fmt.Errorf("verify spore %s: no trusted keys", digest)
	}
	hex, err := digestHex(digest)
	if err != nil {
		return "", spore.Manifest{}, err
	}
	var path string
	if r, ok := a.opts.Repo.(contextRepo); ok {
		path, err = r.PathContext(ctx, digest)
	} else {
		path, err = a.opts.Repo.Path(digest)
	}
	if err != nil {
		return "", spore.Manifest{}, fmt.Errorf("fetch spore %s: %w", digest, err)
	}
	dir, m, err := acquireShared(a.opts.RunDir, hex, path, keys)
	if err != nil {
		return "", spore.Manifest{}, err
	}
	e.dir, e.manifest, e.source, e.trustID, e.done = dir, m, path, id, true
	a.sporesMu.Lock()
	if a.spores[digest] != e {
		// Dropped as unused while it was being prepared: it is in use now.
		a.spores[digest] = e
	}
	a.sporesMu.Unlock()
	a.log.Debug("spore ready", "digest", digest, "dir", dir)
	return dir, m, nil
}

// kickSporeGC asks the agent's loop to let go of the spores it no longer
// needs; it never blocks.
func (a *Agent) kickSporeGC() {
	select {
	case a.sporeGC <- struct{}{}:
	default:
	}
}

// recentDigests are the digest an app's plan names and the one it named
// before.
type recentDigests struct{ current, previous string }

// dropUnusedSpores lets go of this node's hold on every spore that no plan
// names, that is not the previous digest of a planned app, and that no
// instance of the node runs or starts; with all set, of every spore (the
// agent is stopping). The last hold removes the shared copy.
func (a *Agent) dropUnusedSpores(all bool) {
	needed := map[string]bool{}
	var plans []fabric.Plan
	if !all {
		plans = a.opts.Fabric.Plans()
		for _, s := range a.Instances() {
			switch s.State {
			case StateStarting, StateReady, StateDraining:
				needed[s.Digest] = true
			}
		}
	}
	a.sporesMu.Lock()
	planned := map[string]bool{}
	for _, p := range plans {
		if p.Deleted() {
			continue
		}
		needed[p.Digest] = true
		planned[p.AppName] = true
		r := a.previous[p.AppName]
		if r.current != p.Digest {
			r = recentDigests{current: p.Digest, previous: r.current}
			a.previous[p.AppName] = r
		}
		if r.previous != "" {
			needed[r.previous] = true
		}
	}
	for app := range a.previous {
		if !planned[app] {
			delete(a.previous, app) // withdrawn, or the agent stops: nothing to roll back to
		}
	}
	var drop []*extracted
	var digests []string
	for d, e := range a.spores {
		if !needed[d] {
			drop = append(drop, e)
			digests = append(digests, d)
			delete(a.spores, d)
		}
	}
	a.sporesMu.Unlock()
	for k, e := range drop {
		e.mu.Lock()
		if e.done {
			if hex, err := digestHex(digests[k]); err == nil {
				releaseShared(a.opts.RunDir, hex)
			}
			e.done = false
		}
		e.mu.Unlock()
	}
}

func digestHex(d string) (string, error) {
	const prefix = "sha256:"
	if len(d) != len(prefix)+64 || d[:len(prefix)] != prefix {
		return "", fmt.Errorf("malformed digest %q", d)
	}
	for _, c := range d[len(prefix):] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", fmt.Errorf("malformed digest %q", d)
		}
	}
	return d[len(prefix):], nil
}

// plannedApps is the set of apps the fabric has a live plan for.
func (a *Agent) plannedApps() map[string]bool {
	out := map[string]bool{}
	for _, p := range a.opts.Fabric.Plans() {
		if !p.Deleted() {
			out[p.AppName] = true
		}
	}
	return out
}

// logPolicy is the log rotation policy of app's instances.
func (a *Agent) logPolicy(app string) LogPolicy {
	if a.opts.Logs == nil {
		return LogPolicy{}.withDefaults()
	}
	return a.opts.Logs(app).withDefaults()
}

// instanceDirs lists the instance directories of earlier runs and of this
// one, by app, newest first. Instance directories are named
// <app>-<8 hex digits>.
func (a *Agent) instanceDirs() map[string][]string {
	entries, err := os.ReadDir(a.nodeDir)
	if err != nil {
		return nil
	}
	type dir struct {
		path string
		mod  time.Time
	}
	byApp := map[string][]dir{}
	for _, e := range entries {
		name := e.Name()
		i := strings.LastIndexByte(name, '-')
		if !e.IsDir() || i <= 0 || len(name)-i-1 != 8 {
			continue
		}
		if _, err := hex.DecodeString(name[i+1:]); err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		app := name[:i]
		byApp[app] = append(byApp[app], dir{filepath.Join(a.nodeDir, name), info.ModTime()})
	}
	out := map[string][]string{}
	for app, dirs := range byApp {
		sort.Slice(dirs, func(i, j int) bool { return dirs[i].mod.After(dirs[j].mod) })
		for _, d := range dirs {
			out[app] = append(out[app], d.path)
		}
	}
	return out
}

// pruneOldInstanceDirs keeps, per planned app, the keepFinished newest
// instance directories left by earlier runs (their logs are what a
// post-mortem reads) and removes the rest, and removes every directory of
// an app that is no longer planned, so restarts and removed apps do not
// grow the run directory forever.
func (a *Agent) pruneOldInstanceDirs(planned, running map[string]bool) {
	for app, all := range a.instanceDirs() {
		keep := keepFinished
		if !planned[app] {
			keep = 0
		}
		var dirs []string
		for _, d := range all {
			if !running[filepath.Base(d)] { // an adopted instance's own
				dirs = append(dirs, d)
			}
		}
		for _, d := range dirs[min(len(dirs), keep):] {
			if err := os.RemoveAll(d); err != nil {
				a.log.Warn("remove old instance directory", "app", app, "dir", d, "error", err)
			}
		}
	}
}
