package mesh

import (
	"fmt"
	"path/filepath"

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
