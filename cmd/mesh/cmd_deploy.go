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
	fs := newFlagSet("deploy", "deploy -app NAME (-digest sha256:... | -spore FILE.spore) [-detach] [-rollback=false] [-timeout 2m]", stderr)
	cf := addControlFlags(fs)
	app := fs.String("app", "", "app to deploy (required)")
	digest := fs.String("digest", "", "digest of a spore already in the repo")
	sporePath := fs.String("spore", "", "spore file to publish, then deploy")
	detach := fs.Bool("detach", false, "return once the plan is published instead of following the rollout")
	rollback := fs.Bool("rollback", true, "when the rollout fails, deploy the previous digest again")
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
	if err := mustHaveApp(ctx, c, *app); err != nil {
		return fail(stderr, "%v", err)
	}
	d := *digest
	if *sporePath != "" {
		if d, err = c.PublishSpore(ctx, *sporePath); err != nil {
			return fail(stderr, "%v", err)
		}
		fmt.Fprintf(stdout, "published %s\n", d)
	}
	res, err := c.Deploy(ctx, *app, d)
	if err != nil {
		return fail(stderr, "deploy %s: %v", *app, err)
	}
	d = res.Plan.Digest
	fmt.Fprintf(stdout, "deploying %s → %s (was %s)\n", *app, d, res.Previous)
	if *detach {
		return exitOK
	}
	rs, err := c.WaitRollout(ctx, *app, d, func(rs mesh.RolloutState) {
		fmt.Fprintf(stdout, "  %s: %d/%d ready\n", rs.State, rs.Ready, rs.Desired)
	})
	if err != nil {
		return fail(stderr, "%v", err)
	}
	switch {
	case rs.State == "ready":
		fmt.Fprintf(stdout, "%s is ready on %s (%d/%d)\n", *app, d, rs.Ready, rs.Desired)
		return exitOK
	case rs.State == "failed" && *rollback && res.Previous != "" && res.Previous != d:
		fmt.Fprintf(stderr, "rollout of %s failed: %s\n", *app, rs.Detail)
		if _, err := c.Deploy(ctx, *app, res.Previous); err != nil {
			return fail(stderr, "roll back %s to %s: %v", *app, res.Previous, err)
		}
		return fail(stderr, "rolled %s back to %s", *app, res.Previous)
	default:
		return fail(stderr, "rollout of %s %s: %s", *app, rs.State, rs.Detail)
	}
}

// mustHaveApp fails early, before anything is uploaded, for an app the mesh
// does not run.
func mustHaveApp(ctx context.Context, c *mesh.Client, app string) error {
	st, _, err := c.Status(ctx)
	if err != nil {
		return err
	}
	for _, a := range st.Apps {
		if a.Name == app {
			return nil
		}
	}
	names := make([]string, 0, len(st.Apps))
	for _, a := range st.Apps {
		names = append(names, a.Name)
	}
	return fmt.Errorf("%w: %q (the mesh runs %v)", mesh.ErrUnknownApp, app, names)
}
