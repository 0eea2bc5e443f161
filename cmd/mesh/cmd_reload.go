package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/mycelium-mesh/mesh/core/mesh"
)

func init() {
	register(&command{
		name:     "reload",
		synopsis: "Re-read mesh.hcl in a running mesh and apply the difference (-plan: only show it)",
		run: func(args []string, stdout, stderr io.Writer) int {
			fs := newFlagSet("reload", "reload [-plan] [-expect ID] [-json] [-config mesh.hcl | -addr ADDR]\n\n"+
				"Compares mesh.hcl with what the running mesh runs and applies the\n"+
				"difference: app plans, budgets, strip_prefix and trusted keys. An app's\n"+
				"digest changes only when the file's spore or digest for it changed;\n"+
				"a digest rolled out with `mesh deploy` is kept otherwise. Changes that\n"+
				"need a restart are listed, not applied.", stderr)
			cf := addControlFlags(fs)
			planOnly := fs.Bool("plan", false, "show what a reload would change, apply nothing")
			expect := fs.String("expect", "", "apply only if the plan is still the one with this `ID` (printed by -plan)")
			asJSON := fs.Bool("json", false, "print the plan as JSON")
			if code := parseFlags(fs, args); code >= 0 {
				return code
			}
			c, err := cf.client()
			if err != nil {
				return fail(stderr, "%v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			rp, err := c.ReloadWith(ctx, mesh.ReloadOptions{PlanOnly: *planOnly, Expect: *expect})
			if err != nil {
				return fail(stderr, "reload: %v", err)
			}
			if *asJSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rp); err != nil {
					return fail(stderr, "%v", err)
				}
				return exitOK
			}
			if err := mesh.WriteReloadPlan(stdout, rp); err != nil {
				return fail(stderr, "%v", err)
			}
			if rp.Applied {
				fmt.Fprintln(stdout, "Configuration reloaded.")
			}
			return exitOK
		},
	})
}
