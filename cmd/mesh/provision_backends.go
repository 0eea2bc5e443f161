package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mycelium-mesh/mesh/core/config"
	"github.com/mycelium-mesh/mesh/core/pluginhost"
	"github.com/mycelium-mesh/mesh/core/provision"
	"github.com/mycelium-mesh/mesh/sdk"
)

// provisionBackends maps each hosting provider to the hosting plugin that
// hosts its sites (mesh.hcl's provision block, then -provider flags), and
// launches those plugins lazily, on the first site that needs each. The
// mesh's control address is handed to the plugins as MESH_ADDR and its token
// as sdk.HostingTokenEnv: hosting plugins publish sites through the control
// API, so they are the one kind of child that is given the token, and under
// a name of its own (MESH_TOKEN itself is dropped from every plugin's
// environment).
func provisionBackends(env *provisionEnv, overrides []string, log hclog.Logger) (provision.Backends, func(), error) {
	mapping := map[string]string{}
	for p := range config.HostingProviders {
		if env.cfg != nil {
			mapping[p] = env.cfg.Provision.Plugin(p)
		} else {
			mapping[p] = config.HostingProviders[p]
		}
	}
	for _, o := range overrides {
		prov, plugin, ok := strings.Cut(o, "=")
		if _, known := config.HostingProviders[prov]; !ok || !known || plugin == "" {
			return nil, nil, fmt.Errorf("-provider %q: want PROVIDER=PLUGIN with PROVIDER a HostingProvider name", o)
		}
		mapping[prov] = plugin
	}
	if addr, token, err := env.controlAddr(); err == nil {
		os.Setenv("MESH_ADDR", addr)
		if token != "" {
			os.Setenv(sdk.HostingTokenEnv, token)
		}
	}
	host, err := pluginhost.New(pluginhost.Options{Logger: log.Named("plugin"), EvalContext: config.EvalContext()})
	if err != nil {
		return nil, nil, err
	}
	b := &pluginBackends{env: env, host: host, mapping: mapping, loaded: map[string]provision.Backend{}}
	return b, func() { host.Close() }, nil
}

// controlAddr is where the mesh's control API is, as `mesh deploy` finds it.
func (e *provisionEnv) controlAddr() (string, string, error) {
	if *e.control.addr != "" {
		return *e.control.addr, *e.control.token, nil
	}
	if e.cfg == nil {
		return "", "", errors.New("no control address")
	}
	c := e.cfg.Control
	if c.Socket != "" {
		return "unix://" + c.Socket, "", nil
	}
	if c.Listen != "" {
		return "http://" + c.Listen, c.Token, nil
	}
	return "", "", errors.New("no control address")
}

type pluginBackends struct {
	env     *provisionEnv
	host    *pluginhost.Host
	mapping map[string]string
	loaded  map[string]provision.Backend // by plugin name
	mu      sync.Mutex                   // serialises plugin launches
}

func (b *pluginBackends) Backend(p provision.HostingProvider) (provision.Backend, string, error) {
	name := b.mapping[p.String()]
	if name == "" {
		return nil, "", fmt.Errorf("%w: no hosting plugin for provider %s", provision.ErrConfigMissing, p)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if be, ok := b.loaded[name]; ok {
		return be, name, nil
	}
	spec := pluginhost.Spec{Kind: sdk.KindHosting, Name: name}
	declared := false
	if b.env.cfg != nil {
		if pb, ok := b.env.cfg.Plugin(config.KindHosting, name); ok {
			spec = pluginhost.Spec{Kind: sdk.KindHosting, Name: name, Command: pb.Command, SHA256: pb.SHA256, Config: pb.Config, DeclRange: pb.DeclRange}
			declared = true
		}
	}
	if !declared && !pluginhost.IsBundled(sdk.KindHosting, name) {
		return nil, "", fmt.Errorf("%w: provider %s maps to hosting plugin %q, which is neither bundled nor declared with a plugin \"hosting\" %q block in mesh.hcl",
			provision.ErrConfigMissing, p, name, name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svc, err := b.host.Hosting(ctx, spec)
	if err != nil {
		var ce *pluginhost.ConfigError
		if errors.As(err, &ce) || errors.Is(err, sdk.ErrConfigMissing) {
			return nil, "", fmt.Errorf("%w: %v", provision.ErrConfigMissing, err)
		}
		return nil, "", fmt.Errorf("start hosting plugin %s: %w", name, err)
	}
	be := provision.PluginBackend{Service: retryingHosting{svc}}
	b.loaded[name] = be
	return be, name, nil
}
