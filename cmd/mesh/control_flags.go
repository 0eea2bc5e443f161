package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/mycelium-mesh/mesh/core/config"
	"github.com/mycelium-mesh/mesh/core/mesh"
)

// controlFlags are the flags every command that talks to a running mesh takes.
type controlFlags struct {
	config *string
	addr   *string
	token  *string
}

func addControlFlags(fs *flag.FlagSet) *controlFlags {
	return &controlFlags{
		config: fs.String("config", "", "the running mesh's configuration `FILE`, to find its control socket (default mesh.hcl when present)"),
		addr:   fs.String("addr", os.Getenv("MESH_ADDR"), "control API `ADDR`: unix:///path/control.sock or http://host:port (env MESH_ADDR)"),
		token:  fs.String("token", os.Getenv("MESH_TOKEN"), "bearer `TOKEN` for a TCP control API (env MESH_TOKEN)"),
	}
}

// client resolves the control address: -addr, else the config's control
// block, else the default socket.
func (cf *controlFlags) client() (*mesh.Client, error) {
	addr := *cf.addr
	if addr == "" {
		path := *cf.config
		if path == "" {
			if _, err := os.Stat("mesh.hcl"); err == nil {
				path = "mesh.hcl"
			}
		}
		if path == "" {
			return nil, fmt.Errorf("no control address: pass -config mesh.hcl or -addr")
		}
		cfg, diags := config.Load(path)
		if diags.HasErrors() {
			var b strings.Builder
			_ = config.WriteDiagnostics(&b, diags, nil, 0, false)
			return nil, fmt.Errorf("load %s:\n%s", path, strings.TrimSpace(b.String()))
		}
		a, tok, err := mesh.ControlAddress(cfg)
		if err != nil {
			return nil, err
		}
		addr = a
		if *cf.token == "" {
			*cf.token = tok
		}
	}
	return mesh.NewClient(addr, *cf.token)
}
