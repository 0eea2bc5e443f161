// Package pluginhost launches, configures and supervises Mycelium Mesh
// plugins through hashicorp/go-plugin over gRPC.
//
// Bundled plugins run out of process too: the host re-executes its own
// binary as `<self> plugin-serve KIND NAME`. External plugins are
// executables named in mesh.hcl; their existence, executable bit and
// (when given) sha256 are checked before every exec. The config block of
// a plugin is decoded against the schema it declares, with mesh.hcl
// diagnostics.
//
// The clients the host returns survive plugin restarts: a plugin process
// that exits is noticed within milliseconds and restarted with backoff,
// then re-configured; meanwhile every call fails fast with
// ErrPluginUnavailable, and every unary call carries a deadline, so no
// caller hangs on a plugin.
package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/mycelium-mesh/mesh/core/events"
	"github.com/mycelium-mesh/mesh/sdk"
	"github.com/mycelium-mesh/mesh/sdk/pluginclient"
)

// Errors callers can tell apart with errors.Is.
var (
	// ErrPluginUnavailable: the plugin process is down or restarting.
	ErrPluginUnavailable = errors.New("plugin unavailable")
	// ErrNotFound: the plugin command does not exist.
	ErrNotFound = errors.New("plugin executable not found")
	// ErrNotExecutable: the plugin command is not an executable file.
	ErrNotExecutable = errors.New("plugin file is not executable")
	// ErrChecksumMismatch: the command's sha256 differs from the one configured.
	ErrChecksumMismatch = errors.New("plugin sha256 mismatch")
	// ErrNotPlugin: the command ran but did not complete the plugin
	// handshake: not a plugin at all, or a plugin that refused to start
	// (its stderr, quoted in the error, says why).
	ErrNotPlugin = errors.New("no plugin handshake")
	// ErrWrongKind: the plugin serves another kind than configured.
	ErrWrongKind = errors.New("plugin kind mismatch")
	// ErrAPIVersion: host and plugin share no plugin API version.
	ErrAPIVersion = errors.New("no shared plugin API version")
	// ErrUnknownBundled: no bundled plugin has this kind and name.
	ErrUnknownBundled = errors.New("unknown bundled plugin")
	// ErrConfig: the plugin's config block is invalid; the error also
	// carries the hcl.Diagnostics (errors.As).
	ErrConfig = errors.New("invalid plugin config")
	// ErrAlreadyLoaded: a plugin of this kind and name is already loaded.
	ErrAlreadyLoaded = errors.New("plugin already loaded")
	// ErrClosed: the host or the plugin was closed.
	ErrClosed = errors.New("plugin host closed")
)

// Options configure a Host. Zero values take the documented defaults.
type Options struct {
	// Logger receives the host's logs and, under each plugin's kind and
	// name, the plugin's own log lines. Default: no logging.
	Logger hclog.Logger
	// SelfExe is the mesh binary re-executed for bundled plugins.
	// Default: the running binary. On Linux the binary is pinned when the
	// host is created (the running one through /proc/self/exe, another
	// file through a descriptor held open), so a file replaced on disk
	// never swaps the code of a restarted plugin.
	SelfExe string
	// Secrets are values no plugin may see in its environment (the
	// control token); variables holding them, and MESH_TOKEN, are dropped.
	Secrets []string
	// CallTimeout bounds every unary call and every balancer round trip
	// whose context has no earlier deadline. Default 5s.
	CallTimeout time.Duration
	// StartTimeout bounds launching a plugin up to its handshake. Default 10s.
	StartTimeout time.Duration
	// MinBackoff and MaxBackoff bound the delay before a restart; it
	// doubles after each failed start. Defaults 50ms and 5s.
	MinBackoff, MaxBackoff time.Duration
	// APIVersions the host speaks. Default pluginclient.APIVersions.
	APIVersions []uint32
	// EvalContext evaluates expressions in config blocks. Default nil
	// (constants only).
	EvalContext *hcl.EvalContext
	// Events, when set, receives a plugin.restarted event each time a
	// plugin process was restarted. It must not block.
	Events events.Sink
}

// Spec names one plugin to load, as written in mesh.hcl:
//
//	plugin "balancer" "my-lb" {
//	  command = "./bin/my-lb"
//	  sha256  = "..."
//	  config { ... }
//	}
type Spec struct {
	Kind string // sdk.KindRepo, sdk.KindBalancer or sdk.KindHealth
	Name string
	// Command is the external plugin's executable; "" selects the bundled
	// plugin Kind/Name. A relative path is resolved against the directory
	// of DeclRange.Filename, or the working directory when that is empty.
	Command string
	// SHA256 is the expected digest of Command, 64 hex digits, optionally
	// prefixed "sha256:"; "" skips the check.
	SHA256 string
	// Config is the nested config block; nil is an empty one.
	Config hcl.Body
	// DeclRange is where the plugin block is, for diagnostics.
	DeclRange hcl.Range
}

// Host owns every plugin process it launches.
type Host struct {
	opts   Options
	logger hclog.Logger

	selfPath string   // where bundled plugins are executed from
	selfFile *os.File // keeps a pinned SelfExe open; nil otherwise
	argv0    string   // argv[0] of bundled plugin processes

	mu      sync.Mutex
	plugins map[string]*Plugin // by kind/name
	closed  bool
}

// New returns a Host. It launches nothing until Load.
func New(opts Options) (*Host, error) {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = 5 * time.Second
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 10 * time.Second
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 50 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Second
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = opts.MinBackoff
	}
	if len(opts.APIVersions) == 0 {
		opts.APIVersions = append([]uint32(nil), pluginclient.APIVersions...)
	}
	h := &Host{opts: opts, logger: opts.Logger, plugins: map[string]*Plugin{}}
	path, f, err := pinSelfExe(opts.SelfExe)
	if err != nil {
		// Bundled plugins will fail to start, with this reason in the log.
		opts.Logger.Warn("bundled plugins: cannot pin the mesh binary", "error", err)
		path = opts.SelfExe
	}
	h.selfPath, h.selfFile, h.argv0 = path, f, opts.SelfExe
	if h.argv0 == "" && len(os.Args) > 0 {
		h.argv0 = os.Args[0]
	}
	return h, nil
}

func key(kind, name string) string { return kind + "/" + name }

// Load launches the plugin spec names, checks what it is, decodes its
// config block against its schema, configures it and starts supervising
// it. Errors wrap the sentinel errors of this package; a config error also
// carries hcl.Diagnostics with mesh.hcl file and line.
func (h *Host) Load(ctx context.Context, spec Spec) (*Plugin, error) {
	p, err := h.prepare(spec)
	if err != nil {
		return nil, err
	}
	if p.bundled {
		// Bundled schemas are known without launching: report config
		// mistakes before anything runs.
		if p.cfg, err = p.decode(p.schema); err != nil {
			return nil, err
		}
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	if _, dup := h.plugins[key(spec.Kind, spec.Name)]; dup {
		h.mu.Unlock()
		return nil, fmt.Errorf("%s plugin %q: %w", spec.Kind, spec.Name, ErrAlreadyLoaded)
	}
	h.plugins[key(spec.Kind, spec.Name)] = p // reserve the name
	h.mu.Unlock()

	inst, err := p.startConfigured(ctx, true)
	if err != nil {
		h.forget(p)
		return nil, err
	}
	p.mu.Lock()
	p.cur = inst
	p.state = StateRunning
	p.since = time.Now()
	p.mu.Unlock()
	p.logger.Info("plugin started", "version", inst.info.Version, "pid", inst.pid, "source", p.source())
	go p.supervise()
	return p, nil
}

// Probe is Check for callers that want one error: it returns Check's
// start error, or a *ConfigError holding the error diagnostics.
func (h *Host) Probe(ctx context.Context, spec Spec) (sdk.Info, error) {
	info, diags, err := h.Check(ctx, spec)
	if err != nil {
		return info, err
	}
	if diags.HasErrors() {
		return info, &ConfigError{Kind: spec.Kind, Name: spec.Name, Diags: diags}
	}
	return info, nil
}

// Balancer loads a balancer plugin and returns its restart-proof client.
func (h *Host) Balancer(ctx context.Context, spec Spec) (sdk.Balancer, error) {
	if err := wantKind(&spec, sdk.KindBalancer); err != nil {
		return nil, err
	}
	p, err := h.Load(ctx, spec)
	if err != nil {
		return nil, err
	}
	return p.Balancer()
}

// Health loads a health checker plugin and returns its restart-proof client.
func (h *Host) Health(ctx context.Context, spec Spec) (sdk.HealthChecker, error) {
	if err := wantKind(&spec, sdk.KindHealth); err != nil {
		return nil, err
	}
	p, err := h.Load(ctx, spec)
	if err != nil {
		return nil, err
	}
	return p.Health()
}

// Repo loads a repo backend plugin and returns its restart-proof client.
func (h *Host) Repo(ctx context.Context, spec Spec) (sdk.RepoBackend, error) {
	if err := wantKind(&spec, sdk.KindRepo); err != nil {
		return nil, err
	}
	p, err := h.Load(ctx, spec)
	if err != nil {
		return nil, err
	}
	return p.Repo()
}

// Hosting loads a hosting plugin and returns its restart-proof client.
func (h *Host) Hosting(ctx context.Context, spec Spec) (sdk.HostingService, error) {
	if err := wantKind(&spec, sdk.KindHosting); err != nil {
		return nil, err
	}
	p, err := h.Load(ctx, spec)
	if err != nil {
		return nil, err
	}
	return p.Hosting()
}

func wantKind(spec *Spec, kind string) error {
	if spec.Kind == "" {
		spec.Kind = kind
	}
	if spec.Kind != kind {
		return fmt.Errorf("%s plugin %q requested as a %s: %w", spec.Kind, spec.Name, kind, ErrWrongKind)
	}
	return nil
}

// Plugin returns the loaded plugin kind/name.
func (h *Host) Plugin(kind, name string) (*Plugin, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.plugins[key(kind, name)]
	return p, ok
}

// Statuses reports every loaded plugin, sorted by kind then name.
func (h *Host) Statuses() []Status {
	h.mu.Lock()
	ps := make([]*Plugin, 0, len(h.plugins))
	for _, p := range h.plugins {
		ps = append(ps, p)
	}
	h.mu.Unlock()
	out := make([]Status, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Status())
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Close stops every plugin and waits for their processes to exit. The host
// cannot be used afterwards.
func (h *Host) Close() error {
	h.mu.Lock()
	h.closed = true
	ps := make([]*Plugin, 0, len(h.plugins))
	for _, p := range h.plugins {
		ps = append(ps, p)
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = p.Close()
		}()
	}
	wg.Wait()
	if h.selfFile != nil {
		_ = h.selfFile.Close()
	}
	return nil
}

func (h *Host) forget(p *Plugin) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.plugins[key(p.kind, p.name)] == p {
		delete(h.plugins, key(p.kind, p.name))
	}
}
