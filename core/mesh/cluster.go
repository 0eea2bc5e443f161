package mesh

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/mycelium-mesh/mesh/core/config"
	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/fabric/etcd"
	"github.com/mycelium-mesh/mesh/core/rollout"
)

// Role is a part of a mesh that a process runs. `mesh run` runs all of
// them in one process; in a cluster (a cluster block in mesh.hcl) they may
// run apart: `mesh agent` runs the agents of its host, `mesh edge` an edge,
// and `mesh run -roles control` the control process alone.
type Role uint8

// The roles of a mesh process.
const (
	// RoleControl applies the file's apps, serves the control API (deploy,
	// status, reload) and follows rollouts. A fabric has one control
	// process: rollout history lives in its data_dir.
	RoleControl Role = 1 << iota
	// RoleAgents runs the agents (nodes) of this host.
	RoleAgents
	// RoleEdge runs the HTTP edge; any number of edges may share a fabric.
	RoleEdge

	// RoleAll is every role in one process, what `mesh run` does.
	RoleAll = RoleControl | RoleAgents | RoleEdge
)

var roleNames = []struct {
	role Role
	name string
}{{RoleControl, "control"}, {RoleAgents, "agents"}, {RoleEdge, "edge"}}

// ParseRoles reads a comma-separated list of roles ("control,edge"); "all"
// is every role.
func ParseRoles(s string) (Role, error) {
	var r Role
	for _, w := range strings.Split(s, ",") {
		w = strings.TrimSpace(w)
		if w == "all" {
			r |= RoleAll
			continue
		}
		found := false
		for _, rn := range roleNames {
			if w == rn.name || w+"s" == rn.name {
				r |= rn.role
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown role %q: the roles are control, agents, edge and all", w)
		}
	}
	return r, nil
}

// String lists the roles, comma-separated.
func (r Role) String() string {
	var names []string
	for _, rn := range roleNames {
		if r&rn.role != 0 {
			names = append(names, rn.name)
		}
	}
	return strings.Join(names, ",")
}

// roles returns the roles this mesh runs.
func (m *Mesh) roles() Role {
	if m.opts.Roles == 0 {
		return RoleAll
	}
	return m.opts.Roles
}

// has reports whether this mesh runs role r.
func (m *Mesh) has(r Role) bool { return m.roles()&r != 0 }

// checkRoles refuses role sets that cannot work: anything but every role
// needs a cluster, whose fabric the processes share. Zero is every role.
func checkRoles(cfg *config.Config, r Role) error {
	if r == 0 || r == RoleAll {
		return nil
	}
	if cfg.Cluster == nil {
		return fmt.Errorf("running only %s needs a cluster block in %s: without one the fabric lives inside a single `mesh run` process", r, cfg.File)
	}
	return nil
}

// openClusterFabric opens the etcd fabric of cfg's cluster block, waiting
// for etcd (and saying so every second) until ctx ends.
func openClusterFabric(ctx context.Context, cfg *config.Config, m *Mesh) (fabric.Store, error) {
	cl := cfg.Cluster
	tlsCfg, err := etcdTLS(cl.Etcd)
	if err != nil {
		return nil, err
	}
	st, err := etcd.Open(ctx, etcd.Options{
		Endpoints: cl.Etcd.Endpoints,
		TLS:       tlsCfg,
		Prefix:    cl.Etcd.Prefix,
		LeaseTTL:  cl.Etcd.LeaseTTL,
		OpTimeout: cl.Etcd.DialTimeout,
		Logger:    m.log.Named("fabric"),
	})
	if err != nil {
		return nil, fmt.Errorf("open cluster fabric: %w", err)
	}
	m.log.Info("cluster fabric open", "node", cl.Node, "advertise", cl.Advertise,
		"etcd", strings.Join(cl.Etcd.Endpoints, ","), "prefix", cl.Etcd.Prefix, "lease_ttl", cl.Etcd.LeaseTTL)
	return st, nil
}

// etcdTLS builds the client TLS configuration of the etcd block; nil when
// the block has no tls block and no https endpoint.
func etcdTLS(e config.EtcdConfig) (*tls.Config, error) {
	https := false
	for _, ep := range e.Endpoints {
		https = https || strings.HasPrefix(ep, "https://")
	}
	if e.TLS == nil && !https {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if e.TLS == nil {
		return c, nil
	}
	if e.TLS.CAFile != "" {
		pem, err := os.ReadFile(e.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("etcd tls: read ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd tls: ca_file %s holds no PEM certificate", e.TLS.CAFile)
		}
		c.RootCAs = pool
	}
	if e.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(e.TLS.CertFile, e.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("etcd tls: load client certificate %s: %w", e.TLS.CertFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// agentHost is the address this host's workloads listen on and advertise.
func agentHost(cfg *config.Config) string {
	if cfg.Cluster != nil {
		return cfg.Cluster.Advertise
	}
	return ""
}

// clusterDesired is how many ready instances of plan p a clustered mesh
// aims for. The control process does not know how many agents the cluster
// has: the plan's Max (or the budget's MaxInstances) when one is set, else
// the instances claimed, but never fewer than Min.
func (m *Mesh) clusterDesired(p fabric.Plan) int {
	n := p.Max
	if b, ok := m.fabric.GetBudget(p.AppName); ok && b.MaxInstances > 0 && (n == 0 || b.MaxInstances < n) {
		n = b.MaxInstances
	}
	if n == 0 {
		n = m.fabric.Usage(p.AppName).Instances
	}
	return max(n, p.Min)
}

// observeCluster is observe for a clustered mesh: instances on other hosts
// are seen through their endpoints, which carry the digest they serve, and
// their failed starts through the agents' reports in the fabric (those at
// or after since, by the reporting agent's clock). An endpoint counts as
// ready since the control process first saw it. Instances still starting
// are not seen: one host's failure judges the step broken even while
// another host is still starting the version.
func (m *Mesh) observeCluster(app, digest string, since time.Time) rollout.Observation {
	var o rollout.Observation
	if p, ok := m.fabric.Plan(app); ok {
		o.Progress.Desired = m.clusterDesired(p)
	}
	now := time.Now()
	eps := m.fabric.Endpoints(app)
	m.seenMu.Lock()
	if m.seen == nil {
		m.seen = map[string]time.Time{}
	}
	live := map[string]bool{}
	for _, ep := range eps {
		if ep.Digest != digest {
			o.ReadyOther++
			continue
		}
		key := ep.NodeID + "\x00" + ep.URL + "\x00" + ep.Digest
		live[key] = true
		since, ok := m.seen[app+"\x00"+key]
		if !ok {
			since = now
			m.seen[app+"\x00"+key] = now
		}
		o.Progress.Ready++
		o.Progress.Healthy++
		o.ReadySince = append(o.ReadySince, since)
	}
	for k := range m.seen {
		if a, key, _ := strings.Cut(k, "\x00"); a == app && !live[key] {
			delete(m.seen, k)
		}
	}
	m.seenMu.Unlock()
	sort.Slice(o.ReadySince, func(i, j int) bool { return o.ReadySince[i].Before(o.ReadySince[j]) })
	for _, f := range m.fabric.StartFailures(app) {
		if f.Digest == digest && !f.At.Before(since) {
			o.Failures = append(o.Failures, fmt.Sprintf("%s: %s", f.NodeID, f.Reason))
		}
	}
	o.Claimed = m.fabric.Usage(app).Instances
	return o
}

// clusterReady counts the endpoints of app that serve digest.
func clusterReady(eps []fabric.Endpoint, digest string) int {
	n := 0
	for _, ep := range eps {
		if ep.Digest == digest {
			n++
		}
	}
	return n
}

// clusterSummary words a cluster block for a reload's restart notes: "none"
// without one. Every part of it is fixed while the mesh runs.
func clusterSummary(c *config.ClusterConfig) string {
	if c == nil {
		return "none"
	}
	tlsFiles := "no tls"
	if t := c.Etcd.TLS; t != nil {
		tlsFiles = fmt.Sprintf("tls ca=%s cert=%s key=%s", t.CAFile, t.CertFile, t.KeyFile)
	}
	return fmt.Sprintf("node=%s advertise=%s etcd=%s prefix=%s lease_ttl=%s dial_timeout=%s %s",
		c.Node, c.Advertise, strings.Join(c.Etcd.Endpoints, ","), c.Etcd.Prefix, c.Etcd.LeaseTTL, c.Etcd.DialTimeout, tlsFiles)
}
