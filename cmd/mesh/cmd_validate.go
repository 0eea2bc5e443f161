package main

import (
	"fmt"
	"io"

	"github.com/hashicorp/hcl/v2"

	"github.com/mycelium-mesh/mesh/core/config"
	"github.com/mycelium-mesh/mesh/core/pluginhost"
)

func init() {
	register(&command{
		name:     "validate",
		synopsis: "Check a mesh.hcl configuration file",
		run:      runValidate,
	})
}

func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate", "validate [FILE.hcl]\n\n"+
		"Decodes and checks a configuration file (default ./mesh.hcl) without\n"+
		"starting anything. Errors and warnings are printed with file, line and\n"+
		"the offending text; the exit code is 1 when there is an error.", stderr)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	path := "mesh.hcl"
	switch fs.NArg() {
	case 0:
	case 1:
		path = fs.Arg(0)
	default:
		fmt.Fprintln(stderr, "mesh validate: at most one file")
		fs.Usage()
		return exitUsage
	}
	cfg, diags := config.Load(path)
	if cfg != nil {
		diags = append(diags, checkBundledPluginConfig(cfg)...)
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

// checkBundledPluginConfig decodes the config blocks of bundled plugins
// against their declared schemas, so their mistakes show up with file and
// line without starting anything. External plugins declare their schema at
// run time: `mesh plugins` launches them and checks theirs.
func checkBundledPluginConfig(cfg *config.Config) hcl.Diagnostics {
	var diags hcl.Diagnostics
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
	return diags
}
