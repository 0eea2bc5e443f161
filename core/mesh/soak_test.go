package mesh_test

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestSoak alternates blue/green rollouts with SIGKILLs of workloads and of
// the balancer plugin under continuous load, for MESH_SOAK_DURATION (e.g.
// "10m"; `make soak`). Not one request may fail. Skipped when unset.
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("MESH_SOAK_DURATION"))
	if err != nil || d <= 0 {
		t.Skip("set MESH_SOAK_DURATION (e.g. 10m) to run the soak test")
	}
	e := newEnv(t)
	e.warmup = "200ms"
	e.restart = "always"
	e.writeConfig()
	e.start()
	ctx, cancel := context.WithTimeout(context.Background(), d+5*time.Minute)
	defer cancel()
	c := e.client()
	d1 := e.status().Apps[0].Digest
	d2, err := c.PublishSpore(ctx, e.v2)
	if err != nil {
		t.Fatal(err)
	}
	l := startLoad(e.edgeURL+"/billing/hello", 8)
	end := time.Now().Add(d)
	rounds, kills, pluginKills := 0, 0, 0
	for time.Now().Before(end) {
		rounds++
		digest := d2
		if rounds%2 == 0 {
			digest = d1
		}
		if _, err := c.Deploy(ctx, "billing", digest); err != nil {
			t.Fatal(err)
		}
		if rs, err := c.WaitRollout(ctx, "billing", digest, nil); err != nil || rs.State != "ready" {
			t.Fatalf("round %d: rollout %+v %v\n%s", rounds, rs, err, e.logs.String())
		}
		time.Sleep(400 * time.Millisecond) // old instances drain and stop
		st := e.status()
		if rounds%3 == 0 {
			if ready := pids(st, "ready"); len(ready) > 1 {
				_ = syscall.Kill(ready[rounds%len(ready)], syscall.SIGKILL)
				kills++
				waitFor(t, 15*time.Second, "respawn", func() bool { return len(pids(e.status(), "ready")) == len(ready) })
			}
		}
		if rounds%5 == 0 {
			for _, p := range st.Plugins {
				if p.Kind == "balancer" && p.PID > 0 {
					_ = syscall.Kill(p.PID, syscall.SIGKILL)
					pluginKills++
				}
			}
		}
	}
	l.finish()
	t.Logf("soak %s: %d rollouts, %d workload kills, %d plugin kills, %d requests, %d failed",
		d, rounds, kills, pluginKills, l.ok.Load(), l.failed.Load())
	if n := l.failed.Load(); n != 0 {
		t.Fatalf("%d requests failed during the soak (first: %v)", n, l.firstErr.Load())
	}
}
