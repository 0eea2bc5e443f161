package edge

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mycelium-mesh/mesh/core/config"
	"github.com/mycelium-mesh/mesh/core/config/defaults"
)

// TestDefaultsAgreeWithConfig: an edge started with zero options and one
// started from an empty mesh.hcl use the same timeouts and limits.
func TestDefaultsAgreeWithConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mesh.hcl")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.Load(path)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	var o Options
	o.setDefaults()
	for _, c := range []struct {
		name       string
		edge, file any
	}{
		{"read_header_timeout", o.ReadHeaderTimeout, cfg.Edge.ReadHeaderTimeout},
		{"idle_timeout", o.IdleTimeout, cfg.Edge.IdleTimeout},
		{"upstream_timeout", o.UpstreamTimeout, cfg.Edge.UpstreamTimeout},
		{"max_header_bytes", o.MaxHeaderBytes, cfg.Edge.MaxHeaderBytes},
		{"log_interval", o.LogInterval, cfg.Edge.LogInterval},
		{"admin", DefaultAdminAddr, cfg.Edge.Admin},
	} {
		if c.edge != c.file {
			t.Errorf("%s: edge default %v, mesh.hcl default %v", c.name, c.edge, c.file)
		}
	}
}

// TestUpstreamPoolsIdleAlike: both pools of endpoint connections — the
// edge's own for requests without a body and the http.Transport for the
// rest — close an idle connection after the one table's UpstreamIdle.
func TestUpstreamPoolsIdleAlike(t *testing.T) {
	e := startEdge(t, Options{Source: newFabric(t)})
	if got := e.transport.IdleConnTimeout; got != idleLimit || idleLimit != defaults.UpstreamIdle {
		t.Fatalf("transport idle timeout %s, own pool %s, defaults.UpstreamIdle %s", got, idleLimit, defaults.UpstreamIdle)
	}
}
