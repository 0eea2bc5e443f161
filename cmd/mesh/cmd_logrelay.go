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
			fs := newFlagSet(agent.LogRelayArg, agent.LogRelayArg+" STDOUT_LOG STDERR_LOG MAX_SIZE MAX_FILES\n\n"+
				"Started by the agent with the workload's output on descriptors 3 and 4: writes\n"+
				"them to the two files, rotated at MAX_SIZE bytes, keeping MAX_FILES. Not meant\n"+
				"to be run by hand.", stderr)
			if code := parseFlags(fs, args); code >= 0 {
				return code
			}
			if fs.NArg() != 4 {
				fmt.Fprintf(stderr, "mesh %s: want 4 arguments, got %d\n", agent.LogRelayArg, fs.NArg())
				fs.Usage()
				return exitUsage
			}
			if err := agent.RunLogRelay(fs.Args()); err != nil {
				fmt.Fprintln(stderr, err)
				return 1
			}
			return 0
		},
	})
}
