package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mycelium-mesh/mesh/core/config"
	"github.com/mycelium-mesh/mesh/core/mesh"
)

func init() {
	register(&command{
		name:     "validate",
		synopsis: "Check a mesh.hcl configuration file",
		run:      runValidate,
	})
}

func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate", "validate [FILE.hcl | -config FILE.hcl]\n\n"+
		"Decodes and checks a configuration file (default ./mesh.hcl). Each\n"+
		"plugin block, bundled or external, is checked by starting the plugin:\n"+
		"its config block is decoded against the schema the plugin declares and\n"+
		"the plugin is asked to validate it without applying it; a block the\n"+
		"plugin could not check itself gets a warning saying why. Nothing else\n"+
		"is started. Errors and warnings are printed with file, line and the\n"+
		"offending text; the exit code is 1 when there is an error.", stderr)
	cfgFlag := fs.String("config", "", "the `FILE` to check (the same as the argument)")
	timeout := fs.Duration("timeout", 10*time.Second, "how long each plugin may take to start and to answer (a `DURATION`)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	path := "mesh.hcl"
	switch {
	case *cfgFlag != "" && fs.NArg() > 0:
		fmt.Fprintln(stderr, "mesh validate: give the file either as -config or as the argument")
		fs.Usage()
		return exitUsage
	case *cfgFlag != "":
		path = *cfgFlag
	case fs.NArg() == 0:
	case fs.NArg() == 1:
		path = fs.Arg(0)
	default:
		fmt.Fprintln(stderr, "mesh validate: at most one file")
		fs.Usage()
		return exitUsage
	}
	cfg, diags := mesh.Validate(path)
	if !diags.HasErrors() && cfg != nil {
		logger := hclog.New(&hclog.LoggerOptions{Name: "mesh", Level: hclog.Error, Output: stderr})
		diags = append(diags, mesh.CheckPlugins(context.Background(), cfg, *timeout, logger)...)
	}
	if len(diags) > 0 {
		if err := config.WriteDiagnostics(stderr, diags, nil, 0, false); err != nil {
			return fail(stderr, "%v", err)
		}
	}
	if diags.HasErrors() {
		return exitError
	}
	fmt.Fprintln(stdout, "Configuration is valid.")
	return exitOK
}
