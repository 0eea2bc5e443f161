package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

func init() {
	register(&command{
		name:     "reload",
		synopsis: "Re-read mesh.hcl in a running mesh and apply the difference",
		run: func(args []string, stdout, stderr io.Writer) int {
			fs := newFlagSet("reload", "reload [-config mesh.hcl | -addr ADDR]", stderr)
			cf := addControlFlags(fs)
			if code := parseFlags(fs, args); code >= 0 {
				return code
			}
			c, err := cf.client()
			if err != nil {
				return fail(stderr, "%v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			notes, err := c.Reload(ctx)
			if err != nil {
				return fail(stderr, "reload: %v", err)
			}
			for _, n := range notes {
				fmt.Fprintln(stdout, "note: "+n)
			}
			fmt.Fprintln(stdout, "Configuration reloaded.")
			return exitOK
		},
	})
}
