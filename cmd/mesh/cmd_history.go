package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mycelium-mesh/mesh/core/mesh"
	"github.com/mycelium-mesh/mesh/core/rollout"
)

func init() {
	register(&command{
		name:     "history",
		synopsis: "List an app's past rollouts (digest, version, who, when, outcome)",
		run:      runHistory,
	})
	register(&command{
		name:     "rollback",
		synopsis: "Roll an app back to its previous good digest, or to a digest or version",
		run:      runRollback,
	})
}

// parseWithApp parses flags placed before or after the one APP argument.
func parseWithApp(fs *flag.FlagSet, args []string) (string, int) {
	if code := parseFlags(fs, args); code >= 0 {
		return "", code
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return "", exitUsage
	}
	app := rest[0]
	if code := parseFlags(fs, rest[1:]); code >= 0 {
		return "", code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "mesh %s: unexpected arguments %v\n", fs.Name(), fs.Args())
		fs.Usage()
		return "", exitUsage
	}
	return app, -1
}

func runHistory(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("history", "history [-json] [-n 50] APP", stderr)
	cf := addControlFlags(fs)
	asJSON := fs.Bool("json", false, "print the rollouts as JSON")
	n := fs.Int("n", 0, "show at most `N` rollouts (default: all kept, the newest 50)")
	app, code := parseWithApp(fs, args)
	if code >= 0 {
		return code
	}
	c, err := cf.client()
	if err != nil {
		return fail(stderr, "%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, raw, err := c.History(ctx, app, *n)
	if err != nil {
		return fail(stderr, "history of %s: %v", app, err)
	}
	if *asJSON {
		fmt.Fprintln(stdout, strings.TrimSpace(string(raw)))
		return exitOK
	}
	writeHistory(stdout, h, time.Now())
	return exitOK
}

// writeHistory prints rollouts as a table, newest first.
func writeHistory(w io.Writer, h []rollout.Rollout, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tDIGEST\tVERSION\tTRIGGER\tWHO\tSTARTED\tDURATION\tDETAIL")
	for _, r := range h {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.State, shortDigest(r.Digest), dash(r.Version),
			r.Trigger, dash(r.Who), r.Started.Local().Format(time.RFC3339), r.Duration(now).Round(time.Millisecond), dash(r.Detail))
	}
	_ = tw.Flush()
}

func shortDigest(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func runRollback(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("rollback", "rollback [-to DIGEST|VERSION] [-detach] [-timeout 10m] APP", stderr)
	cf := addControlFlags(fs)
	to := fs.String("to", "", "`DIGEST|VERSION`: a digest (sha256:... or hex) or manifest version from the app's history (default: the previous good digest)")
	detach := fs.Bool("detach", false, "return once the rollout has started instead of following it")
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to follow the rollout; the mesh keeps following it after that")
	app, code := parseWithApp(fs, args)
	if code >= 0 {
		return code
	}
	c, err := cf.client()
	if err != nil {
		return fail(stderr, "%v", err)
	}
	ctx, cancel := followContext(*timeout)
	defer cancel()
	res, err := c.Rollback(ctx, app, *to)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	fmt.Fprintf(stdout, "rollout %s: rolling %s back → %s (was %s)\n", res.Rollout.ID, app, res.Plan.Digest, res.Previous)
	if *detach {
		return exitOK
	}
	return follow(ctx, c, res.Rollout, stdout, stderr)
}

// writeActiveRollouts lists, for `mesh status`, the rollouts in progress.
func writeActiveRollouts(w io.Writer, apps []mesh.AppStatus) {
	first := true
	for _, a := range apps {
		r := a.Rollout
		if r == nil {
			continue
		}
		if first {
			fmt.Fprintln(w)
			fmt.Fprintf(w, "ROLLOUT\tAPP\tSTATE\tDIGEST\tREADY/DESIRED\tDEADLINE\tLAST GOOD\n")
			first = false
		}
		ready := fmt.Sprintf("%d/%d", r.Progress.Ready, r.Progress.Desired)
		if r.Progress.Proving > 0 {
			ready += fmt.Sprintf(" (%d proving)", r.Progress.Proving)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.App, r.State, shortDigest(r.Digest),
			ready, r.Deadline.Local().Format(time.RFC3339), dash(shortDigest(r.LastGood)))
	}
}
