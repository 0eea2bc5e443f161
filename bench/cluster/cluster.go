package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/mycelium-mesh/mesh/core/mesh"
	"github.com/mycelium-mesh/mesh/internal/etcdtest"
)

// The apps every mesh process of the bench declares.
const (
	latApp = "lat" // plan-to-ready: one instance per agent
	foApp  = "fo"  // failover: on two of the agent hosts
)

// setup is everything the scenarios run against: a three-member etcd
// cluster, the roles apart (control and edge on one host, `mesh agent` on
// each agent host) and, beside them, one `mesh run` with the embedded
// fabric and as many in-process agents.
type setup struct {
	r   *runner
	c   config
	dir string
	net *network

	etcdHosts  []*host
	etcdURLs   []string
	etcdPIDs   []int
	ctlHost    *host
	agentHosts []*host
	embHost    *host

	ctl, edge, emb *proc
	agents         []*proc // by agent host
	agentArgs      [][]string

	edgeURL, edgeAdmin string // the edge of the etcd fabric
	embURL, embAdmin   string // the edge of the embedded mesh
	spores             map[string]string
}

// newSetup starts everything and waits until both meshes serve.
func newSetup(ctx context.Context, r *runner, c config) (*setup, error) {
	s := &setup{r: r, c: c, dir: r.TempDir(), spores: map[string]string{}}
	var err error
	if s.net, err = newNetwork(r, c.hosts); err != nil {
		return nil, err
	}
	if err := catch(func() { s.build(ctx) }); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *setup) build(ctx context.Context) {
	r := s.r
	s.cli("keygen", "-out", filepath.Join(s.dir, "dev"))
	for _, sp := range []struct{ app, v string }{{latApp, "v1"}, {latApp, "v2"}, {foApp, "v1"}} {
		s.spores[sp.app+"-"+sp.v] = s.pack(sp.app, sp.v)
	}
	s.startEtcd(ctx)
	s.ctlHost = s.net.addHost("ctl")
	for i := range s.c.agentHosts {
		s.agentHosts = append(s.agentHosts, s.net.addHost(fmt.Sprintf("agent%d", i)))
	}
	s.embHost = s.net.addHost("emb")

	edgePort, adminPort := s.ctlHost.port(r, 8080), s.ctlHost.port(r, 9090)
	s.edgeURL = "http://" + net.JoinHostPort(s.ctlHost.ip, fmt.Sprint(edgePort))
	s.edgeAdmin = "http://" + net.JoinHostPort(s.ctlHost.ip, fmt.Sprint(adminPort))
	ctlCfg := s.clusterConfig("ctl", s.ctlHost, edgePort, adminPort)
	s.ctl = s.ctlHost.start(r, "control", filepath.Join(s.dir, "ctl.log"), s.c.mesh, "run", "-roles", "control", "-config", ctlCfg)
	s.edge = s.ctlHost.start(r, "edge", filepath.Join(s.dir, "edge.log"), s.c.mesh, "edge", "-config", s.clusterConfig("edge", s.ctlHost, edgePort, adminPort))
	for i, h := range s.agentHosts {
		node := fmt.Sprintf("host%d", i)
		args := []string{"agent", "-config", s.clusterConfig(node, h, edgePort, adminPort)}
		s.agentArgs = append(s.agentArgs, args)
		s.agents = append(s.agents, h.start(r, "agent "+node, filepath.Join(s.dir, node+".log"), s.c.mesh, args...))
	}
	embPort, embAdminPort := s.embHost.port(r, 8080), s.embHost.port(r, 9090)
	s.embURL = "http://" + net.JoinHostPort(s.embHost.ip, fmt.Sprint(embPort))
	s.embAdmin = "http://" + net.JoinHostPort(s.embHost.ip, fmt.Sprint(embAdminPort))
	s.emb = s.embHost.start(r, "embedded", filepath.Join(s.dir, "emb.log"), s.c.mesh, "run", "-config", s.embeddedConfig(embPort, embAdminPort))

	want := len(s.agentHosts)
	for _, m := range []struct {
		what string
		sock string
		p    *proc
		apps map[string]int
	}{
		{"etcd fabric", s.sock("ctl"), s.ctl, map[string]int{latApp: want, foApp: 2}},
		{"embedded fabric", s.sock("emb"), s.emb, map[string]int{latApp: want}},
	} {
		if err := waitUntil(ctx, 90*time.Second, func() bool {
			if !m.p.alive() {
				r.Fatalf("%s: mesh exited while starting; its log is %s", m.what, m.p.log)
			}
			st, ok := status(ctx, m.sock)
			if !ok {
				return false
			}
			for app, n := range m.apps {
				if len(endpointsOf(st, app)) != n {
					return false
				}
			}
			return true
		}); err != nil {
			r.Fatalf("%s: apps not ready: %v (logs in %s)", m.what, err, s.dir)
		}
	}
}

// startEtcd runs one etcd member on each of three hosts.
func (s *setup) startEtcd(ctx context.Context) {
	r := s.r
	bin := etcdtest.Binary(r)
	type member struct {
		h            *host
		name         string
		client, peer string
	}
	var ms []member
	var initial []string
	for i := range 3 {
		h := s.net.addHost(fmt.Sprintf("etcd%d", i))
		s.etcdHosts = append(s.etcdHosts, h)
		m := member{h: h, name: fmt.Sprintf("m%d", i),
			client: "http://" + net.JoinHostPort(h.ip, fmt.Sprint(h.port(r, 2379))),
			peer:   "http://" + net.JoinHostPort(h.ip, fmt.Sprint(h.port(r, 2380)))}
		ms = append(ms, m)
		initial = append(initial, m.name+"="+m.peer)
		s.etcdURLs = append(s.etcdURLs, m.client)
	}
	for _, m := range ms {
		p := m.h.start(r, "etcd "+m.name, filepath.Join(s.dir, m.name+".etcd.log"), bin,
			"--name", m.name, "--data-dir", filepath.Join(s.dir, m.name+".etcd"),
			"--listen-client-urls", m.client, "--advertise-client-urls", m.client,
			"--listen-peer-urls", m.peer, "--initial-advertise-peer-urls", m.peer,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", filepath.Base(s.dir),
			"--heartbeat-interval", "50", "--election-timeout", "500", "--log-level", "warn")
		s.etcdPIDs = append(s.etcdPIDs, p.pid())
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: s.etcdURLs, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		r.Fatalf("etcd client: %v", err)
	}
	defer cli.Close()
	if err := waitUntil(ctx, 30*time.Second, func() bool {
		for _, u := range s.etcdURLs {
			c, cancel := context.WithTimeout(ctx, time.Second)
			st, err := cli.Status(c, u)
			cancel()
			if err != nil || st.Leader == 0 {
				return false
			}
		}
		return true
	}); err != nil {
		r.Fatalf("etcd cluster not healthy: %v (logs in %s)", err, s.dir)
	}
}

// cli runs a mesh command that ends on its own (keygen, pack).
func (s *setup) cli(args ...string) {
	out, err := exec.Command(s.c.mesh, args...).CombinedOutput()
	if err != nil {
		s.r.Fatalf("mesh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// pack packs the hello workload as app at version v.
func (s *setup) pack(app, v string) string {
	man := fmt.Sprintf(`{"identity":{"kind":"Spore","name":%q,"version":"%s.0.0"},
"runtime":{"command":"./binary","args":[],"env":{"HELLO_VERSION":"%s"}},
"resources":{"nutrients":{"cpu_milli":100,"memory_mb":64}},"slo":{"p99_budget_ms":50},
"security":{"lsm_profile":"","read_only_fs":false}}`, app, v, v)
	mf := filepath.Join(s.dir, app+"-"+v+".json")
	if err := os.WriteFile(mf, []byte(man), 0o644); err != nil {
		s.r.Fatalf("write manifest: %v", err)
	}
	out := filepath.Join(s.dir, app+"-"+v+".spore")
	s.cli("pack", "-binary", s.c.hello, "-manifest", mf, "-key", filepath.Join(s.dir, "dev.key"), "-out", out)
	return out
}

func (s *setup) sock(node string) string { return filepath.Join(s.dir, node, "control.sock") }

// common is the part of every mesh.hcl of the bench.
func (s *setup) common(node string) string {
	d := filepath.Join(s.dir, node)
	repoDir := filepath.Join(s.dir, "repo-cluster")
	if node == "emb" {
		repoDir = filepath.Join(s.dir, "repo-emb")
	}
	return fmt.Sprintf(`
data_dir = %q
run_dir  = %q
warmup   = "200ms"
grace    = "2s"
min_healthy = "0s"
trusted_keys = [%q]
repo { dir = %q }
control { socket = %q }
`, filepath.Join(d, "data"), filepath.Join(d, "run"), filepath.Join(s.dir, "dev.pub"),
		repoDir, s.sock(node))
}

// clusterConfig is the mesh.hcl of one process of the etcd fabric.
func (s *setup) clusterConfig(node string, h *host, edgePort, adminPort int) string {
	var eps []string
	for _, u := range s.etcdURLs {
		eps = append(eps, fmt.Sprintf("%q", u))
	}
	src := s.common(node) + fmt.Sprintf(`
edge {
  listen = %q
  admin  = %q
  upstream_timeout = "2s"
}
cluster {
  node      = %q
  advertise = %q
  etcd {
    endpoints    = [%s]
    lease_ttl    = %q
    dial_timeout = "2s"
  }
}
app %q {
  spore = %q
  min = %d
  max = %d
}
app %q {
  spore = %q
  min = 2
  max = 2
}
`, net.JoinHostPort(s.ctlHost.ip, fmt.Sprint(edgePort)), net.JoinHostPort(s.ctlHost.ip, fmt.Sprint(adminPort)),
		node, h.ip, strings.Join(eps, ", "), s.c.leaseTTL.String(),
		latApp, s.spores[latApp+"-v1"], len(s.agentHosts), len(s.agentHosts),
		foApp, s.spores[foApp+"-v1"])
	return s.write(node, src)
}

// embeddedConfig is the mesh.hcl of the `mesh run` with the embedded
// fabric: as many in-process agents as the cluster has agent hosts.
func (s *setup) embeddedConfig(edgePort, adminPort int) string {
	n := len(s.agentHosts)
	src := s.common("emb") + fmt.Sprintf(`
edge {
  listen = %q
  admin  = %q
  upstream_timeout = "2s"
}
agents { count = %d }
app %q {
  spore = %q
  min = %d
  max = %d
}
`, net.JoinHostPort(s.embHost.ip, fmt.Sprint(edgePort)), net.JoinHostPort(s.embHost.ip, fmt.Sprint(adminPort)),
		n, latApp, s.spores[latApp+"-v1"], n, n)
	return s.write("emb", src)
}

func (s *setup) write(node, src string) string {
	p := filepath.Join(s.dir, node+".hcl")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		s.r.Fatalf("write %s: %v", p, err)
	}
	return p
}

// status asks the control socket; ok is false while it does not answer.
func status(ctx context.Context, sock string) (mesh.Status, bool) {
	cl, err := mesh.NewClient("unix://"+sock, "")
	if err != nil {
		return mesh.Status{}, false
	}
	c, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, _, err := cl.Status(c)
	return st, err == nil
}

func endpointsOf(st mesh.Status, app string) []mesh.Endpoint {
	for _, a := range st.Apps {
		if a.Name == app {
			return a.Endpoints
		}
	}
	return nil
}

// waitUntil polls cond every few milliseconds until it holds, ctx ends or
// d passes.
func waitUntil(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollEvery):
		}
	}
	return nil
}

// pollEvery is how often a wait looks again: the resolution of every time
// the bench reports.
const pollEvery = 5 * time.Millisecond
