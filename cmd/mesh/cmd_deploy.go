package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/mycelium-mesh/mesh/core/mesh"
)

func init() {
	register(&command{
		name:     "deploy",
		synopsis: "Roll an app out to a new digest (blue/green)",
		run:      runDeploy,
	})
}

func runDeploy(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("deploy", "deploy -app NAME (-digest sha256:... | -spore FILE.spore) [-detach] [-timeout 2m]", stderr)
	cf := addControlFlags(fs)
	app := fs.String("app", "", "app to deploy (required)")
	digest := fs.String("digest", "", "digest of a spore already in the repo")
	sporePath := fs.String("spore", "", "spore file to publish, then deploy")
	detach := fs.Bool("detach", false, "return once the plan is published instead of following the rollout")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to follow the rollout")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if *app == "" || (*digest == "") == (*sporePath == "") {
		fmt.Fprintln(stderr, "mesh deploy: -app and exactly one of -digest or -spore are required")
		fs.Usage()
		return exitUsage
	}
	c, err := cf.client()
	if err != nil {
		return fail(stderr, "%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	d := *digest
	if *sporePath != "" {
		if d, err = c.PublishSpore(ctx, *sporePath); err != nil {
			return fail(stderr, "%v", err)
		}
		fmt.Fprintf(stdout, "published %s\n", d)
	}
	if err := c.Deploy(ctx, *app, d); err != nil {
		return fail(stderr, "deploy %s: %v", *app, err)
	}
	fmt.Fprintf(stdout, "deploying %s → %s\n", *app, d)
	if *detach {
		return exitOK
	}
	rs, err := c.WaitRollout(ctx, *app, d, func(rs mesh.RolloutState) {
		fmt.Fprintf(stdout, "  %s: %d/%d ready\n", rs.State, rs.Ready, rs.Desired)
	})
	if err != nil {
		return fail(stderr, "%v", err)
	}
	switch rs.State {
	case "ready":
		fmt.Fprintf(stdout, "%s is ready on %s (%d/%d)\n", *app, d, rs.Ready, rs.Desired)
		return exitOK
	default:
		return fail(stderr, "rollout of %s %s: %s", *app, rs.State, rs.Detail)
	}
}
