package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mycelium-mesh/mesh/core/mesh"
)

func init() {
	register(&command{
		name:     "logs",
		synopsis: "Show (-f: follow) the stdout and stderr of an app's workloads",
		run:      runLogs,
	})
}

func runLogs(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("logs", "logs [-f] [-node N] [-instance ID] [-stream stdout|stderr] [-tail 50] [-config mesh.hcl | -addr ADDR] APP", stderr)
	cf := addControlFlags(fs)
	follow := fs.Bool("f", false, "keep streaming new lines, across restarts and rotations, until interrupted")
	node := fs.String("node", "", "only the instances on `NODE`")
	instance := fs.String("instance", "", "only the instance `ID` (from mesh status)")
	stream := fs.String("stream", "", "only the `STREAM` stdout or stderr (default both)")
	tail := fs.Int("tail", 50, "start with the last `N` lines of each stream")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "mesh logs: exactly one APP is required")
		fs.Usage()
		return exitUsage
	}
	c, err := cf.client()
	if err != nil {
		return fail(stderr, "%v", err)
	}
	ctx, cancel := streamContext(*follow)
	defer cancel()
	q := mesh.LogsQuery{App: fs.Arg(0), Node: *node, Instance: *instance, Stream: *stream, Tail: *tail, Follow: *follow}
	if err := c.Logs(ctx, q, stdout); err != nil {
		return fail(stderr, "%v", err)
	}
	return exitOK
}

// streamContext is the context of a command that reads a stream from the
// control API: when following, until Ctrl-C or SIGTERM; otherwise for a
// minute at most.
func streamContext(follow bool) (context.Context, context.CancelFunc) {
	if follow {
		return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	}
	return context.WithTimeout(context.Background(), time.Minute)
}
