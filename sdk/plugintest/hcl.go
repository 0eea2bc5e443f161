package plugintest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/mycelium-mesh/mesh/sdk"
	"github.com/mycelium-mesh/mesh/sdk/hclconfig"
	"github.com/mycelium-mesh/mesh/sdk/internal/hostapi"
	"github.com/mycelium-mesh/mesh/sdk/pluginclient"
)

// callTimeout bounds each base call the harness makes, as the host's do.
const callTimeout = 10 * time.Second

var (
	implMu  sync.Mutex
	newImpl func() sdk.Plugin // what Main or ServeIfLaunched was given
)

// Main is the TestMain of a plugin's tests: it serves the plugin when the
// test binary was started by Run or Launch, and runs the tests otherwise.
//
//	func TestMain(m *testing.M) { plugintest.Main(m, func() sdk.Plugin { return &lb{} }) }
func Main(m *testing.M, newPlugin func() sdk.Plugin) {
	ServeIfLaunched(newPlugin)
	os.Exit(m.Run())
}

// Plugin is a plugin under test, started the way the mesh host starts it
// and configured from HCL the way the host configures it.
type Plugin struct {
	t      testing.TB
	client pluginclient.Remote
	pid    int
	schema sdk.Schema
	// File is where config snippets count as written: relative TypePath
	// values resolve against its directory, and diagnostics name it.
	// Run sets it to mesh.hcl in the test's working directory (the
	// package's directory); set it before Configure to use another.
	File string
}

// Run starts the test binary itself as the plugin's process, through the
// go-plugin handshake, AutoMTLS and gRPC transport the host uses, with
// the plugin's log and go-plugin's own routed to t.Log. TestMain must
// call Main (or ServeIfLaunched). The process is stopped when the test
// ends.
//
//	p := plugintest.Run(t)
//	p.MustConfigure(`weights = { "node-1" = 5 }`)
//	pol, err := p.Balancer().Balance(ctx, state)
func Run(t testing.TB) *Plugin {
	t.Helper()
	implMu.Lock()
	mk := newImpl
	implMu.Unlock()
	if mk == nil {
		t.Fatal("plugintest: Run needs TestMain to call plugintest.Main (or ServeIfLaunched)")
	}
	// What would make the plugin's Serve exit is said here, in its own
	// words, rather than as a handshake the child never wrote.
	impl := mk()
	if _, err := hostapi.ServerPluginSet(impl); err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	if err := impl.Schema().Validate(); err != nil {
		t.Fatalf("plugintest: plugin %q: %v", impl.Info().Name, err)
	}
	client, pid, err := launch(t, impl.Info().Kind)
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	schema, err := client.GetSchema(ctx)
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	return &Plugin{t: t, client: client, pid: pid, schema: schema, File: filepath.Join(wd, "mesh.hcl")}
}

// PID is the plugin process's id.
func (p *Plugin) PID() int { return p.pid }

// Schema is the schema the plugin declared over the wire.
func (p *Plugin) Schema() sdk.Schema { return p.schema }

// Decode decodes src, the inside of the plugin's `config { }` block, as
// the host does: schema checks, defaults and absolute paths. The error,
// when not nil, is the hcl.Diagnostics the host would print.
func (p *Plugin) Decode(src string) (sdk.Config, error) {
	body, diags := p.parse(src)
	if diags.HasErrors() {
		return nil, diags
	}
	cfg, diags := hclconfig.Decode(p.schema, body, nil)
	if diags.HasErrors() {
		return nil, diags
	}
	return cfg, nil
}

// Configure decodes src as the host does and hands the result to the
// plugin's Configure. A mistake the host would find, or a refusal by the
// plugin, comes back as hcl.Diagnostics at the attribute's line of src
// (for a plugin's sdk.AttributeError) or at its first line.
func (p *Plugin) Configure(src string) error {
	return p.send(src, func(ctx context.Context, cfg sdk.Config) error { return p.client.Configure(ctx, cfg) })
}

// Validate is Configure through ValidateConfig: what `mesh validate`
// asks. A plugin that does not implement sdk.ConfigValidator gives an
// error wrapping pluginclient.ErrNotValidated.
func (p *Plugin) Validate(src string) error {
	return p.send(src, func(ctx context.Context, cfg sdk.Config) error {
		return p.client.ValidateConfig(ctx, cfg)
	})
}

// MustConfigure is Configure that fails the test on an error.
func (p *Plugin) MustConfigure(src string) {
	p.t.Helper()
	if err := p.Configure(src); err != nil {
		p.t.Fatalf("plugintest: configure: %v", err)
	}
}

func (p *Plugin) send(src string, call func(context.Context, sdk.Config) error) error {
	body, diags := p.parse(src)
	if diags.HasErrors() {
		return diags
	}
	cfg, diags := hclconfig.Decode(p.schema, body, nil)
	if diags.HasErrors() {
		return diags
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	err := call(ctx, cfg)
	if err == nil || errors.Is(err, pluginclient.ErrNotValidated) {
		return err
	}
	var ae *sdk.AttributeError
	if errors.As(err, &ae) {
		if rng, ok := hclconfig.Locate(body, ae.Attribute); ok {
			return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: fmt.Sprintf("Invalid value for %q", ae.Attribute),
				Detail: fmt.Sprintf("The plugin refuses this value: %v.", ae.Err), Subject: &rng}}
		}
	}
	rng := body.MissingItemRange()
	return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Plugin rejects its configuration",
		Detail: fmt.Sprintf("The plugin refuses this block: %v.", err), Subject: &rng}}
}

func (p *Plugin) parse(src string) (hcl.Body, hcl.Diagnostics) {
	f, diags := hclsyntax.ParseConfig([]byte(src), p.File, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diags
	}
	return f.Body, nil
}

// Balancer is the plugin's client as a balancer; the test fails when the
// plugin is of another kind.
func (p *Plugin) Balancer() sdk.Balancer { return as[sdk.Balancer](p) }

// Health is the plugin's client as a health checker.
func (p *Plugin) Health() sdk.HealthChecker { return as[sdk.HealthChecker](p) }

// Repo is the plugin's client as a repo backend.
func (p *Plugin) Repo() sdk.RepoBackend { return as[sdk.RepoBackend](p) }

// Hosting is the plugin's client as a hosting backend.
func (p *Plugin) Hosting() sdk.HostingBackend { return as[sdk.HostingBackend](p) }

func as[T any](p *Plugin) T {
	p.t.Helper()
	c, ok := p.client.(T)
	if !ok {
		var zero T
		p.t.Fatalf("plugintest: the %s plugin is not a %T", p.client.Info().Kind, &zero)
	}
	return c
}

// Line is the line a diagnostics error points at, or 0: a short way to
// assert where a mistake was reported.
func Line(err error) int {
	var diags hcl.Diagnostics
	if errors.As(err, &diags) && len(diags) > 0 && diags[0].Subject != nil {
		return diags[0].Subject.Start.Line
	}
	return 0
}
