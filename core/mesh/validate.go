package mesh

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hashicorp/hcl/v2"

	"github.com/mycelium-mesh/mesh/core/config"
	"github.com/mycelium-mesh/mesh/core/pluginhost"
)

// Validate loads mesh.hcl and also decodes the config blocks of bundled
// plugins against their declared schemas, so their mistakes are reported
// with file and line without starting anything. External plugins declare
// their schema at run time (`mesh plugins` launches them to check theirs).
func Validate(path string) (*config.Config, hcl.Diagnostics) {
	cfg, diags := config.Load(path)
	if cfg == nil {
		return nil, diags
	}
	for _, p := range cfg.Plugins {
		if p.Command != "" || p.Config == nil {
			continue
		}
		schema, ok := pluginhost.BundledSchema(p.Kind, p.Name)
		if !ok {
			continue
		}
		_, d := pluginhost.DecodeConfigContext(schema, p.Config, config.EvalContext())
		diags = append(diags, d...)
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return cfg, diags
}

// CheckPlugins starts every plugin block of cfg, bundled or external, one
// at a time, and has pluginhost.Check decode its config block against the
// schema the plugin declares and ask the plugin to validate it without
// applying it. timeout bounds each plugin's start and each call; logger
// receives the plugins' own logs (nil: none). The diagnostics say, with
// file and line, what mesh run would refuse, and warn about any block the
// plugin itself could not check.
func CheckPlugins(ctx context.Context, cfg *config.Config, timeout time.Duration, logger hclog.Logger) hcl.Diagnostics {
	if len(cfg.Plugins) == 0 {
		return nil
	}
	host, err := pluginhost.New(pluginhost.Options{
		Logger:       logger,
		StartTimeout: timeout,
		CallTimeout:  timeout,
		EvalContext:  config.EvalContext(),
	})
	if err != nil {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Plugins cannot be checked", Detail: err.Error()}}
	}
	defer host.Close()
	var diags hcl.Diagnostics
	for _, b := range cfg.Plugins {
		_, d, _ := host.Check(ctx, pluginSpec(b))
		diags = append(diags, d...)
	}
	return diags
}

// pluginSpec is the pluginhost.Spec of a plugin block.
func pluginSpec(b config.PluginBlock) pluginhost.Spec {
	return pluginhost.Spec{Kind: b.Kind, Name: b.Name, Command: b.Command, SHA256: b.SHA256, Config: b.Config, DeclRange: b.DeclRange}
}

// ControlAddress returns the address of the control API a configuration
// declares, "unix:///path" or "http://host:port", and its token.
func ControlAddress(cfg *config.Config) (addr, token string, err error) {
	switch {
	case cfg.Control.Socket != "":
		return "unix://" + filepath.Clean(cfg.Control.Socket), "", nil
	case cfg.Control.Listen != "":
		return "http://" + cfg.Control.Listen, cfg.Control.Token, nil
	default:
		return "", "", fmt.Errorf("%s configures no control API", cfg.File)
	}
}

// isLoopback reports whether a host:port listens on loopback only.
func isLoopback(hostport string) bool { return config.IsLoopback(hostport) }
