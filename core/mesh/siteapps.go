package mesh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/mycelium-mesh/mesh/core/config"
	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/repo"
	"github.com/mycelium-mesh/mesh/core/rollout"
	"github.com/mycelium-mesh/mesh/core/siteapi"
	"github.com/mycelium-mesh/mesh/core/spore"
)

// Site-owned apps. A site hosted as a mesh app (the mesh-app hosting
// backend) needs an app to run its release in. When mesh.hcl declares no app
// of that name, the mesh creates one at runtime, owned by the site:
//
//   - its plan lives in the fabric like any app's, with defaults that
//     survive a workload SIGKILL: one instance per agent (min = max) and
//     restart on-failure;
//   - every digest, the first included, is published as a rollout (trigger
//     "site"), so auto-revert, `mesh history` and `mesh rollback` work as
//     for any app;
//   - the ownership is recorded in <data_dir>/sites/apps.json, so a reload
//     or a restart keeps the app (a reload plan lists it as "site", never
//     as "remove"), and deleting the site withdraws it;
//   - an app block of the same name added to mesh.hcl later is refused by
//     the reload (and at start), naming the site: the two would fight over
//     the app's plan.
//
// An app that mesh.hcl declares already is used as it is: the site's
// releases are deployed to it and the file keeps owning it.

// ActionSite is the reload action of a site-owned app: kept as it runs.
const ActionSite = "site"

// siteApp records that a site owns an app.
type siteApp struct {
	App     string    `json:"app"`
	Site    string    `json:"site"`
	Created time.Time `json:"created"`
}

const siteAppsFile = "apps.json"

// loadAppsLocked reads the ownership records; a store without the file
// owns no app.
func (s *siteStore) loadAppsLocked() error {
	s.apps = map[string]siteApp{}
	p := filepath.Join(s.dir, siteAppsFile)
	b, err := os.ReadFile(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("read site apps: %w", err)
	}
	var list []siteApp
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("decode %s: %w", p, err)
	}
	for _, a := range list {
		s.apps[a.App] = a
	}
	return nil
}

func (s *siteStore) saveAppsLocked() error {
	list := make([]siteApp, 0, len(s.apps))
	for _, a := range s.apps {
		list = append(list, a)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].App < list[j].App })
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return fmt.Errorf("encode site apps: %w", err)
	}
	return writeFileAtomic(filepath.Join(s.dir, siteAppsFile), b)
}

// writeFileAtomic replaces path with b: written beside it, synced, renamed.
func writeFileAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return nil
}

// siteOwners returns app -> owning site for every site-owned app.
func (m *Mesh) siteOwners() (map[string]string, error) {
	s, err := m.siteStore()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.apps))
	for _, a := range s.apps {
		out[a.App] = a.Site
	}
	return out, nil
}

// checkSiteOwned refuses a configuration that declares an app a site owns,
// with the block's file and line.
func checkSiteOwned(cfg *config.Config, owners map[string]string) error {
	var diags hcl.Diagnostics
	for _, a := range cfg.Apps {
		site, ok := owners[a.Name]
		if !ok {
			continue
		}
		rng := a.DeclRange
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "App owned by a site",
			Detail: fmt.Sprintf("The mesh created app %q for site %q (hosted as a mesh app by mesh provision) and the site owns it. "+
				"Rename this block, or delete the site first (DELETE /v1/sites/%s withdraws its app).", a.Name, site, site),
			Subject: &rng,
		})
	}
	if diags.HasErrors() {
		return &ConfigError{Diags: diags}
	}
	return nil
}

// EnsureSiteApp has the mesh run site's app at req.Digest; see the comment
// at the top of this file. who names the caller for the rollout history.
func (m *Mesh) EnsureSiteApp(ctx context.Context, site string, req siteapi.AppRequest, who string) (siteapi.AppState, error) {
	st := siteapi.AppState{App: req.App, Site: site}
	if !siteIDRe.MatchString(site) {
		return st, fmt.Errorf("%w: site id %q is not a DNS label", errBadSiteApp, site)
	}
	if !config.ValidAppName(req.App) {
		return st, fmt.Errorf("%w: app name %q must start with a letter or digit and contain only letters, digits, '.', '_' and '-' (at most 63 characters)", errBadSiteApp, req.App)
	}
	if err := m.needRollouts(); err != nil {
		return st, err
	}
	digest, err := repo.NormalizeDigest(req.Digest)
	if err != nil {
		return st, err
	}
	st.Digest = digest
	path, err := m.repo.PathContext(ctx, digest)
	if err != nil {
		return st, err
	}
	man, err := spore.Verify(path, m.trustedKeys())
	if err != nil {
		return st, fmt.Errorf("%w: %s: %s", ErrRefused, digest, verifyCause(err, path))
	}
	if who == "" {
		who = "api"
	}
	who = "site " + site + " (" + who + ")"

	// Under applyMu: a reload never sees the plan without its owner.
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	_, configured := m.Config().App(req.App)
	if !configured {
		if err := m.ownSiteApp(site, req.App); err != nil {
			return st, err
		}
		st.Owned = true
	}
	p, have := m.fabric.Plan(req.App)
	switch {
	case have && p.Digest == digest:
		return st, nil // already so
	case have:
		res, err := m.startRollout(ctx, DeployRequest{App: req.App, Digest: digest, Who: who}, rollout.BySite)
		if err != nil {
			return st, err
		}
		st.Rollout = res.Rollout.ID
		return st, nil
	case configured:
		return st, fmt.Errorf("%w: %q (declared in mesh.hcl, but not applied yet)", ErrUnknownApp, req.App)
	}
	n := len(m.Config().Agents.NodeIDs)
	plan := fabric.Plan{AppName: req.App, Digest: digest, Min: n, Max: n, Restart: config.RestartOnFailure,
		HealthPath: m.Config().Health.Path}
	r, err := m.rollouts.begin(rolloutStart{App: req.App, Digest: digest, Version: man.Identity.Version,
		Trigger: rollout.BySite, Who: who, AutoRevert: true}, func() error {
		m.markPublished(req.App)
		return m.fabric.SwapPlan(nil, plan)
	})
	if err != nil {
		return st, fmt.Errorf("publish plan for %q: %w", req.App, err)
	}
	st.Rollout = r.ID
	m.log.Info("site app created", "site", site, "app", req.App, "digest", digest, "min", n, "max", n, "rollout", r.ID)
	return st, nil
}

var errBadSiteApp = errors.New("invalid site app")

// ownSiteApp records that site owns app, refusing an app another site owns.
func (m *Mesh) ownSiteApp(site, app string) error {
	s, err := m.siteStore()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.apps[app]; ok {
		if cur.Site != site {
			return fmt.Errorf("app %q is owned by site %q: %w", app, cur.Site, errConflict)
		}
		return nil
	}
	s.apps[app] = siteApp{App: app, Site: site, Created: time.Now().UTC()}
	if err := s.saveAppsLocked(); err != nil {
		delete(s.apps, app)
		return err
	}
	return nil
}

// dropStaleSiteAppsAfter withdraws, after d, the apps site owns that its
// record no longer routes to. The record is read when the time comes, so a site moved back meanwhile
// keeps its app. A mesh stopped before then withdraws them at its next
// start (dropStaleSiteApps).
func (m *Mesh) dropStaleSiteAppsAfter(site string, d time.Duration) {
	time.AfterFunc(d, func() {
		if err := m.dropStaleSiteApps(site); err != nil {
			m.log.Warn("site app not withdrawn", "site", site, "error", err)
		}
	})
}

// dropStaleSiteApps withdraws the apps site owns that its record does not
// route to; with site "", it does so for every site with a record.
func (m *Mesh) dropStaleSiteApps(site string) error {
	s, err := m.siteStore()
	if err != nil {
		return err
	}
	s.mu.Lock()
	keep := map[string]string{}
	for _, a := range s.apps {
		// A site without a record is in its first release (or was deleted,
		// which withdrew its apps already): its app is left alone.
		if rec, ok := s.sites[a.Site]; ok && (site == "" || a.Site == site) {
			keep[a.Site] = rec.App
		}
	}
	s.mu.Unlock()
	for id, app := range keep {
		if err := m.dropSiteApps(id, app); err != nil {
			return err
		}
	}
	return nil
}

// dropSiteApps withdraws the plans of the apps site owns, except keep, and
// forgets them: the site was deleted, or now routes to another app (a new
// hosting.projectName) or to a snapshot.
func (m *Mesh) dropSiteApps(site, keep string) error {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	s, err := m.siteStore()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var apps []string
	for _, a := range s.apps {
		if a.Site == site && a.App != keep {
			apps = append(apps, a.App)
		}
	}
	sort.Strings(apps)
	for _, app := range apps {
		if err := m.deletePlan(app); err != nil && !errors.Is(err, fabric.ErrNotFound) {
			return fmt.Errorf("site %s: withdraw app %q: %w", site, app, err)
		}
		delete(s.apps, app)
		if err := s.saveAppsLocked(); err != nil {
			return err
		}
		m.log.Info("site app removed", "site", site, "app", app)
	}
	return nil
}

// SiteApp returns the app a site routes to (or, before its record is set,
// the one it owns), with the digest its plan names now ("" when the mesh
// holds no plan for it). ok is false for a site with no app.
func (m *Mesh) SiteApp(site string) (st siteapi.AppState, ok bool, err error) {
	s, err := m.siteStore()
	if err != nil {
		return st, false, err
	}
	s.mu.Lock()
	st.Site = site
	if rec, have := s.sites[site]; have {
		st.App = rec.App
	}
	if st.App == "" {
		var owned []string
		for _, a := range s.apps {
			if a.Site == site {
				owned = append(owned, a.App)
			}
		}
		sort.Strings(owned)
		if len(owned) > 0 {
			st.App = owned[0]
		}
	}
	_, st.Owned = s.apps[st.App]
	s.mu.Unlock()
	if st.App == "" {
		return st, false, nil
	}
	if p, have := m.fabric.Plan(st.App); have {
		st.Digest = p.Digest
	}
	return st, true, nil
}

// siteAppRoutes registers the site-app endpoints of the control API.
func (m *Mesh) siteAppRoutes(mux *http.ServeMux, token string) {
	mux.HandleFunc("GET /v1/sites/{id}/app", func(w http.ResponseWriter, r *http.Request) {
		st, ok, err := m.SiteApp(r.PathValue("id"))
		switch {
		case err != nil:
			writeErr(w, err)
		case !ok:
			writeJSON(w, http.StatusNotFound, apiError{Error: "site " + r.PathValue("id") + " runs no app"})
		default:
			writeJSON(w, http.StatusOK, st)
		}
	})
	mux.HandleFunc("PUT /v1/sites/{id}/app", func(w http.ResponseWriter, r *http.Request) {
		var req siteapi.AppRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "decode app request: " + err.Error()})
			return
		}
		st, err := m.EnsureSiteApp(r.Context(), r.PathValue("id"), req, caller(r.Context(), token != ""))
		switch {
		case errors.Is(err, errConflict):
			writeJSON(w, http.StatusConflict, apiError{Error: err.Error()})
		case errors.Is(err, errBadSiteApp):
			writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		case err != nil:
			writeErr(w, err)
		default:
			writeJSON(w, http.StatusOK, st)
		}
	})
}
