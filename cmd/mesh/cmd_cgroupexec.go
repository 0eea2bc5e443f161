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
			// Returns only when the workload could not be started.
			fmt.Fprintln(stderr, agent.RunShim(args))
			return 127
		},
	})
}
