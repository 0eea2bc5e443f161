package mesh

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/mycelium-mesh/mesh/core/config"
	"github.com/mycelium-mesh/mesh/core/fabric"
)

// A plan no app block names is removed by a reload unless a site owns it:
// then it is listed as the site's and kept as it runs.
func TestComputePlanKeepsSiteOwnedApps(t *testing.T) {
	v1, v2 := digestOf('1'), digestOf('2')
	billing := appBlock("billing", 3)
	shop := fabric.Plan{AppName: "site-shop", Digest: v2, Min: 3, Max: 3, Restart: config.RestartOnFailure}
	gone := fabric.Plan{AppName: "gone", Digest: v1}
	tests := []struct {
		name   string
		owners map[string]string
		want   map[string]string // app -> action
	}{
		{"no owners", nil, map[string]string{"billing": ActionNone, "site-shop": ActionRemove, "gone": ActionRemove}},
		{"owned by a site", map[string]string{"site-shop": "shop"}, map[string]string{"billing": ActionNone, "site-shop": ActionSite, "gone": ActionRemove}},
		{"an owner with no plan lists nothing", map[string]string{"site-shop": "shop", "site-blog": "blog"}, map[string]string{"billing": ActionNone, "site-shop": ActionSite, "gone": ActionRemove}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := planInput{
				running:     &config.Config{Apps: []config.AppConfig{billing}},
				next:        &config.Config{Apps: []config.AppConfig{billing}},
				applied:     appliedState{Apps: map[string]appliedApp{"billing": {Digest: v1}}},
				plans:       map[string]fabric.Plan{"billing": planFor(billing, v1), "site-shop": shop, "gone": gone},
				fileDigests: map[string]string{"billing": v1},
				siteOwners:  tc.owners,
			}
			rp := computePlan(in)
			got := map[string]string{}
			for _, ap := range rp.Apps {
				got[ap.App] = ap.Action
				if ap.Action == ActionSite && (ap.Site != "shop" || ap.Digest != v2 || ap.DigestChanged) {
					t.Errorf("site-owned app %+v, want site shop, digest %s unchanged", ap, v2)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("actions %v, want %v", got, tc.want)
			}
			for app, action := range tc.want {
				if got[app] != action {
					t.Errorf("%s: action %q, want %q", app, got[app], action)
				}
			}
			var text strings.Builder
			if err := WriteReloadPlan(&text, rp); err != nil {
				t.Fatal(err)
			}
			if tc.owners != nil && !strings.Contains(text.String(), `= app "site-shop" (owned by site shop)`) {
				t.Errorf("reload plan text lacks the site-owned app:\n%s", text.String())
			}
		})
	}
}

func TestCheckSiteOwned(t *testing.T) {
	rng := hcl.Range{Filename: "mesh.hcl", Start: hcl.Pos{Line: 7, Column: 1}}
	cfg := &config.Config{Apps: []config.AppConfig{{Name: "billing"}, {Name: "site-shop", DeclRange: rng}}}
	tests := []struct {
		name   string
		owners map[string]string
		want   string
	}{
		{"none owned", nil, ""},
		{"another app owned", map[string]string{"site-blog": "blog"}, ""},
		{"a block of an owned app", map[string]string{"site-shop": "shop"}, `mesh.hcl:7,1`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkSiteOwned(cfg, tc.owners)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `site "shop"`) {
				t.Fatalf("error %v, want a ConfigError at %s naming site shop", err, tc.want)
			}
		})
	}
}

// Ownership records survive a reload of the store, and an owned app is one
// a site record may route to.
func TestSiteAppsPersist(t *testing.T) {
	dir := t.TempDir()
	s := &siteStore{dir: dir, sites: map[string]Site{}}
	s.hasApp = func(name string) bool { _, owned := s.apps[name]; return owned }
	if err := s.loadAppsLocked(); err != nil {
		t.Fatalf("no file yet: %v", err)
	}
	rec := Site{ID: "shop", Domains: []string{"shop.test"}, App: "site-shop"}
	if err := s.checkLocked(rec); err == nil || !strings.Contains(err.Error(), "runs no app") {
		t.Fatalf("site routed to an app nobody runs: %v", err)
	}
	s.apps["site-shop"] = siteApp{App: "site-shop", Site: "shop"}
	if err := s.checkLocked(rec); err != nil {
		t.Fatalf("site routed to its owned app: %v", err)
	}
	if err := s.saveAppsLocked(); err != nil {
		t.Fatal(err)
	}
	again := &siteStore{dir: dir}
	if err := again.loadAppsLocked(); err != nil {
		t.Fatal(err)
	}
	if a := again.apps["site-shop"]; a.Site != "shop" || len(again.apps) != 1 {
		t.Fatalf("loaded %+v", again.apps)
	}
	if err := os.WriteFile(filepath.Join(dir, siteAppsFile), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := again.loadAppsLocked(); err == nil || !strings.Contains(err.Error(), siteAppsFile) {
		t.Fatalf("damaged file: %v", err)
	}
}
