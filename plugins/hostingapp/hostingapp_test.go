package hostingapp

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mycelium-mesh/mesh/core/siteapi"
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

// Observe reports the release from the mesh's site record, and as missing
// when the mesh holds no plan for the site's app (a lost fabric store), so
// that Plan releases it again.
func TestObserveSeesTheApp(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "shop"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "shop", "index.html"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, _ := sitesnap.Scan(filepath.Join(root, "shop"))
	tests := []struct {
		name      string
		appDigest string // "" : the mesh holds no plan; "404": no app at all
		want      string // the release's version
		plan      string
	}{
		{"app planned", "sha256:" + strings.Repeat("a", 64), m.Digest(), ""},
		{"plan lost", "", "", "update release site-shop"},
		{"no app", "404", "", "update release site-shop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.HandleFunc("GET /v1/sites/shop", func(w http.ResponseWriter, r *http.Request) {
				_ = json.NewEncoder(w).Encode(siteapi.Site{ID: "shop", Domains: []string{"shop.test"}, App: "site-shop", Content: m.Digest()})
			})
			mux.HandleFunc("GET /v1/sites/shop/app", func(w http.ResponseWriter, r *http.Request) {
				if tt.appDigest == "404" {
					w.WriteHeader(http.StatusNotFound)
					return
				}
				_ = json.NewEncoder(w).Encode(siteapi.AppState{App: "site-shop", Site: "shop", Digest: tt.appDigest, Owned: true})
			})
			srv := httptest.NewServer(mux)
			defer srv.Close()
			b := New().(*backend)
			cfg := sdk.Config{"sites_root": root, "server": "/bin/true", "key": "/k", "control_addr": srv.URL}
			if err := b.Configure(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			actual, err := b.Observe(context.Background(), request())
			if err != nil {
				t.Fatal(err)
			}
			if len(actual) != 2 || actual[0].Kind != "release" || actual[0].Version != tt.want {
				t.Fatalf("observed %+v, want release version %q", actual, tt.want)
			}
			acts, err := b.Plan(context.Background(), request(), actual)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range acts {
				got = append(got, a.Op+" "+a.Kind+" "+a.Key)
			}
			if strings.Join(got, ",") != tt.plan {
				t.Fatalf("plan %v, want %q", got, tt.plan)
			}
		})
	}
}
