package hostinglocal

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mycelium-mesh/mesh/core/sitesnap"
	"github.com/mycelium-mesh/mesh/sdk"
)

func configured(t *testing.T, root string) *backend {
	t.Helper()
	b := New().(*backend)
	if err := b.Configure(context.Background(), sdk.Config{"sites_root": root, "control_addr": "unix:///nonexistent.sock"}); err != nil {
		t.Fatal(err)
	}
	return b
}

func request(id string, hosts ...string) sdk.HostingRequest {
	return sdk.HostingRequest{Site: sdk.SiteConfig{
		Site:    sdk.SiteInfo{ID: id},
		Build:   &sdk.BuildInfo{Type: "staticPrebuilt", OutputDir: id + "/public"},
		Domains: &sdk.DomainsInfo{Primary: hosts[0], Aliases: hosts[1:]},
		Hosting: sdk.HostingInfo{Provider: "localStatic"},
	}}
}

func TestPlan(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "blog", "public"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "blog", "public", "index.html"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, _ := sitesnap.Scan(filepath.Join(root, "blog", "public"))
	digest := m.Digest()
	b := configured(t, root)
	tests := []struct {
		name   string
		hosts  []string
		actual []sdk.HostingResource
		want   string
	}{
		{"new site", []string{"a.test", "www.a.test"}, nil, "create snapshot blog,create route a.test,create route www.a.test"},
		{"unchanged", []string{"a.test"}, []sdk.HostingResource{{Kind: "snapshot", Key: "blog", Version: digest}, {Kind: "route", Key: "a.test"}}, ""},
		{"new content", []string{"a.test"}, []sdk.HostingResource{{Kind: "snapshot", Key: "blog", Version: "sha256:old"}, {Kind: "route", Key: "a.test"}}, "update snapshot blog"},
		{"alias dropped", []string{"a.test"}, []sdk.HostingResource{{Kind: "snapshot", Key: "blog", Version: digest}, {Kind: "route", Key: "a.test"}, {Kind: "route", Key: "old.test"}}, "delete route old.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acts, err := b.Plan(context.Background(), request("blog", tt.hosts...), tt.actual)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range acts {
				got = append(got, a.Op+" "+a.Kind+" "+a.Key)
			}
			if strings.Join(got, ",") != tt.want {
				t.Fatalf("plan %v, want %s", got, tt.want)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	root := t.TempDir()
	tests := []struct {
		name    string
		cfg     sdk.Config
		edit    func(*sdk.HostingRequest)
		missing bool
		want    string
	}{
		{"no control address", sdk.Config{"sites_root": root}, nil, true, "control address"},
		{"no sites root", sdk.Config{"control_addr": "unix:///x.sock"}, nil, true, "sites_root"},
		{"no domains", sdk.Config{"sites_root": root, "control_addr": "unix:///x.sock"}, func(r *sdk.HostingRequest) { r.Site.Domains = nil }, false, "domains.primary"},
		{"github repo", sdk.Config{"sites_root": root, "control_addr": "unix:///x.sock"}, func(r *sdk.HostingRequest) { r.Site.Repo = &sdk.RepoInfo{Provider: "github"} }, false, "not fetched"},
		{"no index", sdk.Config{"sites_root": root, "control_addr": "unix:///x.sock"}, nil, false, "no index.html"},
	}
	t.Setenv("MESH_ADDR", "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_ = os.MkdirAll(filepath.Join(root, "blog", "public"), 0o755)
			b := New().(*backend)
			if err := b.Configure(context.Background(), tt.cfg); err != nil {
				t.Fatal(err)
			}
			req := request("blog", "a.test")
			if tt.edit != nil {
				tt.edit(&req)
			}
			_, err := b.Plan(context.Background(), req, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || errors.Is(err, sdk.ErrConfigMissing) != tt.missing {
				t.Fatalf("error %v, want %q (config missing: %v)", err, tt.want, tt.missing)
			}
		})
	}
}
