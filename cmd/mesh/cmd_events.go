package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/mycelium-mesh/mesh/core/mesh"
)

func init() {
	register(&command{
		name:     "events",
		synopsis: "Show (-f: follow) what happens in a running mesh: plans, instances, endpoints, rollouts, plugins, reloads",
		run:      runEvents,
	})
}

func runEvents(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("events", "events [-f] [-app APP] [-tail N] [-json] [-config mesh.hcl | -addr ADDR]", stderr)
	cf := addControlFlags(fs)
	follow := fs.Bool("f", false, "after the recent events, keep printing new ones until interrupted")
	app := fs.String("app", "", "only the events of `APP` (and notices of lost events)")
	tail := fs.Int("tail", 0, "start with the last `N` recent events only (0: all the mesh keeps)")
	asJSON := fs.Bool("json", false, "print each event as a JSON line (the control API's schema)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "mesh events: unexpected argument %q (use -app APP)\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	c, err := cf.client()
	if err != nil {
		return fail(stderr, "%v", err)
	}
	ctx, cancel := streamContext(*follow)
	defer cancel()
	enc := json.NewEncoder(stdout)
	q := mesh.EventsQuery{App: *app, Follow: *follow, Tail: *tail}
	err = c.Events(ctx, q, func(e mesh.EventLine) error {
		if *asJSON {
			return enc.Encode(e)
		}
		_, err := fmt.Fprintln(stdout, eventText(e.Event))
		return err
	})
	if err != nil && ctx.Err() == nil {
		return fail(stderr, "%v", err)
	}
	return exitOK
}

// eventText is one event as a line for a person: time, type, where, what.
func eventText(e mesh.Event) string {
	var b strings.Builder
	b.WriteString(e.Time.Local().Format("15:04:05.000"))
	b.WriteString(" ")
	fmt.Fprintf(&b, "%-19s", e.Type)
	for _, kv := range [][2]string{
		{"app", e.App}, {"node", e.Node}, {"instance", e.Instance}, {"plugin", e.Plugin},
		{"rollout", e.Rollout}, {"digest", shortDigest(e.Digest)}, {"state", e.State}, {"url", e.URL},
	} {
		if kv[1] != "" {
			fmt.Fprintf(&b, " %s=%s", kv[0], kv[1])
		}
	}
	if e.PID > 0 {
		fmt.Fprintf(&b, " pid=%d", e.PID)
	}
	if e.Desired > 0 {
		fmt.Fprintf(&b, " ready=%d/%d", e.Ready, e.Desired)
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, " (%s)", e.Detail)
	}
	return b.String()
}
