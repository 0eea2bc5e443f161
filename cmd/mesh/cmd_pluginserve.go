package main

import (
	"io"

	"github.com/mycelium-mesh/mesh/core/pluginhost"
)

// plugin-serve is how mesh runs its bundled plugins out of process: the
// plugin host re-executes this binary as `mesh plugin-serve KIND NAME`.
// Stdout belongs to the go-plugin handshake, so nothing else is printed
// there.
func init() {
	register(&command{
		name:     pluginhost.ServeArg,
		synopsis: "Serve a bundled plugin (started by mesh itself)",
		hidden:   true,
		run: func(args []string, stdout, stderr io.Writer) int {
			fs := newFlagSet(pluginhost.ServeArg, pluginhost.ServeArg+" KIND NAME", stderr)
			if code := parseFlags(fs, args); code >= 0 {
				return code
			}
			if fs.NArg() != 2 {
				fs.Usage()
				return exitUsage
			}
			if err := pluginhost.ServeBundled(fs.Arg(0), fs.Arg(1)); err != nil {
				return fail(stderr, "%v", err)
			}
			return exitOK
		},
	})
}
