package mesh

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-hclog"

	"github.com/mycelium-mesh/mesh/core/config"
	"github.com/mycelium-mesh/mesh/core/edge"
	"github.com/mycelium-mesh/mesh/core/events"
	"github.com/mycelium-mesh/mesh/core/pluginhost"
	"github.com/mycelium-mesh/mesh/sdk"
)

// plugins are the plugin clients a mesh uses: one health checker, the
// balancers its apps name and, optionally, a repo backend. Each client
// survives restarts of its plugin process.
type plugins struct {
	host      *pluginhost.Host
	check     sdk.HealthChecker
	backend   sdk.RepoBackend // nil: the repo is local only
	balancers map[string]sdk.Balancer
}

// specFor returns the plugin spec for kind/name: the plugin block of cfg
// that names it, else the bundled plugin with its default configuration.
func specFor(cfg *config.Config, kind, name string) pluginhost.Spec {
	for _, p := range cfg.Plugins {
		if p.Kind == kind && p.Name == name {
			return pluginhost.Spec{Kind: kind, Name: name, Command: p.Command, SHA256: p.SHA256, Config: p.Config, DeclRange: p.DeclRange}
		}
	}
	return pluginhost.Spec{Kind: kind, Name: name}
}

func startPlugins(ctx context.Context, cfg *config.Config, selfExe string, log hclog.Logger, sink events.Sink) (*plugins, error) {
	host, err := pluginhost.New(pluginhost.Options{Logger: log, SelfExe: selfExe, EvalContext: config.EvalContext(), Secrets: []string{cfg.Control.Token}, Events: sink})
	if err != nil {
		return nil, err
	}
	p := &plugins{host: host, balancers: map[string]sdk.Balancer{}}
	ok := false
	defer func() {
		if !ok {
			_ = host.Close()
		}
	}()
	if p.check, err = host.Health(ctx, specFor(cfg, sdk.KindHealth, cfg.Health.Plugin)); err != nil {
		return nil, fmt.Errorf("health plugin %q: %w", cfg.Health.Plugin, err)
	}
	names := []string{cfg.Edge.Balancer}
	for _, a := range cfg.Apps {
		if a.Balancer != "" {
			names = append(names, a.Balancer)
		}
	}
	for _, n := range names {
		if _, done := p.balancers[n]; done || n == "" {
			continue
		}
		b, err := host.Balancer(ctx, specFor(cfg, sdk.KindBalancer, n))
		if err != nil {
			return nil, fmt.Errorf("balancer plugin %q: %w", n, err)
		}
		p.balancers[n] = b
	}
	if cfg.Repo.Backend != "" {
		if p.backend, err = host.Repo(ctx, specFor(cfg, sdk.KindRepo, cfg.Repo.Backend)); err != nil {
			return nil, fmt.Errorf("repo plugin %q: %w", cfg.Repo.Backend, err)
		}
	}
	ok = true
	return p, nil
}

// balancerFor maps each app to the balancer its block names, else the
// edge's default.
func (p *plugins) balancerFor(cfg *config.Config) func(app string) edge.Balancer {
	perApp := map[string]string{}
	for _, a := range cfg.Apps {
		perApp[a.Name] = a.Balancer
	}
	def := cfg.Edge.Balancer
	return func(app string) edge.Balancer {
		name := perApp[app]
		if name == "" {
			name = def
		}
		if b, ok := p.balancers[name]; ok {
			return b
		}
		return nil
	}
}

// statuses reports every loaded plugin.
func (p *plugins) statuses() []pluginhost.Status { return p.host.Statuses() }

func (p *plugins) close() {
	if p.host != nil {
		_ = p.host.Close()
	}
}
