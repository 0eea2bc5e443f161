package main

import (
	"fmt"
	"io"

	"github.com/mycelium-mesh/mesh/core/agent"
)

func init() {
	register(&command{
		name:     agent.LogRelayArg,
		synopsis: "(internal) keep the log files of one workload across mesh restarts",
		hidden:   true,
		run: func(args []string, stdout, stderr io.Writer) int {
			if err := agent.RunLogRelay(args); err != nil {
				fmt.Fprintln(stderr, err)
				return 1
			}
			return 0
		},
	})
}
