package mesh_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/mesh"
	"github.com/mycelium-mesh/mesh/core/rollout"
	"github.com/mycelium-mesh/mesh/internal/netnstest"
)

// TestClusterAcrossHosts runs a cluster of hosts as network namespaces
// (see cluster_harness_test.go) and puts it through the faults an
// operator meets, each under continuous load from the client host through
// the edge, logging failed requests and recovery times:
//
//   - placement: instances spread one per host, endpoints carry the
//     hosts' addresses, max holds cluster-wide;
//   - spores across hosts: each agent host's own repo holds what it runs,
//     fetched from the control process's listener, which wants the token;
//   - every process of an agent host SIGKILLed: its endpoints gone within
//     the lease TTL, its instances back on the other hosts up to min;
//   - an agent host's link down, then healed: another host takes over, and
//     after healing no app runs above max;
//   - the etcd leader SIGKILLed: a plan published after it is applied once
//     a new leader is elected;
//   - a rolling blue/green update across the three hosts: 0 failed requests;
//   - an agent restarted (SIGTERM, started again) with adopt: its
//     workloads keep serving and are adopted, same pids, and keep their
//     slots; 0 failed requests;
//   - a version that never turns healthy on the agent hosts, and one whose
//     bytes the control host serves damaged: reverted as soon as the
//     agents report their failures, 0 failed requests.
func TestClusterAcrossHosts(t *testing.T) {
	c := newClusterEnv(t)
	start := time.Now()

	t.Run("placement", func(t *testing.T) {
		st, _ := c.status()
		for _, app := range []string{"billing", "web"} {
			eps := endpointsOf(st, app)
			hosts := hostsOf(eps)
			if len(slices.Compact(slices.Clone(hosts))) != len(hosts) {
				t.Errorf("%s: two instances on one host: %v", app, hosts)
			}
			for _, h := range hosts {
				if !slices.ContainsFunc(c.hosts, func(x *netnstest.Host) bool { return x.IP == h }) {
					t.Errorf("%s: endpoint on %s, not an agent host's address", app, h)
				}
			}
		}
		if n := len(endpointsOf(st, "billing")); n != 2 {
			t.Errorf("billing has %d endpoints, want its max 2", n)
		}
	})

	t.Run("spores fetched across hosts", func(t *testing.T) {
		st, _ := c.status()
		for _, app := range st.Apps {
			for _, ep := range app.Endpoints {
				node := strings.SplitN(ep.NodeID, "-", 2)[0] // host0 or host0-n1
				blob := filepath.Join(c.dir, node, "repo", strings.TrimPrefix(ep.Digest, "sha256:")+".spore")
				if _, err := os.Stat(blob); err != nil {
					t.Errorf("%s on %s: spore not in the agent host's own repo: %v", app.Name, ep.NodeID, err)
				}
			}
		}
		if _, err := os.Stat(filepath.Join(c.dir, "repo")); !os.IsNotExist(err) {
			t.Errorf("a shared repo directory exists (%v): every process should have its own", err)
		}
		// The control listener is off loopback, but every route, the
		// spores' too, wants the token.
		url := "http://" + c.controlAddr() + "/v1/spores/" + endpointsOf(st, "web")[0].Digest
		for _, tc := range []struct {
			token string
			want  int
		}{{"", http.StatusUnauthorized}, {"wrong-token", http.StatusUnauthorized}, {clusterToken, http.StatusOK}} {
			req, _ := http.NewRequest(http.MethodHead, url, nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := c.clientHTTP(1).Do(req)
			if err != nil {
				t.Fatalf("HEAD a spore from the client host: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("HEAD a spore with token %q from the client host: %s, want %d", tc.token, resp.Status, tc.want)
			}
		}
	})

	billing := c.startLoad("billing", 3)
	web := c.startLoad("web", 2)
	defer billing.finish()
	defer web.finish()
	report := func(phase string, l *hostLoad, app string) int64 {
		ok, failed, first, _ := l.take()
		t.Logf("%s: %s: %d requests ok, %d failed (first: %q)", phase, app, ok, failed, first)
		return failed
	}

	t.Run("host killed", func(t *testing.T) {
		if t.Failed() {
			return
		}
		st, _ := c.status()
		victim := c.hostRunning(st, "billing")
		report("before", billing, "billing")
		report("before", web, "web")
		killed := time.Now()
		victim.host.KillAll()
		gone := c.waitFor(3*clusterLeaseTTL+5*time.Second, "the killed host's endpoints gone", func() bool {
			st, ok := c.status()
			return ok && !slices.Contains(hostsOf(endpointsOf(st, "billing")), victim.host.IP) &&
				!slices.Contains(hostsOf(endpointsOf(st, "web")), victim.host.IP)
		})
		c.waitFor(3*clusterLeaseTTL+10*time.Second, "billing back at min on the other hosts", func() bool {
			st, ok := c.status()
			return ok && len(endpointsOf(st, "billing")) == 2
		})
		t.Logf("host %s killed: endpoints gone after %s (lease TTL %s), billing back at min 2 after %s",
			victim.host.Name, gone.Round(time.Millisecond), clusterLeaseTTL, (time.Since(killed)).Round(time.Millisecond))
		report("host killed", billing, "billing")
		report("host killed", web, "web")
		victim.start() // the host comes back
		c.waitFor(30*time.Second, "web back on three hosts", func() bool {
			st, ok := c.status()
			return ok && len(endpointsOf(st, "web")) == 3
		})
		report("host back", web, "web")
	})

	t.Run("link down and healed", func(t *testing.T) {
		st, _ := c.status()
		cut := c.hostRunning(st, "billing")
		report("before", billing, "billing")
		cut.host.LinkDown()
		down := time.Now()
		took := c.waitFor(3*clusterLeaseTTL+10*time.Second, "another host takes over billing", func() bool {
			st, ok := c.status()
			h := hostsOf(endpointsOf(st, "billing"))
			return ok && len(h) == 2 && !slices.Contains(h, cut.host.IP)
		})
		t.Logf("host %s cut off: billing at min 2 on the other hosts after %s", cut.host.Name, took.Round(time.Millisecond))
		report("link down", billing, "billing")
		cut.host.LinkUp()
		healed := c.waitFor(3*clusterLeaseTTL+15*time.Second, "the healed host holding no billing instance beyond max", func() bool {
			st, ok := c.status()
			return ok && len(endpointsOf(st, "billing")) == 2 && len(endpointsOf(st, "web")) == 3 &&
				!slices.ContainsFunc(st.Apps, func(a mesh.AppStatus) bool { return len(a.Endpoints) > a.Max })
		})
		t.Logf("link healed after %s down: settled after %s", time.Since(down).Round(time.Millisecond), healed.Round(time.Millisecond))
		report("healed", billing, "billing")
		report("healed", web, "web")
	})

	t.Run("etcd leader killed", func(t *testing.T) {
		leader := c.etcdLeader()
		leader.proc.Kill()
		killed := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cl := c.controlClient()
		d, err := cl.PublishSpore(ctx, c.spores["billing-v2"])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Deploy(ctx, "billing", d); err != nil {
			t.Fatalf("deploy after the etcd leader died: %v", err)
		}
		c.waitFor(30*time.Second, "billing v2 on both instances after the election", func() bool {
			st, ok := c.status()
			eps := endpointsOf(st, "billing")
			return ok && len(eps) == 2 && !slices.ContainsFunc(eps, func(e mesh.Endpoint) bool { return e.Digest != d })
		})
		t.Logf("etcd leader %s killed: plan published and applied on every instance after %s", leader.name, time.Since(killed).Round(time.Millisecond))
		report("etcd leader killed", billing, "billing")
		leader.start(c.t)
	})

	t.Run("rolling blue/green across three hosts", func(t *testing.T) {
		report("before", web, "web")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cl := c.controlClient()
		for _, v := range []string{"web-v2", "web-v3"} {
			d, err := cl.PublishSpore(ctx, c.spores[v])
			if err != nil {
				t.Fatal(err)
			}
			began := time.Now()
			if _, err := cl.Deploy(ctx, "web", d); err != nil {
				t.Fatal(err)
			}
			rs, err := cl.WaitRollout(ctx, "web", d, nil)
			if err != nil || rs.State != "ready" {
				t.Fatalf("rollout of %s: %+v %v", v, rs, err)
			}
			c.waitFor(10*time.Second, "every web endpoint on "+v, func() bool {
				st, ok := c.status()
				eps := endpointsOf(st, "web")
				return ok && len(eps) == 3 && !slices.ContainsFunc(eps, func(e mesh.Endpoint) bool { return e.Digest != d })
			})
			t.Logf("%s rolled out on three hosts in %s", v, time.Since(began).Round(time.Millisecond))
		}
		if failed := report("blue/green", web, "web"); failed != 0 {
			t.Errorf("%d failed requests during the rolling update, want 0", failed)
		}
		web.mu.Lock()
		seen := web.versions["v3"]
		web.mu.Unlock()
		if seen == 0 {
			t.Error("no request reached web v3")
		}
	})
	t.Run("agent restarted", func(t *testing.T) {
		st, _ := c.status()
		victim := c.hostRunning(st, "billing") // it runs web too
		var before map[string]int
		c.waitFor(10*time.Second, "one workload of each app on "+victim.host.Name, func() bool {
			var settled bool
			before, settled = c.workloadPids(victim)
			return settled && len(before) == 2
		})
		report("before", billing, "billing")
		report("before", web, "web")
		restarted := time.Now()
		if !victim.proc.Stop(20 * time.Second) {
			t.Fatalf("mesh agent on %s did not stop on SIGTERM", victim.host.Name)
		}
		for app, pid := range before {
			if err := syscall.Kill(pid, 0); err != nil {
				t.Fatalf("%s's workload (pid %d) did not outlive its agent: %v", app, pid, err)
			}
		}
		victim.start()
		c.waitFor(30*time.Second, "both workloads adopted by the restarted agent", func() bool {
			return strings.Count(victim.logs.String(), "adopted workload healthy") == 2
		})
		took := time.Since(restarted)
		if after, _ := c.workloadPids(victim); !maps.Equal(after, before) {
			t.Errorf("workloads after the restart %v, want the same pids as before %v", after, before)
		}
		st, _ = c.status()
		if h := hostsOf(endpointsOf(st, "billing")); len(h) != 2 || !slices.Contains(h, victim.host.IP) {
			t.Errorf("billing on %v after the restart, want 2 endpoints, one on %s", h, victim.host.IP)
		}
		if n := len(endpointsOf(st, "web")); n != 3 {
			t.Errorf("web has %d endpoints after the restart, want 3", n)
		}
		t.Logf("agent on %s restarted: workloads %v adopted %s after SIGTERM", victim.host.Name, before, took.Round(time.Millisecond))
		if failed := report("agent restarted", billing, "billing"); failed != 0 {
			t.Errorf("%d failed billing requests across the agent restart, want 0", failed)
		}
		if failed := report("agent restarted", web, "web"); failed != 0 {
			t.Errorf("%d failed web requests across the agent restart, want 0", failed)
		}
	})
	// A version that cannot start on the agent hosts, because it never
	// turns healthy or because the agents do not trust its signer (they
	// verify what they fetch against their own trusted keys, here fewer
	// than the control process's), is reverted as soon as the agents
	// report their failures: the control process runs no agent and would
	// otherwise wait for the progress deadline (5m).
	for _, tc := range []struct{ name, spore, why string }{
		{"version that never turns healthy reverted at once", "billing-broken", "not healthy"},
		{"spore the agents do not trust refused and reverted", "billing-other", "signer key not trusted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			report("before", billing, "billing")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cl := c.controlClient()
			st, _ := c.status()
			good := endpointsOf(st, "billing")[0].Digest
			d, err := cl.PublishSpore(ctx, c.spores[tc.spore])
			if err != nil {
				t.Fatal(err)
			}
			began := time.Now()
			res, err := cl.Deploy(ctx, "billing", d)
			if err != nil {
				t.Fatal(err)
			}
			var r rollout.Rollout
			c.waitFor(30*time.Second, "the rollout reverted", func() bool {
				rctx, rcancel := context.WithTimeout(ctx, time.Second)
				defer rcancel()
				r, err = cl.GetRollout(rctx, res.Rollout.ID)
				return err == nil && r.State.Terminal()
			})
			if r.State != rollout.Reverted || r.LastGood != good {
				t.Fatalf("%s: %s (last good %s, want reverted to %s): %s", tc.spore, r.State, r.LastGood, good, r.Detail)
			}
			if !strings.Contains(r.Detail, tc.why) {
				t.Errorf("the rollout does not say why the version failed (%q): %s", tc.why, r.Detail)
			}
			t.Logf("%s reverted %s after the deploy: %s", tc.spore, time.Since(began).Round(time.Millisecond), r.Detail)
			c.waitFor(10*time.Second, "billing serving the good version on two hosts", func() bool {
				st, ok := c.status()
				eps := endpointsOf(st, "billing")
				return ok && len(eps) == 2 && !slices.ContainsFunc(eps, func(e mesh.Endpoint) bool { return e.Digest != good })
			})
			if failed := report(tc.spore, billing, "billing"); failed != 0 {
				t.Errorf("%d failed billing requests while %s was tried, want 0", failed, tc.spore)
			}
		})
	}
	t.Logf("cluster faults took %s", time.Since(start).Round(time.Millisecond))
}

// workloadPids reads the instance records of p's agent: app -> pid of
// each workload that is alive. settled is false while an app has two (a
// blue/green replacement still draining).
func (c *clusterEnv) workloadPids(p *meshProc) (pids map[string]int, settled bool) {
	c.t.Helper()
	recs, _ := filepath.Glob(filepath.Join(c.dir, p.node, "run", p.node, "instances", "*.json"))
	pids, settled = map[string]int{}, true
	for _, f := range recs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // removed as its instance stopped
		}
		var r struct {
			PID int    `json:"pid"`
			App string `json:"app"`
		}
		if json.Unmarshal(b, &r) != nil || r.PID <= 0 || syscall.Kill(r.PID, 0) != nil {
			continue
		}
		if _, dup := pids[r.App]; dup {
			settled = false
		}
		pids[r.App] = r.PID
	}
	return pids, settled
}

// hostRunning returns the agent process of a host with an instance of app.
func (c *clusterEnv) hostRunning(st mesh.Status, app string) *meshProc {
	c.t.Helper()
	hosts := hostsOf(endpointsOf(st, app))
	for _, a := range c.agents {
		if slices.Contains(hosts, a.host.IP) {
			return a
		}
	}
	c.t.Fatalf("no agent host runs %s: %v", app, hosts)
	return nil
}
