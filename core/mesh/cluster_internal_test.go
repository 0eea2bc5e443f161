package mesh

import (
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/config"
	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/fabric/fabrictest"
)

func TestParseRoles(t *testing.T) {
	tests := []struct {
		in   string
		want Role
		err  string
	}{
		{"all", RoleAll, ""},
		{"control", RoleControl, ""},
		{"agents", RoleAgents, ""},
		{"agent", RoleAgents, ""},
		{"control, edge", RoleControl | RoleEdge, ""},
		{"edge,agents,control", RoleAll, ""},
		{"worker", 0, "unknown role \"worker\""},
		{"", 0, "unknown role"},
	}
	for _, tt := range tests {
		got, err := ParseRoles(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseRoles(%q) = %v, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseRoles(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	if s := (RoleControl | RoleEdge).String(); s != "control,edge" {
		t.Errorf("String = %q", s)
	}
}

// TestCheckRoles: a process may run only some roles when the fabric is
// shared through a cluster; without one everything runs in one process.
func TestCheckRoles(t *testing.T) {
	plain := &config.Config{File: "/etc/mesh.hcl"}
	clustered := &config.Config{File: "/etc/mesh.hcl", Cluster: &config.ClusterConfig{Node: "h"}}
	tests := []struct {
		cfg   *config.Config
		roles Role
		ok    bool
	}{
		{plain, 0, true}, {plain, RoleAll, true}, {plain, RoleAgents, false}, {plain, RoleEdge, false},
		{clustered, RoleAgents, true}, {clustered, RoleEdge, true}, {clustered, RoleControl, true}, {clustered, 0, true},
	}
	for _, tt := range tests {
		err := checkRoles(tt.cfg, tt.roles)
		if (err == nil) != tt.ok {
			t.Errorf("cluster=%v roles=%v: %v", tt.cfg.Cluster != nil, tt.roles, err)
		}
		if err != nil && !strings.Contains(err.Error(), "cluster block") {
			t.Errorf("error does not say what is missing: %v", err)
		}
	}
}

// TestObserveCluster: the control process of a cluster judges a rollout
// from the endpoints of every host, which carry their digest, not from the
// agents it runs itself (none, or only its own host's).
func TestObserveCluster(t *testing.T) {
	f, err := fabric.New(fabric.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := &Mesh{fabric: f, clustered: true}
	v1, v2 := fabrictest.Digest(1), fabrictest.Digest(2)
	if err := f.PublishPlan(fabric.Plan{AppName: "web", Digest: v2, Min: 2, Max: 3}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b", "c"} {
		if _, err := f.Acquire("web", n, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	f.RegisterEndpoint(fabric.Endpoint{AppName: "web", NodeID: "a", URL: "http://10.0.0.1:1", Digest: v2})
	f.RegisterEndpoint(fabric.Endpoint{AppName: "web", NodeID: "b", URL: "http://10.0.0.2:1", Digest: v2})
	f.RegisterEndpoint(fabric.Endpoint{AppName: "web", NodeID: "c", URL: "http://10.0.0.3:1", Digest: v1})

	o := m.observe("web", v2, time.Time{})
	if o.Progress.Desired != 3 || o.Progress.Ready != 2 || o.Progress.Healthy != 2 || o.ReadyOther != 1 || o.Claimed != 3 || len(o.ReadySince) != 2 {
		t.Fatalf("observation %+v", o)
	}
	first := o.ReadySince[0]
	// The same endpoints keep the time they were first seen.
	if o2 := m.observe("web", v2, time.Time{}); !o2.ReadySince[0].Equal(first) {
		t.Fatalf("ready since moved: %v -> %v", first, o2.ReadySince[0])
	}
	f.RegisterEndpoint(fabric.Endpoint{AppName: "web", NodeID: "c", URL: "http://10.0.0.3:2", Digest: v2})
	if o := m.observe("web", v2, time.Time{}); o.Progress.Ready != 3 || o.ReadyOther != 0 {
		t.Fatalf("after the last host moved: %+v", o)
	}
	// Without a max, the desired count is what is claimed, at least min.
	if err := f.PublishPlan(fabric.Plan{AppName: "web", Digest: v2, Min: 2}); err != nil {
		t.Fatal(err)
	}
	if d := m.desired(fabric.Plan{AppName: "web", Min: 2}); d != 3 {
		t.Fatalf("desired without max = %d, want the 3 claimed", d)
	}
	if d := m.desired(fabric.Plan{AppName: "none", Min: 2}); d != 2 {
		t.Fatalf("desired of an unclaimed app = %d, want min 2", d)
	}
}

// TestClusterNeedsRestart: a reload lists any change of the cluster block
// as one that needs a restart, and an unchanged one not at all.
func TestClusterNeedsRestart(t *testing.T) {
	cl := func(node string, ttl time.Duration) *config.ClusterConfig {
		return &config.ClusterConfig{Node: node, Advertise: "10.0.0.2",
			Etcd: config.EtcdConfig{Endpoints: []string{"http://e:2379"}, Prefix: "/mesh/", LeaseTTL: ttl}}
	}
	tests := []struct {
		name     string
		old, now *config.ClusterConfig
		note     bool
	}{
		{"none", nil, nil, false},
		{"unchanged", cl("a", time.Second), cl("a", time.Second), false},
		{"added", nil, cl("a", time.Second), true},
		{"removed", cl("a", time.Second), nil, true},
		{"node", cl("a", time.Second), cl("b", time.Second), true},
		{"lease", cl("a", time.Second), cl("a", 2*time.Second), true},
	}
	for _, tt := range tests {
		notes := restartNotes(&config.Config{Cluster: tt.old}, &config.Config{Cluster: tt.now}, "", "")
		got := false
		for _, n := range notes {
			got = got || strings.HasPrefix(n, "cluster ")
		}
		if got != tt.note {
			t.Errorf("%s: notes %q", tt.name, notes)
		}
	}
}
