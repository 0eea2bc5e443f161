package agent

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/fabric"
)

// Lowering an app's instance limit stops exactly the excess instances, those
// of the highest node IDs, without a failed request and without touching
// the survivors; raising it again brings the stopped nodes back.
func TestLoweredLimitConverges(t *testing.T) {
	tests := []struct {
		name string
		// limit publishes limits under which n instances of the app fit.
		limit func(e *env, d string, n int)
	}{
		{"plan max", func(e *env, d string, n int) {
			e.publish(fabric.Plan{Digest: d, Max: n, Restart: fabric.RestartAlways})
		}},
		{"budget instances", func(e *env, d string, n int) {
			if err := e.fab.SetBudget(fabric.Budget{AppName: "billing", MaxInstances: n}); err != nil {
				e.t.Fatal(err)
			}
		}},
		{"budget cpu", func(e *env, d string, n int) {
			// The spores ask for 100m each.
			if err := e.fab.SetBudget(fabric.Budget{AppName: "billing", CPUmilli: n*100 + 50}); err != nil {
				e.t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			d := e.spore("v1", nil)
			const warmup, grace = 300 * time.Millisecond, time.Second
			tweak := func(o *Options) { o.Warmup, o.Grace = warmup, grace }
			agents := []*running{e.startAgent("n1", tweak), e.startAgent("n2", tweak), e.startAgent("n3", tweak)}
			e.publish(fabric.Plan{Digest: d, Restart: fabric.RestartAlways})
			tc.limit(e, d, 3)
			first := map[string]InstanceStatus{}
			for _, a := range agents {
				first[a.opts.NodeID] = a.readyWith(t, "billing", d, 10*time.Second)
			}
			load := startLoad(e.fab, "billing", 4)
			defer func() {
				select {
				case <-load.stop:
				default:
					load.finish()
				}
			}()

			// converged waits until exactly the first n nodes run the app,
			// with their original processes, and the others run nothing.
			converged := func(n int) {
				t.Helper()
				waitFor(t, warmup+grace+5*time.Second, fmt.Sprintf("%d instances", n), func() bool {
					for k, a := range agents {
						live := 0
						for _, s := range a.Instances() {
							if s.State != StateStopped && s.State != StateFailed {
								live++
							}
						}
						want := 0
						if k < n {
							want = 1
						}
						if live != want {
							return false
						}
					}
					return len(e.fab.Endpoints("billing")) == n
				})
				for k, a := range agents {
					node, was := a.opts.NodeID, first[a.opts.NodeID]
					_, registered := endpointOf(e.fab, "billing", node)
					if k < n {
						ready := a.inState("billing", StateReady)
						if len(ready) != 1 || ready[0].PID != was.PID || !pidAlive(was.PID) || !registered {
							t.Fatalf("limit %d: survivor %s was restarted or lost: had pid %d, now %+v (registered %v)", n, node, was.PID, ready, registered)
						}
						continue
					}
					if pidAlive(was.PID) || registered {
						t.Fatalf("limit %d: node %s still runs pid %d (alive %v) or is registered (%v)", n, node, was.PID, pidAlive(was.PID), registered)
					}
				}
			}
			converged(3)
			tc.limit(e, d, 2)
			converged(2)
			tc.limit(e, d, 1)
			converged(1)
			// Longer than the claim retry: the idle nodes stay refused.
			time.Sleep(claimRetry + 300*time.Millisecond)
			converged(1)
			if u := e.fab.Usage("billing"); u.Instances != 1 {
				t.Fatalf("usage %+v at limit 1", u)
			}
			load.finish()
			t.Logf("%d requests while shrinking, %d failed", load.ok.Load(), load.failed.Load())
			if n := load.failed.Load(); n != 0 {
				t.Fatalf("%d failed requests while shrinking: %v", n, load.errs)
			}
			if load.ok.Load() < 50 {
				t.Fatalf("only %d requests made; the load did not run", load.ok.Load())
			}
			if !strings.Contains(e.logs.String(), "instance limit lowered") {
				t.Error("no stop for a lowered limit logged")
			}

			tc.limit(e, d, 3)
			for _, a := range agents[1:] {
				s := a.readyWith(t, "billing", d, claimRetry+10*time.Second)
				first[a.opts.NodeID] = s
			}
			converged(3)
		})
	}
}
