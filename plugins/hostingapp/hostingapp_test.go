package hostingapp

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

func request() sdk.HostingRequest {
	return sdk.HostingRequest{Site: sdk.SiteConfig{
		Site:    sdk.SiteInfo{ID: "shop"},
		Domains: &sdk.DomainsInfo{Primary: "shop.test"},
		Hosting: sdk.HostingInfo{Provider: "criomosHost"},
	}}
}

func TestPlanAndRefusals(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "shop"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "shop", "index.html"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, _ := sitesnap.Scan(filepath.Join(root, "shop"))
	full := sdk.Config{"sites_root": root, "server": "/bin/true", "key": "/k", "control_addr": "unix:///x.sock"}
	t.Setenv("MESH_ADDR", "")
	tests := []struct {
		name    string
		cfg     sdk.Config
		edit    func(*sdk.HostingRequest)
		actual  []sdk.HostingResource
		want    string // plan, or error text
		missing bool
	}{
		{"new", full, nil, nil, "create release site-shop,create route shop.test", false},
		{"unchanged", full, nil, []sdk.HostingResource{{Kind: "release", Key: "site-shop", Version: m.Digest()}, {Kind: "route", Key: "shop.test"}}, "", false},
		{"project name names the app", full, func(r *sdk.HostingRequest) { r.Site.Hosting.ProjectName = "shop-app" }, nil, "create release shop-app,create route shop.test", false},
		{"no key", sdk.Config{"sites_root": root, "server": "/bin/true", "control_addr": "unix:///x.sock"}, nil, nil, "needs sites_root, server and key", true},
		{"no control", sdk.Config{"sites_root": root, "server": "/bin/true", "key": "/k"}, nil, nil, "control address", true},
		{"build command", full, func(r *sdk.HostingRequest) { r.BuildCommand = []string{"hugo"} }, nil, "prebuilt files only", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New().(*backend)
			if err := b.Configure(context.Background(), tt.cfg); err != nil {
				t.Fatal(err)
			}
			req := request()
			if tt.edit != nil {
				tt.edit(&req)
			}
			acts, err := b.Plan(context.Background(), req, tt.actual)
			if err != nil {
				if !strings.Contains(err.Error(), tt.want) || errors.Is(err, sdk.ErrConfigMissing) != tt.missing {
					t.Fatalf("error %v, want %q (config missing %v)", err, tt.want, tt.missing)
				}
				return
			}
			var got []string
			for _, a := range acts {
				got = append(got, a.Op+" "+a.Kind+" "+a.Key)
			}
			if strings.Join(got, ",") != tt.want {
				t.Fatalf("plan %v, want %q", got, tt.want)
			}
		})
	}
}
