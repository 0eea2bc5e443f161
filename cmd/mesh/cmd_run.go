package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

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
	fs := newFlagSet("run", "run [-config mesh.hcl] [-warmup 2s]", stderr)
	cfgPath := fs.String("config", "mesh.hcl", "mesh configuration `FILE`")
	warmup := fs.Duration("warmup", 0, "blue/green warmup, overriding mesh.hcl (default from mesh.hcl, else 2s)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mesh run: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m, err := mesh.New(ctx, mesh.Options{ConfigPath: *cfgPath, Warmup: *warmup})
	if err != nil {
		return reportMeshError(stderr, err)
	}

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	go func() {
		stopping := false
		for s := range sigs {
			if s == syscall.SIGHUP {
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
	}()

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
