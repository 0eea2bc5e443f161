package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

func hasSummary(diags hcl.Diagnostics, s string) bool {
	for _, d := range diags {
		if strings.Contains(d.Summary, s) {
			return true
		}
	}
	return false
}

// TestCluster: the cluster block's defaults, node IDs derived from the
// node name, and each mistake reported on the line that holds it.
func TestCluster(t *testing.T) {
	etcd := "  etcd { endpoints = [\"http://10.0.0.1:2379\", \"https://10.0.0.2:2379\"] }\n"
	tests := []struct {
		name  string
		src   string
		check func(t *testing.T, c *Config)
		err   string // substring of the error
		line  int    // line of the error, when err is set
		warn  string // substring of a warning
	}{
		{name: "absent: embedded fabric, agents unchanged", src: "", check: func(t *testing.T, c *Config) {
			if c.Cluster != nil || !reflect.DeepEqual(c.Agents.NodeIDs, []string{"n1", "n2", "n3"}) {
				t.Fatalf("cluster %+v nodes %v", c.Cluster, c.Agents.NodeIDs)
			}
		}},
		{name: "defaults", src: "cluster {\n  node = \"host-a\"\n  advertise = \"10.0.0.5\"\n" + etcd + "}\n", check: func(t *testing.T, c *Config) {
			cl := c.Cluster
			if cl.Node != "host-a" || cl.Advertise != "10.0.0.5" || cl.Etcd.Prefix != DefaultEtcdPrefix ||
				cl.Etcd.LeaseTTL != DefaultEtcdLeaseTTL || cl.Etcd.DialTimeout != DefaultEtcdDialTimeout || cl.Etcd.TLS != nil {
				t.Fatalf("%+v", cl)
			}
			if len(cl.Etcd.Endpoints) != 2 {
				t.Fatalf("endpoints %v", cl.Etcd.Endpoints)
			}
			if !reflect.DeepEqual(c.Agents.NodeIDs, []string{"host-a"}) || c.Agents.Count != 1 {
				t.Fatalf("nodes %v count %d", c.Agents.NodeIDs, c.Agents.Count)
			}
		}},
		{name: "settings", src: "cluster {\n  node = \"h\"\n  advertise = \"10.0.0.5\"\n  etcd {\n    endpoints = [\"http://e:2379\"]\n    prefix = \"/prod\"\n    lease_ttl = \"3s\"\n    dial_timeout = \"2s\"\n  }\n}\n", check: func(t *testing.T, c *Config) {
			e := c.Cluster.Etcd
			if e.Prefix != "/prod/" || e.LeaseTTL != 3*time.Second || e.DialTimeout != 2*time.Second {
				t.Fatalf("%+v", e)
			}
		}},
		{name: "counted agents are host-qualified", src: "agents { count = 2 }\ncluster {\n  node = \"h\"\n  advertise = \"10.0.0.5\"\n" + etcd + "}\n", check: func(t *testing.T, c *Config) {
			if !reflect.DeepEqual(c.Agents.NodeIDs, []string{"h-n1", "h-n2"}) {
				t.Fatalf("nodes %v", c.Agents.NodeIDs)
			}
		}},
		{name: "agents block without count keeps one agent per host", src: "agents {\n  adopt = true\n  health_timeout = \"5s\"\n}\ncluster {\n  node = \"h\"\n  advertise = \"10.0.0.5\"\n" + etcd + "}\n", check: func(t *testing.T, c *Config) {
			if !reflect.DeepEqual(c.Agents.NodeIDs, []string{"h"}) || c.Agents.Count != 1 || !c.Agents.Adopt {
				t.Fatalf("nodes %v, count %d, adopt %v", c.Agents.NodeIDs, c.Agents.Count, c.Agents.Adopt)
			}
		}},
		{name: "declared agents are host-qualified", src: "agents {\n  node \"x\" {}\n}\ncluster {\n  node = \"h\"\n  advertise = \"10.0.0.5\"\n" + etcd + "}\n", check: func(t *testing.T, c *Config) {
			if !reflect.DeepEqual(c.Agents.NodeIDs, []string{"h-x"}) {
				t.Fatalf("nodes %v", c.Agents.NodeIDs)
			}
		}},
		{name: "node defaults to the host name", src: "cluster {\n  advertise = \"10.0.0.5\"\n" + etcd + "}\n", check: func(t *testing.T, c *Config) {
			if c.Cluster.Node != "testhost" {
				t.Fatalf("node %q", c.Cluster.Node)
			}
		}},
		{name: "loopback advertise with remote etcd warns", src: "cluster {\n  node = \"h\"\n" + etcd + "}\n", warn: "Loopback advertise"},
		{name: "loopback everything is quiet", src: "cluster {\n  node = \"h\"\n  etcd { endpoints = [\"http://127.0.0.1:2379\"] }\n}\n", check: func(t *testing.T, c *Config) {
			if c.Cluster.Advertise != "127.0.0.1" {
				t.Fatalf("advertise %q", c.Cluster.Advertise)
			}
		}},
		{name: "missing etcd block", src: "cluster {\n  node = \"h\"\n}\n", err: "Missing etcd block", line: 1},
		{name: "missing endpoints", src: "cluster {\n  node = \"h\"\n  etcd {\n  }\n}\n", err: "endpoints", line: 3},
		{name: "empty endpoints", src: "cluster {\n  node = \"h\"\n  etcd {\n    endpoints = []\n  }\n}\n", err: "No etcd endpoints", line: 4},
		{name: "bad endpoint scheme", src: "cluster {\n  node = \"h\"\n  etcd {\n    endpoints = [\"http://a:1\",\n      \"10.0.0.1:2379\"]\n  }\n}\n", err: "Invalid etcd endpoint", line: 5},
		{name: "endpoint without scheme", src: "cluster {\n  node = \"h\"\n  etcd { endpoints = [\"10.0.0.1:2379\"] }\n}\n", err: "needs a scheme", line: 3},
		{name: "endpoint without port", src: "cluster {\n  node = \"h\"\n  etcd { endpoints = [\"http://a\"] }\n}\n", err: "host and a port", line: 3},
		{name: "bad node name", src: "cluster {\n  node = \"a/b\"\n" + etcd + "}\n", err: "Invalid node name", line: 2},
		{name: "advertise not an IP", src: "cluster {\n  node = \"h\"\n  advertise = \"host-a\"\n" + etcd + "}\n", err: "Invalid advertise address", line: 3},
		{name: "advertise unspecified", src: "cluster {\n  node = \"h\"\n  advertise = \"0.0.0.0\"\n" + etcd + "}\n", err: "no address of this host", line: 3},
		{name: "lease below a second", src: "cluster {\n  node = \"h\"\n  etcd {\n    endpoints = [\"http://a:1\"]\n    lease_ttl = \"500ms\"\n  }\n}\n", err: "at least 1s", line: 5},
		{name: "prefix not absolute", src: "cluster {\n  node = \"h\"\n  etcd {\n    endpoints = [\"http://a:1\"]\n    prefix = \"mesh\"\n  }\n}\n", err: "Invalid etcd prefix", line: 5},
		{name: "tls file missing", src: "cluster {\n  node = \"h\"\n  etcd {\n    endpoints = [\"https://a:1\"]\n    tls {\n      ca_file = \"nope.pem\"\n    }\n  }\n}\n", err: "TLS file not found", line: 6},
		{name: "cert without key", src: "cluster {\n  node = \"h\"\n  etcd {\n    endpoints = [\"https://a:1\"]\n    tls {\n      cert_file = \"c.pem\"\n    }\n  }\n}\n", err: "Incomplete client certificate", line: 5},
		{name: "two cluster blocks", src: "cluster {\n  node = \"h\"\n" + etcd + "}\ncluster {\n" + etcd + "}\n", err: "Duplicate cluster block", line: 5},
		{name: "long node with agents", src: "agents { count = 2 }\ncluster {\n  node = \"" + strings.Repeat("h", 62) + "\"\n" + etcd + "}\n", err: "Node ID too long", line: 1},
	}
	defer func(h func() (string, error)) { hostname = h }(hostname)
	hostname = func() (string, error) { return "testhost.example.org", nil }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range []string{"ca.pem", "c.pem"} {
				if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cfg, diags := parseIn(t, dir, tt.src)
			if tt.err != "" {
				found := false
				for _, d := range diags {
					if d.Subject != nil && strings.Contains(d.Summary+" "+d.Detail, tt.err) && d.Subject.Start.Line == tt.line {
						found = true
					}
				}
				if !found {
					t.Fatalf("error %q not reported on line %d: %v", tt.err, tt.line, diags)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			if tt.warn != "" && !hasSummary(diags, tt.warn) {
				t.Fatalf("want warning %q, got %v", tt.warn, diags)
			}
			if tt.check != nil {
				tt.check(t, cfg)
			}
		})
	}
}
