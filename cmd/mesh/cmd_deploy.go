package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mycelium-mesh/mesh/core/mesh"
	"github.com/mycelium-mesh/mesh/core/rollout"
)

func init() {
	register(&command{
		name:     "deploy",
		synopsis: "Roll an app out to a new digest (blue/green, reverted by the mesh on failure)",
		run:      runDeploy,
	})
}

func runDeploy(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("deploy", "deploy -app NAME (-digest sha256:... | -spore FILE.spore) [-detach] [-auto-revert=false] [-timeout 10m]", stderr)
	cf := addControlFlags(fs)
	app := fs.String("app", "", "`NAME` of the app to deploy (required)")
	digest := fs.String("digest", "", "`DIGEST` (sha256:...) of a spore already in the repo")
	sporePath := fs.String("spore", "", "spore `FILE` to publish, then deploy")
	detach := fs.Bool("detach", false, "return once the rollout has started instead of following it; the mesh finishes or reverts it")
	autoRevert := fs.Bool("auto-revert", true, "have the mesh put the last good digest back when the rollout fails or misses its progress deadline")
	fs.BoolVar(autoRevert, "rollback", true, "old name of -auto-revert (the revert is done by the mesh, not by this command)")
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to follow the rollout; the mesh keeps following it after that")
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
	ctx, cancel := followContext(*timeout)
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
	res, err := c.StartRollout(ctx, mesh.DeployRequest{App: *app, Digest: d, AutoRevert: autoRevert})
	if err != nil {
		return fail(stderr, "deploy %s: %v", *app, err)
	}
	fmt.Fprintf(stdout, "rollout %s: deploying %s → %s (was %s)\n", res.Rollout.ID, *app, res.Plan.Digest, res.Previous)
	if *detach {
		fmt.Fprintf(stdout, "detached: the mesh follows rollout %s (see `mesh history %s`)\n", res.Rollout.ID, *app)
		return exitOK
	}
	return follow(ctx, c, res.Rollout, stdout, stderr)
}

// followContext is the context of a command that starts a rollout and
// follows it: it ends after timeout or on Ctrl-C or SIGTERM, which then stop
// the command (and only the command: the mesh goes on with the rollout).
func followContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	return ctx, func() { stop(); cancel() }
}

// follow prints a rollout's progress until it ends and maps its outcome to
// an exit code: 0 when it succeeded, 1 otherwise. When ctx ends first
// (followContext) the following stops; the mesh finishes or reverts the
// rollout.
func follow(ctx context.Context, c *mesh.Client, started rollout.Rollout, stdout, stderr io.Writer) int {
	r, err := c.FollowRollout(ctx, started.ID, func(r rollout.Rollout) {
		p := r.Progress
		if p.Proving > 0 {
			fmt.Fprintf(stdout, "  %s: %d/%d ready, %d healthy, %d proving (ready for less than %s)\n", r.State, p.Ready, p.Desired, p.Healthy, p.Proving, r.MinHealthy)
			return
		}
		fmt.Fprintf(stdout, "  %s: %d/%d ready, %d healthy\n", r.State, p.Ready, p.Desired, p.Healthy)
	})
	if r.ID == "" {
		r = started // nothing fetched yet
	}
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return fail(stderr, "stopped following rollout %s (%s); the mesh finishes it, or reverts it by its deadline %s",
				r.ID, r.State, r.Deadline.Local().Format(time.RFC3339))
		}
		return fail(stderr, "%v", err)
	}
	switch r.State {
	case rollout.Succeeded:
		fmt.Fprintf(stdout, "%s is ready on %s (%d/%d)\n", r.App, r.Digest, r.Progress.Ready, r.Progress.Desired)
		return exitOK
	case rollout.Reverted:
		return fail(stderr, "rollout %s of %s failed; the mesh reverted it to %s: %s", r.ID, r.App, r.LastGood, r.Detail)
	default:
		return fail(stderr, "rollout %s of %s %s: %s", r.ID, r.App, r.State, r.Detail)
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
