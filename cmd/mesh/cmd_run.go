package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mycelium-mesh/mesh/core/config"
	"github.com/mycelium-mesh/mesh/core/mesh"
	"github.com/mycelium-mesh/mesh/core/pluginhost"
)

func init() {
	register(&command{
		name:     "run",
		synopsis: "Run a mesh: fabric, agents, edge and control API",
		run:      runRun,
	})
}

func runRun(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("run", "run [-config mesh.hcl] [-warmup 2s] [-roles all]", stderr)
	cfgPath := fs.String("config", "mesh.hcl", "mesh configuration `FILE`")
	warmup := fs.Duration("warmup", 0, "blue/green warmup, overriding mesh.hcl (default from mesh.hcl, else 2s)")
	rolesFlag := fs.String("roles", "all", "the `ROLES` this process runs, comma-separated: control, agents, edge or all (other than all needs a cluster block)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mesh run: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	roles, err := mesh.ParseRoles(*rolesFlag)
	if err != nil {
		fmt.Fprintf(stderr, "mesh run: -roles: %v\n", err)
		return exitUsage
	}
	return runMesh(*cfgPath, *warmup, roles, stderr)
}

// runMesh runs the given roles of the mesh configured in cfgPath until
// SIGINT or SIGTERM (a second one exits at once); SIGHUP reloads a process
// that runs the control role. Signals are handled from the start, so a
// process still waiting for etcd stops cleanly too.
func runMesh(cfgPath string, warmup time.Duration, roles mesh.Role, stderr io.Writer) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	ready := make(chan *mesh.Mesh, 1)
	go func() {
		var m *mesh.Mesh
		stopping := false
		for {
			select {
			case m = <-ready:
				continue
			case s := <-sigs:
				if s == syscall.SIGHUP {
					if m == nil || roles&mesh.RoleControl == 0 {
						fmt.Fprintln(stderr, "reload: ignored: this process does not run the control role")
						continue
					}
					if notes, err := m.Reload(ctx); err != nil {
						reportMeshError(stderr, err)
					} else {
						for _, n := range notes {
							fmt.Fprintln(stderr, "reload: "+n)
						}
					}
					continue
				}
				if stopping {
					fmt.Fprintln(stderr, "mesh: second signal, exiting now")
					os.Exit(exitError)
				}
				stopping = true
				cancel()
			}
		}
	}()

	m, err := mesh.New(ctx, mesh.Options{ConfigPath: cfgPath, Warmup: warmup, Roles: roles})
	if err != nil {
		if ctx.Err() != nil {
			return exitOK // stopped while waiting (for etcd)
		}
		return reportMeshError(stderr, err)
	}
	ready <- m
	if err := m.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fail(stderr, "%v", err)
	}
	return exitOK
}

// reportMeshError prints configuration diagnostics with file and line, or a
// plain error, and returns exitError.
func reportMeshError(stderr io.Writer, err error) int {
	var ce *mesh.ConfigError
	if errors.As(err, &ce) {
		_ = config.WriteDiagnostics(stderr, ce.Diags, nil, 0, false)
		return exitError
	}
	var pe *pluginhost.ConfigError
	if errors.As(err, &pe) {
		_ = config.WriteDiagnostics(stderr, pe.Diags, nil, 0, false)
		return exitError
	}
	return fail(stderr, "%v", err)
}
