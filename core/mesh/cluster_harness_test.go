package mesh_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/mycelium-mesh/mesh/core/mesh"
	"github.com/mycelium-mesh/mesh/internal/etcdtest"
	"github.com/mycelium-mesh/mesh/internal/netnstest"
)

// A cluster of hosts for the multi-host tests: each host a network
// namespace on a private bridge (package netnstest), a real three-member
// etcd cluster with one member per host, an agent process (`mesh agent`)
// on each of three hosts, the control process (`mesh run -roles control`)
// and an edge (`mesh edge`) on a fourth, and clients on a fifth that reach
// the apps through the edge only. Every process has its own data, run and
// repo directories: agents fetch spores from the control process's TCP
// listener with the bundled http repo backend, and adopt their workloads
// when they restart.

// clusterLeaseTTL is the fabric lease of every mesh process: a lost host's
// endpoints and claims expire after it.
const clusterLeaseTTL = 2 * time.Second

// clusterToken is the control token of the harness's control process;
// agents send it to fetch spores (clusterTokenFile).
const clusterToken = "cluster-harness-control-token"

// clusterControlPort is the control process's TCP listener, on the edge
// host's address, where agents on the other hosts fetch spores.
const clusterControlPort = "7070"

// repoBlock is a repo directory shared by every process of a test: the
// loopback roles test runs them all on this machine's filesystem.
func repoBlock(dir string) string {
	return fmt.Sprintf("repo { dir = %q }\n", filepath.Join(dir, "repo"))
}

// hostRepoBlock is the repo of one process of the namespace harness: its
// own directory, and for an agent the bundled http backend against the
// control process on another host, so spores cross hosts over the network
// as they do between machines.
func (c *clusterEnv) hostRepoBlock(node, role string) string {
	dir := filepath.Join(c.dir, node, "repo")
	if role != "agent" {
		return fmt.Sprintf("repo { dir = %q }\n", dir)
	}
	return fmt.Sprintf("repo {\n  dir = %q\n  backend = \"http\"\n  url = %q\n  token_file = %q\n}\n",
		dir, "http://"+c.controlAddr(), filepath.Join(c.dir, "control.token"))
}

// controlAddr is the control process's TCP listener.
func (c *clusterEnv) controlAddr() string { return net.JoinHostPort(c.edgeH.IP, clusterControlPort) }

// controlBlock is the control block of a process: a unix socket, and for
// the control process a TCP listener off loopback with the token.
func (c *clusterEnv) controlBlock(node, role string) string {
	sock := filepath.Join(c.dir, node, "control.sock")
	if role != "control" {
		return fmt.Sprintf("control { socket = %q }\n", sock)
	}
	return fmt.Sprintf("control {\n  socket = %q\n  listen = %q\n  token  = %q\n}\n", sock, c.controlAddr(), clusterToken)
}

type clusterEnv struct {
	t      *testing.T
	dir    string
	net    *netnstest.Net
	etcd   []*etcdMember
	agents []*meshProc // one per agent host, in the order of agentHosts
	hosts  []*netnstest.Host
	edgeH  *netnstest.Host
	client *netnstest.Host
	ctl    *meshProc
	edge   *meshProc
	spores map[string]string // "billing-v1" -> spore file
}

type etcdMember struct {
	host   *netnstest.Host
	name   string
	client string // client URL
	args   []string
	log    string
	proc   *netnstest.Proc
}

type meshProc struct {
	t    *testing.T // the whole test, whose end stops the process
	host *netnstest.Host
	node string
	args []string
	logs *syncBuffer
	proc *netnstest.Proc
}

// newClusterEnv builds the hosts, starts etcd, the control process, the
// edge and the agents, and waits until both apps serve through the edge.
func newClusterEnv(t *testing.T) *clusterEnv {
	t.Helper()
	n := netnstest.New(t)
	c := &clusterEnv{t: t, dir: t.TempDir(), net: n, spores: map[string]string{}}
	runCLI(t, "keygen", "-out", filepath.Join(c.dir, "dev"))
	for _, app := range []string{"billing", "web"} {
		for _, v := range []string{"v1", "v2", "v3"} {
			c.spores[app+"-"+v] = packApp(t, c.dir, app, v)
		}
	}
	c.spores["billing-broken"] = packApp(t, c.dir, "billing", "v9", `"HELLO_HEALTH":"fail"`)
	// Signed by a key only the control process trusts (trustedKeys).
	runCLI(t, "keygen", "-out", filepath.Join(c.dir, "other"))
	c.spores["billing-other"] = packAppKey(t, c.dir, "other", "billing", "v8")
	var initial []string
	for i := range 3 {
		h := n.AddHost(fmt.Sprintf("etcd%d", i))
		m := &etcdMember{host: h, name: fmt.Sprintf("m%d", i), client: "http://" + net.JoinHostPort(h.IP, "2379")}
		initial = append(initial, m.name+"=http://"+net.JoinHostPort(h.IP, "2380"))
		c.etcd = append(c.etcd, m)
	}
	for _, m := range c.etcd {
		m.log = filepath.Join(c.dir, m.name+".etcd.log")
		m.args = []string{
			"--name", m.name, "--data-dir", filepath.Join(c.dir, m.name+".etcd"),
			"--listen-client-urls", m.client, "--advertise-client-urls", m.client,
			"--listen-peer-urls", "http://" + net.JoinHostPort(m.host.IP, "2380"),
			"--initial-advertise-peer-urls", "http://" + net.JoinHostPort(m.host.IP, "2380"),
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", filepath.Base(c.dir),
			"--heartbeat-interval", "50", "--election-timeout", "500", "--log-level", "warn",
		}
		m.start(t)
	}
	for i := range 3 {
		c.hosts = append(c.hosts, n.AddHost(fmt.Sprintf("agent%d", i)))
	}
	c.edgeH = n.AddHost("edge")
	c.client = n.AddHost("client")

	if err := os.WriteFile(filepath.Join(c.dir, "control.token"), []byte(clusterToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.ctl = c.startMesh(c.edgeH, "ctl", "run", "-roles", "control")
	c.edge = c.startMesh(c.edgeH, "edge", "edge")
	for i, h := range c.hosts {
		c.agents = append(c.agents, c.startMesh(h, fmt.Sprintf("host%d", i), "agent"))
	}
	c.waitFor(60*time.Second, "both apps serving through the edge from the client host", func() bool {
		st, ok := c.status()
		return ok && len(endpointsOf(st, "billing")) == 2 && len(endpointsOf(st, "web")) == 3 &&
			c.get("billing") == nil && c.get("web") == nil
	})
	return c
}

func (m *etcdMember) start(t *testing.T) {
	logf, err := os.OpenFile(m.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := m.host.Command(etcdtest.Binary(t), m.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	m.proc = m.host.Start(cmd)
	go func() { <-m.proc.Exited(); logf.Close() }()
}

// packApp packs the hello workload as app at version v, signed with the
// dev key; env are more entries of its environment, as JSON members
// ("HELLO_HEALTH":"fail").
func packApp(t *testing.T, dir, app, v string, env ...string) string {
	return packAppKey(t, dir, "dev", app, v, env...)
}

// packAppKey is packApp signed with <dir>/<key>.key.
func packAppKey(t *testing.T, dir, key, app, v string, env ...string) string {
	extra := ""
	for _, e := range env {
		extra += "," + e
	}
	man := fmt.Sprintf(`{"identity":{"kind":"Spore","name":%q,"version":"%s.0.0"},
"runtime":{"command":"./binary","args":[],"env":{"HELLO_VERSION":"%s"%s}},
"resources":{"nutrients":{"cpu_milli":100,"memory_mb":64}},"slo":{"p99_budget_ms":50},
"security":{"lsm_profile":"","read_only_fs":false}}`, app, v, v, extra)
	mf := filepath.Join(dir, app+"-"+v+".json")
	if err := os.WriteFile(mf, []byte(man), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, app+"-"+v+".spore")
	runCLI(t, "pack", "-binary", helloBn, "-manifest", mf, "-key", filepath.Join(dir, key+".key"), "-out", out)
	return out
}

// trustedKeys is a process's trusted_keys: the dev key, and for the
// control process the other key too, so that it accepts spores the agents
// must refuse.
func (c *clusterEnv) trustedKeys(role string) string {
	keys := fmt.Sprintf("%q", filepath.Join(c.dir, "dev.pub"))
	if role == "control" {
		keys += fmt.Sprintf(", %q", filepath.Join(c.dir, "other.pub"))
	}
	return keys
}

// config is the mesh.hcl of one process: its own directories and repo,
// this host's address, etcd, and the apps. role is "control", "edge" or
// "agent".
func (c *clusterEnv) config(h *netnstest.Host, node, role string) string {
	d := filepath.Join(c.dir, node)
	var eps []string
	for _, m := range c.etcd {
		eps = append(eps, fmt.Sprintf("%q", m.client))
	}
	cfg := fmt.Sprintf(`
data_dir = %q
run_dir  = %q
warmup   = "300ms"
grace    = "2s"
min_healthy = "0s"
trusted_keys = [%s]
%s
%s
edge {
  listen = %q
  admin  = ""
  upstream_timeout = "2s"
}
agents {
  adopt          = true
  health_timeout = "3s"
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
app "billing" {
  spore = %q
  min = 2
  max = 2
}
app "web" {
  spore = %q
  min = 3
  max = 3
}
`, filepath.Join(d, "data"), filepath.Join(d, "run"), c.trustedKeys(role), c.hostRepoBlock(node, role),
		c.controlBlock(node, role), net.JoinHostPort(c.edgeH.IP, "8080"), node, h.IP,
		strings.Join(eps, ", "), clusterLeaseTTL.String(), c.spores["billing-v1"], c.spores["web-v1"])
	p := filepath.Join(c.dir, node+".hcl")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		c.t.Fatal(err)
	}
	return p
}

// startMesh runs `mesh ARGS -config <node>.hcl` on host h.
func (c *clusterEnv) startMesh(h *netnstest.Host, node string, args ...string) *meshProc {
	c.t.Helper()
	role := args[0] // "agent", "edge", or "run -roles control"
	if role == "run" {
		role = "control"
	}
	p := &meshProc{t: c.t, host: h, node: node, args: append(args, "-config", c.config(h, node, role))}
	p.start()
	return p
}

// start runs the process (again); it is stopped when the whole test ends.
func (p *meshProc) start() {
	t := p.t
	t.Helper()
	p.logs = &syncBuffer{}
	cmd := p.host.Command(meshBin, p.args...)
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	p.proc = p.host.Start(cmd)
	t.Cleanup(func() {
		if !p.proc.Stop(20 * time.Second) {
			t.Errorf("mesh %s on %s did not stop within 20s of SIGTERM", p.args[0], p.host.Name)
		}
		if t.Failed() {
			t.Logf("mesh %s (%s) logs:\n%s", p.args[0], p.node, p.logs.String())
		}
	})
}

func (c *clusterEnv) controlClient() *mesh.Client {
	cl, err := mesh.NewClient("unix://"+filepath.Join(c.dir, "ctl", "control.sock"), "")
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// status asks the control process; ok is false while it does not answer.
func (c *clusterEnv) status() (mesh.Status, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, _, err := c.controlClient().Status(ctx)
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

// hostsOf returns the addresses app's endpoints are on.
func hostsOf(eps []mesh.Endpoint) []string {
	var out []string
	for _, ep := range eps {
		out = append(out, strings.TrimPrefix(strings.Split(strings.TrimPrefix(ep.URL, "http://"), ":")[0], "["))
	}
	sort.Strings(out)
	return out
}

// clientHTTP is an HTTP client on the client host.
func (c *clusterEnv) clientHTTP(conns int) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: c.client.DialContext, MaxIdleConnsPerHost: conns,
	}}
}

// get fetches /app/hello through the edge from the client host.
func (c *clusterEnv) get(app string) error {
	resp, err := c.clientHTTP(1).Get(c.appURL(app))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}

func (c *clusterEnv) appURL(app string) string {
	return "http://" + net.JoinHostPort(c.edgeH.IP, "8080") + "/" + app + "/hello"
}

func (c *clusterEnv) waitFor(d time.Duration, what string, cond func() bool) time.Duration {
	c.t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			c.t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
	return time.Since(start)
}

// etcdLeader returns the member that leads now.
func (c *clusterEnv) etcdLeader() *etcdMember {
	c.t.Helper()
	var eps []string
	for _, m := range c.etcd {
		eps = append(eps, m.client)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		c.t.Fatal(err)
	}
	defer cli.Close()
	var leader *etcdMember
	c.waitFor(10*time.Second, "an etcd leader", func() bool {
		for _, m := range c.etcd {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			st, err := cli.Status(ctx, m.client)
			cancel()
			if err == nil && st.Leader != 0 && st.Header.MemberId == st.Leader {
				leader = m
				return true
			}
		}
		return false
	})
	return leader
}

// hostLoad is continuous load from the client host through the edge.
type hostLoad struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	firstErr   string
	lastFail   time.Time
	versions   map[string]int
	stop       chan struct{}
	wg         sync.WaitGroup
}

func (c *clusterEnv) startLoad(app string, clients int) *hostLoad {
	l := &hostLoad{stop: make(chan struct{}), versions: map[string]int{}}
	hc := c.clientHTTP(clients)
	url := c.appURL(app)
	for range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				resp, err := hc.Get(url)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("%s", resp.Status)
					}
				}
				l.mu.Lock()
				if err != nil {
					l.failed.Add(1)
					l.lastFail = time.Now()
					if l.firstErr == "" {
						l.firstErr = err.Error()
					}
				} else {
					l.ok.Add(1)
					l.versions[resp.Header.Get("X-Hello-Version")]++
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// take returns the counts since the last take and resets them.
func (l *hostLoad) take() (ok, failed int64, firstErr string, lastFail time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ok, failed, firstErr, lastFail = l.ok.Swap(0), l.failed.Swap(0), l.firstErr, l.lastFail
	l.firstErr, l.lastFail = "", time.Time{}
	return
}

func (l *hostLoad) finish() {
	close(l.stop)
	l.wg.Wait()
}
