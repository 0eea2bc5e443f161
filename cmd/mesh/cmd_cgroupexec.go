package main

import (
	"fmt"
	"io"

	"github.com/mycelium-mesh/mesh/core/agent"
)

func init() {
	register(&command{
		name:     agent.ShimArg,
		synopsis: "(internal) start a workload inside its v1 cgroups",
		hidden:   true,
		run: func(args []string, stdout, stderr io.Writer) int {
			// Flags end at BINARY (an absolute path), so the workload's own
			// arguments are passed on untouched.
			fs := newFlagSet(agent.ShimArg, agent.ShimArg+" BINARY [ARGS...]\n\n"+
				"Started by the agent, with the cgroups to join in MESH_CGROUP_JOIN: joins them\n"+
				"and replaces itself with BINARY. Not meant to be run by hand.", stderr)
			if code := parseFlags(fs, args); code >= 0 {
				return code
			}
			if fs.NArg() == 0 {
				fs.Usage()
				return exitUsage
			}
			// Returns only when the workload could not be started.
			fmt.Fprintln(stderr, agent.RunShim(fs.Args()))
			return 127
		},
	})
}
