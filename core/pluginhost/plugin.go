package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/hcl/v2"

	"github.com/mycelium-mesh/mesh/core/events"
	"github.com/mycelium-mesh/mesh/sdk"
	"github.com/mycelium-mesh/mesh/sdk/pluginclient"
)

// State is where a plugin is in its life.
type State string

// Plugin states.
const (
	StateRunning    State = "running"
	StateRestarting State = "restarting"
	StateClosed     State = "closed"
)

// Status describes a loaded plugin, for `mesh status`.
type Status struct {
	Kind      string    `json:"kind"`
	Name      string    `json:"name"`
	Version   string    `json:"version"`              // as the plugin reports it
	Source    string    `json:"source"`               // "bundled" or the executable's path
	State     State     `json:"state"`                // running, restarting or closed
	Restarts  int       `json:"restarts"`             // successful restarts since Load
	PID       int       `json:"pid"`                  // 0 while down
	Since     time.Time `json:"since"`                // when the current state began
	LastError string    `json:"last_error,omitempty"` // why the plugin last went down or failed to start
}

// Plugin is one loaded plugin under supervision. Its Balancer, Health or
// Repo client keeps working across restarts of the process.
type Plugin struct {
	h       *Host
	spec    Spec
	kind    string
	name    string
	bundled bool
	path    string
	args    []string
	logger  hclog.Logger

	wake chan struct{} // asks the supervisor to look now
	done chan struct{} // closed by Close

	mu       sync.Mutex
	cfg      sdk.Config
	cur      *instance // nil while down
	state    State
	since    time.Time
	restarts int
	lastErr  error
	info     sdk.Info
	schema   sdk.Schema
}

// instance is one running process of a plugin.
type instance struct {
	client *plugin.Client
	shim   sdk.Plugin // pluginclient.Balancer, pluginclient.Health or pluginclient.Repo
	info   sdk.Info
	schema sdk.Schema
	pid    int

	timeouts atomic.Int32 // calls in a row that hit the host's deadline
}

func (i *instance) kill() {
	if bc, ok := i.shim.(pluginclient.Balancer); ok {
		_ = bc.Close()
	}
	i.client.Kill()
	// Anything the plugin started itself goes too.
	killGroup(i.pid)
}

// prepare resolves and checks what spec names, before anything runs.
func (h *Host) prepare(spec Spec) (*Plugin, error) {
	switch spec.Kind {
	case sdk.KindRepo, sdk.KindBalancer, sdk.KindHealth, sdk.KindHosting:
	default:
		return nil, fmt.Errorf("plugin %q: unknown kind %q (want %s, %s, %s or %s)", spec.Name, spec.Kind, sdk.KindRepo, sdk.KindBalancer, sdk.KindHealth, sdk.KindHosting)
	}
	if spec.Name == "" {
		return nil, fmt.Errorf("%s plugin: empty name", spec.Kind)
	}
	p := &Plugin{
		h: h, spec: spec, kind: spec.Kind, name: spec.Name,
		logger: h.logger.Named(spec.Kind + "." + spec.Name),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	if spec.Command == "" {
		schema, ok := BundledSchema(spec.Kind, spec.Name)
		if !ok {
			return nil, fmt.Errorf("%s plugin %q has no command and is not bundled (bundled: %s): %w",
				spec.Kind, spec.Name, strings.Join(bundledNames(spec.Kind), ", "), ErrUnknownBundled)
		}
		p.bundled = true
		p.path = h.selfPath
		p.args = []string{ServeArg, spec.Kind, spec.Name}
		p.schema = schema
		return p, nil
	}
	path := spec.Command
	if !filepath.IsAbs(path) {
		base := "."
		if spec.DeclRange.Filename != "" {
			base = filepath.Dir(spec.DeclRange.Filename)
		}
		abs, err := filepath.Abs(filepath.Join(base, path))
		if err != nil {
			return nil, fmt.Errorf("%s plugin %q: resolve %s: %w", spec.Kind, spec.Name, path, err)
		}
		path = abs
	}
	p.path = path
	if err := p.checkExecutable(); err != nil {
		return nil, err
	}
	return p, nil
}

func bundledNames(kind string) []string {
	var out []string
	for _, i := range Bundled() {
		if i.Kind == kind {
			out = append(out, i.Name)
		}
	}
	return out
}

// source is "bundled" or the executable's path.
func (p *Plugin) source() string {
	if p.bundled {
		return "bundled"
	}
	return p.path
}

// where prefixes errors with the plugin and its mesh.hcl position.
func (p *Plugin) where() string { return specWhere(p.kind, p.name, p.spec.DeclRange) }

func specWhere(kind, name string, decl hcl.Range) string {
	s := fmt.Sprintf("%s plugin %q", kind, name)
	if decl.Filename != "" {
		s = fmt.Sprintf("%s:%d: %s", decl.Filename, decl.Start.Line, s)
	}
	return s
}

// checkExecutable verifies that an external command exists and is a regular
// executable file. It runs before every exec, restarts included; the sha256,
// when configured, is checked by verifiedCopy as the launch copies the file.
func (p *Plugin) checkExecutable() error {
	fi, err := os.Stat(p.path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: command %s: %w", p.where(), p.path, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("%s: command %s: %w", p.where(), p.path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: command %s is not a regular file: %w", p.where(), p.path, ErrNotExecutable)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s: command %s has mode %s, no execute bit: %w", p.where(), p.path, fi.Mode().Perm(), ErrNotExecutable)
	}
	return nil
}

// verifiedCopy copies the command into a private directory (0700) while
// hashing it and returns the copy's path when its sha256 is the configured
// one. The copy is what runs: replacing the file at the configured path after
// the check cannot swap the binary that is executed.
func (p *Plugin) verifiedCopy() (string, error) {
	want := strings.ToLower(strings.TrimPrefix(p.spec.SHA256, "sha256:"))
	src, err := os.Open(p.path)
	if err != nil {
		return "", fmt.Errorf("%s: hash %s: %w", p.where(), p.path, err)
	}
	defer src.Close()
	dir, err := os.MkdirTemp("", "mesh-plugin-")
	if err != nil {
		return "", fmt.Errorf("%s: private copy of %s: %w", p.where(), p.path, err)
	}
	dst := filepath.Join(dir, filepath.Base(p.path))
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o700)
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("%s: private copy of %s: %w", p.where(), p.path, err)
	}
	hs := sha256.New()
	_, err = io.Copy(io.MultiWriter(hs, out), src)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("%s: hash %s: %w", p.where(), p.path, err)
	}
	if got := hex.EncodeToString(hs.Sum(nil)); got != want {
		os.RemoveAll(dir)
		return "", fmt.Errorf("%s: command %s has sha256 %s, configured %s: %w", p.where(), p.path, got, want, ErrChecksumMismatch)
	}
	return dst, nil
}

// decode decodes the spec's config block against schema.
func (p *Plugin) decode(schema sdk.Schema) (sdk.Config, error) {
	cfg, diags := p.decodeDiags(schema)
	if !diags.HasErrors() {
		return cfg, nil
	}
	return nil, &ConfigError{Kind: p.kind, Name: p.name, Diags: diags}
}

// decodeDiags decodes the spec's config block against schema; diagnostics
// without a position of their own point at the plugin block.
func (p *Plugin) decodeDiags(schema sdk.Schema) (sdk.Config, hcl.Diagnostics) {
	cfg, diags := DecodeConfigContext(schema, p.spec.Config, p.h.opts.EvalContext)
	for _, d := range diags {
		if (d.Subject == nil || d.Subject.Filename == "") && p.spec.DeclRange.Filename != "" {
			r := p.spec.DeclRange
			d.Subject = &r
		}
	}
	return cfg, diags
}

// ConfigError is a plugin config block that does not match the plugin's
// schema. It matches ErrConfig with errors.Is and hcl.Diagnostics with
// errors.As.
type ConfigError struct {
	Kind, Name string
	Diags      hcl.Diagnostics
}

func (e *ConfigError) Error() string {
	var parts []string
	for _, d := range e.Diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += "; " + d.Detail
		}
		if d.Subject != nil && d.Subject.Filename != "" {
			msg = fmt.Sprintf("%s:%d,%d: %s", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, msg)
		}
		parts = append(parts, msg)
	}
	return fmt.Sprintf("%s plugin %q: config: %s", e.Kind, e.Name, strings.Join(parts, "; "))
}

// Is makes errors.Is(err, ErrConfig) true.
func (e *ConfigError) Is(target error) bool { return target == ErrConfig }

// As hands out the diagnostics.
func (e *ConfigError) As(target any) bool {
	if d, ok := target.(*hcl.Diagnostics); ok {
		*d = e.Diags
		return true
	}
	return false
}

// launch starts one process and checks what it is. It does not configure it.
func (p *Plugin) launch(ctx context.Context) (*instance, error) {
	path := p.path
	if !p.bundled {
		if err := p.checkExecutable(); err != nil {
			return nil, err
		}
		if p.spec.SHA256 != "" {
			copyPath, err := p.verifiedCopy()
			if err != nil {
				return nil, err
			}
			// Once started, the process no longer needs its file.
			defer os.RemoveAll(filepath.Dir(copyPath))
			path = copyPath
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	stderr := &tailBuffer{max: 2048}
	cmd := exec.Command(path, p.args...)
	if p.bundled && p.h.argv0 != "" {
		// ps shows the mesh binary's name, not the /proc path it runs from.
		cmd.Args[0] = p.h.argv0
	}
	// Its own process group, so a plugin and whatever it started can be
	// killed together.
	cmd.SysProcAttr = newProcAttr()
	// The host's environment without the control token: go-plugin would
	// otherwise pass on all of it.
	cmd.Env = pluginEnv(p.h.opts.Secrets)
	client := plugin.NewClient(&plugin.ClientConfig{
		SkipHostEnv:      true,
		HandshakeConfig:  pluginclient.Handshake,
		VersionedPlugins: pluginclient.VersionedPlugins(p.h.opts.APIVersions),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		StartTimeout:     p.h.opts.StartTimeout,
		Logger:           pluginclient.RelayLogger(p.logger),
		Stderr:           stderr,
	})
	rpc, err := client.Client()
	if err != nil {
		// Kill the group first: a child holding the plugin's stdout open
		// would otherwise keep Kill waiting for the pipe to close.
		if cmd.Process != nil {
			killGroup(cmd.Process.Pid)
		}
		client.Kill()
		msg := handshakeProblem(err, p.h.opts.StartTimeout)
		if tail := strings.TrimSpace(stderr.String()); tail != "" {
			msg += "; its stderr: " + tail
		}
		if strings.Contains(err.Error(), "incompatible API version") {
			return nil, fmt.Errorf("%s: host speaks plugin API versions %v, %s: %w", p.where(), p.h.opts.APIVersions, msg, ErrAPIVersion)
		}
		return nil, fmt.Errorf("%s: %s: %w: %s", p.where(), p.path, ErrNotPlugin, msg)
	}
	inst := &instance{client: client}
	if rc := client.ReattachConfig(); rc != nil {
		inst.pid = rc.Pid
	}
	fail := func(err error) (*instance, error) {
		client.Kill()
		return nil, err
	}
	raw, err := rpc.Dispense(p.kind)
	if err != nil {
		return fail(fmt.Errorf("%s: dispense: %w", p.where(), err))
	}
	shim, ok := raw.(sdk.Plugin)
	remote, ok2 := raw.(pluginclient.Remote)
	if !ok || !ok2 {
		return fail(fmt.Errorf("%s: dispensed %T is not a plugin client", p.where(), raw))
	}
	inst.shim = shim
	cctx, cancel := p.callContext(ctx)
	defer cancel()
	info, err := remote.GetInfo(cctx)
	if err != nil {
		return fail(fmt.Errorf("%s: %s does not answer GetInfo: %v: %w", p.where(), p.path, err, ErrNotPlugin))
	}
	if info.Kind != p.kind {
		return fail(fmt.Errorf("%s: %s serves a %s plugin (%q), configured as %s: %w", p.where(), p.path, info.Kind, info.Name, p.kind, ErrWrongKind))
	}
	if p.bundled && info.Name != p.name {
		return fail(fmt.Errorf("%s: bundled plugin answers as %q: %w", p.where(), info.Name, ErrWrongKind))
	}
	if !shareVersion(info.APIVersions, p.h.opts.APIVersions) {
		return fail(fmt.Errorf("%s: plugin speaks API versions %v, host %v: %w", p.where(), info.APIVersions, p.h.opts.APIVersions, ErrAPIVersion))
	}
	schema, err := remote.GetSchema(cctx)
	if err != nil {
		return fail(fmt.Errorf("%s: get schema: %w", p.where(), err))
	}
	inst.info, inst.schema = info, schema
	return inst, nil
}

// handshakeProblem says in one line why go-plugin could not connect.
func handshakeProblem(err error, timeout time.Duration) string {
	msg := err.Error()
	const unrecognized = "Unrecognized remote plugin message: "
	switch {
	case strings.HasPrefix(msg, unrecognized):
		line, _, _ := strings.Cut(strings.TrimPrefix(msg, unrecognized), "\n")
		if strings.TrimSpace(line) == "" {
			return "it exited without writing the handshake line to stdout"
		}
		if len(line) > 200 {
			line = line[:200] + "..."
		}
		return fmt.Sprintf("it printed %q instead of the handshake line", line)
	case strings.Contains(msg, "exited before we could connect"):
		return "it exited before the handshake"
	case strings.Contains(msg, "timeout while waiting for plugin to start"):
		return fmt.Sprintf("no handshake within %s", timeout)
	}
	first, _, _ := strings.Cut(msg, "\n")
	return first
}

func shareVersion(a, b []uint32) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

// startConfigured launches a process and configures it. On the first
// start of an external plugin the config block is decoded against the
// schema the plugin declares.
func (p *Plugin) startConfigured(ctx context.Context, first bool) (*instance, error) {
	inst, err := p.launch(ctx)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	cfg := p.cfg
	p.mu.Unlock()
	if first && !p.bundled {
		cfg, err = p.decode(inst.schema)
		if err != nil {
			inst.kill()
			return nil, err
		}
	}
	cctx, cancel := p.callContext(ctx)
	defer cancel()
	if err := inst.shim.Configure(cctx, cfg); err != nil {
		exited := inst.client.Exited() || isTransport(err)
		inst.kill()
		if first && !exited && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			// The plugin refused its block: report it like a schema
			// mistake, at the attribute's file and line when it says which.
			return nil, &ConfigError{Kind: p.kind, Name: p.name, Diags: p.rejection(err)}
		}
		return nil, fmt.Errorf("%s: %w", p.where(), err)
	}
	p.mu.Lock()
	p.cfg = cfg
	p.info, p.schema = inst.info, inst.schema
	p.mu.Unlock()
	return inst, nil
}

// callContext bounds ctx by the host's CallTimeout.
func (p *Plugin) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, p.h.opts.CallTimeout)
}

// pollInterval is how often the supervisor checks that the process lives;
// a failed call wakes it at once.
const pollInterval = 20 * time.Millisecond

// supervise restarts the plugin whenever its process exits, until Close.
func (p *Plugin) supervise() {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	backoff := p.h.opts.MinBackoff
	for {
		p.mu.Lock()
		inst, started := p.cur, p.since
		p.mu.Unlock()
		if inst == nil {
			return // closed
		}
		for !inst.client.Exited() {
			select {
			case <-p.done:
				return
			case <-t.C:
			case <-p.wake:
			}
		}
		select {
		case <-p.done:
			return
		default:
		}
		p.mu.Lock()
		p.cur = nil
		p.state = StateRestarting
		p.since = time.Now()
		p.lastErr = fmt.Errorf("process %d exited", inst.pid)
		p.mu.Unlock()
		p.logger.Warn("plugin process exited; restarting", "pid", inst.pid)
		inst.kill() // reap and release go-plugin's goroutines
		if time.Since(started) > 10*p.h.opts.MaxBackoff {
			backoff = p.h.opts.MinBackoff
		}
		for {
			select {
			case <-p.done:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, p.h.opts.MaxBackoff)
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				select {
				case <-p.done:
					cancel()
				case <-ctx.Done():
				}
			}()
			next, err := p.startConfigured(ctx, false)
			cancel()
			if err != nil {
				p.mu.Lock()
				p.lastErr = err
				p.mu.Unlock()
				p.logger.Error("plugin restart failed", "error", err, "next_attempt_in", backoff)
				continue
			}
			p.mu.Lock()
			select {
			case <-p.done: // closed while starting
				p.mu.Unlock()
				next.kill()
				return
			default:
			}
			p.cur = next
			p.state = StateRunning
			p.since = time.Now()
			p.restarts++
			n := p.restarts
			p.mu.Unlock()
			p.logger.Info("plugin restarted", "pid", next.pid, "restarts", n)
			p.h.opts.Events.Emit(events.Event{Type: events.PluginRestarted, Plugin: p.kind + "/" + p.name, PID: next.pid, State: string(StateRunning),
				Detail: fmt.Sprintf("%s plugin %q restarted (%d restarts)", p.kind, p.name, n)})
			break
		}
	}
}

// acquire returns the running instance or ErrPluginUnavailable at once.
func (p *Plugin) acquire() (*instance, error) {
	p.mu.Lock()
	inst, state, lastErr := p.cur, p.state, p.lastErr
	p.mu.Unlock()
	if state == StateClosed {
		return nil, fmt.Errorf("%s plugin %q: %w", p.kind, p.name, ErrClosed)
	}
	if inst == nil || inst.client.Exited() {
		p.poke()
		if lastErr != nil {
			return nil, fmt.Errorf("%s plugin %q (%s: %v): %w", p.kind, p.name, state, lastErr, ErrPluginUnavailable)
		}
		return nil, fmt.Errorf("%s plugin %q: %w", p.kind, p.name, ErrPluginUnavailable)
	}
	return inst, nil
}

// maxTimeouts is how many calls in a row may run into the host's own
// deadline before the plugin is taken for hung and killed, so that the
// supervisor restarts it.
const maxTimeouts = 3

// failed classifies a call error: when the process is gone it becomes
// ErrPluginUnavailable and the supervisor is woken. ctx is the caller's
// context: a deadline that fired while it was still live was the host's,
// and counts towards declaring the plugin hung.
func (p *Plugin) failed(ctx context.Context, inst *instance, err error) error {
	if inst.client.Exited() || isTransport(err) {
		p.poke()
		return fmt.Errorf("%s plugin %q: %v: %w", p.kind, p.name, err, ErrPluginUnavailable)
	}
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		if n := inst.timeouts.Add(1); n >= maxTimeouts {
			p.logger.Error("plugin does not answer; killing it for a restart", "pid", inst.pid, "timeouts_in_a_row", n)
			killGroup(inst.pid)
			p.poke()
			return fmt.Errorf("%s plugin %q: %v (killed after %d timeouts in a row): %w", p.kind, p.name, err, n, ErrPluginUnavailable)
		}
	}
	return fmt.Errorf("%s plugin %q: %w", p.kind, p.name, err)
}

// succeeded resets the hung-plugin detector.
func (i *instance) succeeded() { i.timeouts.Store(0) }

func (p *Plugin) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Kind returns the plugin's kind.
func (p *Plugin) Kind() string { return p.kind }

// Name returns the plugin's name.
func (p *Plugin) Name() string { return p.name }

// Info returns what the plugin reported at its last start.
func (p *Plugin) Info() sdk.Info {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.info
}

// Schema returns the schema the plugin declared at its last start.
func (p *Plugin) Schema() sdk.Schema {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.schema
}

// Configure replaces the plugin's configuration: the running process gets
// it now, every restarted one gets it too.
func (p *Plugin) Configure(ctx context.Context, cfg sdk.Config) error {
	inst, err := p.acquire()
	if err != nil {
		return err
	}
	cctx, cancel := p.callContext(ctx)
	defer cancel()
	if err := inst.shim.Configure(cctx, cfg); err != nil {
		return p.failed(ctx, inst, err)
	}
	p.mu.Lock()
	p.cfg = cfg
	p.mu.Unlock()
	return nil
}

// Status reports the plugin's state.
func (p *Plugin) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Status{
		Kind: p.kind, Name: p.name, Version: p.info.Version, Source: p.source(),
		State: p.state, Restarts: p.restarts, Since: p.since,
	}
	if p.cur != nil {
		s.PID = p.cur.pid
	}
	if p.lastErr != nil {
		s.LastError = p.lastErr.Error()
	}
	return s
}

// Close stops the plugin's process and its supervision.
func (p *Plugin) Close() error {
	p.mu.Lock()
	if p.state == StateClosed {
		p.mu.Unlock()
		return nil
	}
	p.state = StateClosed
	p.since = time.Now()
	close(p.done)
	inst := p.cur
	p.cur = nil
	p.mu.Unlock()
	if inst != nil {
		inst.kill()
	}
	p.h.forget(p)
	p.logger.Debug("plugin closed")
	return nil
}

// tailBuffer keeps the last max bytes written to it, to quote a failing
// plugin's stderr in its start error.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if len(t.buf) > t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max:]...)
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
