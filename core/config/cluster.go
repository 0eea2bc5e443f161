package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/mycelium-mesh/mesh/core/config/defaults"
)

// Cluster defaults, from the one table of defaults.
const (
	DefaultAdvertise       = defaults.Advertise
	DefaultEtcdPrefix      = defaults.EtcdPrefix
	DefaultEtcdLeaseTTL    = defaults.EtcdLeaseTTL
	DefaultEtcdDialTimeout = defaults.EtcdDialTimeout
)

// ClusterConfig is the cluster block: the fabric lives in etcd and is
// shared by the processes of every host, and this file names the host it
// runs on. Without the block (Config.Cluster nil) the fabric is embedded.
type ClusterConfig struct {
	// Node names this host. Agents' node IDs derive from it: the node
	// itself with the default single agent, "<node>-<id>" otherwise.
	Node string
	// Advertise is the IP address workloads of this host listen on and
	// that their endpoints carry, so edges on other hosts reach them.
	Advertise string
	Etcd      EtcdConfig
	DeclRange hcl.Range
}

// EtcdConfig is the etcd block of the cluster block.
type EtcdConfig struct {
	Endpoints   []string      // client URLs, http:// or https://
	Prefix      string        // key space of this fabric; ends in "/"
	LeaseTTL    time.Duration // endpoints and claims of a dead host expire after this
	DialTimeout time.Duration // each etcd request and connection attempt
	TLS         *EtcdTLS      // nil: plain connections (or the system roots for https)
}

// EtcdTLS is the tls block of the etcd block: absolute paths of PEM files.
type EtcdTLS struct {
	CAFile   string // CA bundle that signed the etcd servers' certificates; "" = system roots
	CertFile string // client certificate, with KeyFile; "" = none
	KeyFile  string
}

var (
	clusterSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "node"}, {Name: "advertise"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "etcd"}},
	}
	etcdSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "endpoints", Required: true}, {Name: "prefix"}, {Name: "lease_ttl"}, {Name: "dial_timeout"},
		},
		Blocks: []hcl.BlockHeaderSchema{{Type: "tls"}},
	}
	etcdTLSSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "ca_file"}, {Name: "cert_file"}, {Name: "key_file"},
	}}
)

// hostname is os.Hostname, replaced by tests.
var hostname = os.Hostname

// cluster decodes the cluster block into cfg.Cluster.
func (d *decoder) cluster(b *hcl.Block, cfg *Config) {
	cl := &ClusterConfig{
		Advertise: DefaultAdvertise,
		Etcd:      EtcdConfig{Prefix: DefaultEtcdPrefix, LeaseTTL: DefaultEtcdLeaseTTL, DialTimeout: DefaultEtcdDialTimeout},
		DeclRange: b.DefRange,
	}
	cfg.Cluster = cl
	c := d.content(b.Body, clusterSchema)
	if c == nil {
		return
	}
	a := c.Attributes
	if rng, ok := d.str(a, "node", &cl.Node); ok {
		if !validName(cl.Node) {
			d.errorf(rng, "Invalid node name", "node %q must start with a letter or digit and contain only letters, digits, '.', '_' and '-' (at most 63 characters).", cl.Node)
		}
	} else if _, present := a["node"]; !present {
		h, err := hostname()
		h, _, _ = strings.Cut(h, ".")
		if err != nil || !validName(h) {
			d.errorf(b.DefRange, "Missing node name", "This host's name (%q) cannot name a node; set node = \"host-a\" in the cluster block.", h)
		}
		cl.Node = h
	}
	if rng, ok := d.str(a, "advertise", &cl.Advertise); ok {
		ip := net.ParseIP(cl.Advertise)
		switch {
		case ip == nil:
			d.errorf(rng, "Invalid advertise address", "advertise must be an IP address of this host, such as \"10.0.0.2\"; got %q.", cl.Advertise)
		case ip.IsUnspecified():
			d.errorf(rng, "Invalid advertise address", "advertise %q is no address of this host: edges connect to it, so name the address of one interface.", cl.Advertise)
		}
	}
	var etcdBlock *hcl.Block
	for _, eb := range c.Blocks {
		if etcdBlock != nil {
			d.errorf(eb.DefRange, "Duplicate etcd block", "Only one etcd block is allowed; another one was declared at %s.", at(etcdBlock.DefRange))
			continue
		}
		etcdBlock = eb
	}
	if etcdBlock == nil {
		d.errorf(b.DefRange, "Missing etcd block", "A cluster keeps its fabric in etcd: add etcd { endpoints = [\"http://10.0.0.1:2379\"] } to the cluster block.")
		return
	}
	d.etcd(etcdBlock, &cl.Etcd)
	if ip := net.ParseIP(cl.Advertise); ip != nil && ip.IsLoopback() && !allLoopback(cl.Etcd.Endpoints) {
		rng := b.DefRange
		if at, ok := a["advertise"]; ok {
			rng = at.Expr.Range()
		}
		d.warnf(rng, "Loopback advertise address", "This host's endpoints will carry %s while etcd is on other hosts: edges elsewhere cannot reach its workloads. Set advertise to this host's address.", cl.Advertise)
	}
}

func (d *decoder) etcd(b *hcl.Block, e *EtcdConfig) {
	c := d.content(b.Body, etcdSchema)
	if c == nil {
		return
	}
	a := c.Attributes
	var eps []string
	if d.strList(a, "endpoints", &eps) {
		if len(eps) == 0 {
			d.errorf(a["endpoints"].Expr.Range(), "No etcd endpoints", "endpoints must name at least one etcd client URL, such as \"http://10.0.0.1:2379\".")
		}
		for i, ep := range eps {
			if err := checkEtcdURL(ep); err != nil {
				d.errorf(d.listElem(a["endpoints"], i), "Invalid etcd endpoint", "Element %d of endpoints, %q: %s.", i, ep, err)
				continue
			}
			e.Endpoints = append(e.Endpoints, ep)
		}
	}
	if rng, ok := d.str(a, "prefix", &e.Prefix); ok {
		if !strings.HasPrefix(e.Prefix, "/") || strings.ContainsAny(e.Prefix, " \t\r\n\x00") {
			d.errorf(rng, "Invalid etcd prefix", "prefix must start with \"/\" and hold no spaces, such as \"/mesh/\"; got %q.", e.Prefix)
		} else if !strings.HasSuffix(e.Prefix, "/") {
			e.Prefix += "/"
		}
	}
	d.duration(a, "lease_ttl", &e.LeaseTTL, true)
	if at, ok := a["lease_ttl"]; ok && e.LeaseTTL > 0 && e.LeaseTTL < time.Second {
		d.errorf(at.Expr.Range(), "Lease TTL too short", "lease_ttl must be at least 1s (etcd counts leases in seconds); got %s.", e.LeaseTTL)
	}
	d.duration(a, "dial_timeout", &e.DialTimeout, true)
	var tlsBlock *hcl.Block
	for _, tb := range c.Blocks {
		if tlsBlock != nil {
			d.errorf(tb.DefRange, "Duplicate tls block", "Only one tls block is allowed; another one was declared at %s.", at(tlsBlock.DefRange))
			continue
		}
		tlsBlock = tb
	}
	if tlsBlock != nil {
		d.etcdTLS(tlsBlock, e)
	}
}

func (d *decoder) etcdTLS(b *hcl.Block, e *EtcdConfig) {
	c := d.content(b.Body, etcdTLSSchema)
	if c == nil {
		return
	}
	t := &EtcdTLS{}
	a := c.Attributes
	for _, f := range []struct {
		name string
		dst  *string
	}{{"ca_file", &t.CAFile}, {"cert_file", &t.CertFile}, {"key_file", &t.KeyFile}} {
		rng, ok := d.path(a, f.name, f.dst, false)
		if !ok {
			continue
		}
		if st, err := os.Stat(*f.dst); err != nil {
			d.errorf(rng, "TLS file not found", "%s.", err)
		} else if !st.Mode().IsRegular() {
			d.errorf(rng, "Invalid TLS file", "%s is not a regular file.", *f.dst)
		}
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		d.errorf(b.DefRange, "Incomplete client certificate", "cert_file and key_file go together: set both for a client certificate, or neither.")
	}
	e.TLS = t
}

// strList decodes a list of strings attribute into dst.
func (d *decoder) strList(attrs hcl.Attributes, name string, dst *[]string) bool {
	v, _, ok := d.value(attrs, name, cty.List(cty.String))
	if !ok {
		return false
	}
	for i, ev := range v.AsValueSlice() {
		if ev.IsNull() {
			d.errorf(d.listElem(attrs[name], i), "Null list element", "Element %d of %s is null.", i, name)
			return false
		}
		*dst = append(*dst, ev.AsString())
	}
	return true
}

// listElem is the range of element i of a list attribute written
// literally, else the whole expression's.
func (d *decoder) listElem(a *hcl.Attribute, i int) hcl.Range {
	if elems, diags := hcl.ExprList(a.Expr); !diags.HasErrors() && i < len(elems) {
		return elems[i].Range()
	}
	return a.Expr.Range()
}

// checkEtcdURL checks an etcd client URL: http or https, a host and a port.
func checkEtcdURL(s string) error {
	if !strings.Contains(s, "://") {
		return fmt.Errorf("it needs a scheme (write \"http://%s\")", s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme must be http or https (write \"http://10.0.0.1:2379\")")
	}
	if u.Host == "" || u.Port() == "" {
		return fmt.Errorf("it needs a host and a port (write \"http://10.0.0.1:2379\")")
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("it must be scheme://host:port only")
	}
	return nil
}

// allLoopback reports whether every etcd URL names a loopback host.
func allLoopback(eps []string) bool {
	for _, ep := range eps {
		u, err := url.Parse(ep)
		if err != nil || !IsLoopback(u.Host) {
			return false
		}
	}
	return true
}

// clusterNodeIDs derives the agents' node IDs of a host in a cluster: the
// node name alone for the single default agent, else "<node>-<id>" for each
// declared or counted one, so IDs are unique across hosts. An agents block
// that only sets other attributes (adopt, health_timeout, ...) keeps the
// single default agent.
func (d *decoder) clusterNodeIDs(cfg *Config, agentsBlock *hcl.Block) {
	cl := cfg.Cluster
	if cl == nil || cl.Node == "" {
		return
	}
	if agentsBlock == nil || !d.agentsDeclared {
		cfg.Agents.Count = defaults.ClusterAgentCount
		cfg.Agents.NodeIDs = []string{cl.Node}
		return
	}
	ids := make([]string, 0, len(cfg.Agents.NodeIDs))
	for _, id := range cfg.Agents.NodeIDs {
		full := cl.Node + "-" + id
		if !validName(full) {
			d.errorf(agentsBlock.DefRange, "Node ID too long", "In a cluster each agent's node ID is \"<node>-<id>\"; %q is longer than 63 characters or malformed: shorten the cluster's node name.", full)
			return
		}
		ids = append(ids, full)
	}
	cfg.Agents.NodeIDs = ids
}
