package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mycelium-mesh/mesh/core/mesh"
)

func init() {
	register(&command{
		name:     "status",
		synopsis: "Show apps, instances and edge counters of a running mesh",
		run:      runStatus,
	})
}

func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("status", "status [-json] [-config mesh.hcl | -addr ADDR] [APP]\n\n"+
		"Shows the running mesh's apps, instances, edge counters and plugins.\n"+
		"With APP, only that app: its plan, its instances and its counters.", stderr)
	cf := addControlFlags(fs)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	app := ""
	if fs.NArg() > 0 {
		app = fs.Arg(0)
		// Flags may follow APP too.
		if code := parseFlags(fs, fs.Args()[1:]); code >= 0 {
			return code
		}
		if fs.NArg() > 0 {
			fmt.Fprintf(fs.Output(), "mesh status: unexpected arguments %v\n", fs.Args())
			fs.Usage()
			return exitUsage
		}
	}
	c, err := cf.client()
	if err != nil {
		return fail(stderr, "%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, raw, err := c.Status(ctx)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	if app != "" {
		var ok bool
		if st, ok = statusOfApp(st, app); !ok {
			return fail(stderr, "no app %q in the running mesh (mesh status lists them)", app)
		}
		if raw, err = json.Marshal(st); err != nil {
			return fail(stderr, "encode status: %v", err)
		}
	}
	if *asJSON {
		fmt.Fprintln(stdout, string(raw))
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "APP\tDIGEST\tREADY/DESIRED\tMIN\tMAX\tRESTART\tHEALTH\n")
	for _, a := range st.Apps {
		health := "ok"
		if a.Degraded {
			health = "degraded"
		}
		name := a.Name
		if a.Site != "" {
			name += " (site " + a.Site + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%d\t%d\t%s\t%s\n", name, short(a.Digest), a.Ready, a.Desired, a.Min, a.Max, a.Restart, health)
	}
	writeActiveRollouts(tw, st.Apps)
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "APP\tNODE\tINSTANCE\tDIGEST\tSTATE\tPID\tPORT\tENDPOINT\tRESTARTS\tLIMITS\tLAST ERROR\n")
	for _, in := range st.Instances {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%d\t%s\t%s\n", in.App, in.NodeID, in.Instance, short(in.Digest), in.State, in.PID, in.Port, in.URL, in.Restarts, orDash(in.Limits), orDash(oneLine(in.LastError, 300)))
	}
	if len(st.Edge) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintf(tw, "EDGE APP\tREQUESTS\t5XX\tCLIENT CLOSED\tIN FLIGHT\tENDPOINTS\tEJECTED\n")
		for _, name := range sortedKeys(st.Edge) {
			c := st.Edge[name]
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\n", name, c.Requests, c.Errors5xx, c.ClientClosed, c.InFlight, c.Endpoints, c.Ejected)
		}
	}
	if len(st.Plugins) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintf(tw, "PLUGIN\tVERSION\tSOURCE\tSTATE\tPID\tRESTARTS\n")
		for _, p := range st.Plugins {
			fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%d\t%d\n", p.Kind, p.Name, p.Version, p.Source, p.State, p.PID, p.Restarts)
		}
	}
	tw.Flush()
	return exitOK
}

// statusOfApp narrows st to one app: its plan, its instances and its edge
// counters. Nodes, start time and plugins stay as they are. It reports
// false when the mesh has no such app.
func statusOfApp(st mesh.Status, app string) (mesh.Status, bool) {
	out := mesh.Status{Started: st.Started, Nodes: st.Nodes, Plugins: st.Plugins}
	for _, a := range st.Apps {
		if a.Name == app {
			out.Apps = append(out.Apps, a)
		}
	}
	if len(out.Apps) == 0 {
		return st, false
	}
	for _, in := range st.Instances {
		if in.App == app {
			out.Instances = append(out.Instances, in)
		}
	}
	if c, ok := st.Edge[app]; ok {
		out.Edge = map[string]mesh.EdgeCounters{app: c}
	}
	return out, true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine fits s on one table row of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func short(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}
