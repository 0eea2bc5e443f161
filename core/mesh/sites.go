package mesh

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mycelium-mesh/mesh/core/edge"
	"github.com/mycelium-mesh/mesh/core/siteapi"
	"github.com/mycelium-mesh/mesh/core/sitesnap"
)

// Site is a static site the mesh serves by Host: desired state like an
// app, set through the control API (by `mesh provision`'s local-static
// backend) and kept in the data dir, so it survives a restart.
type Site = siteapi.Site

var (
	siteIDRe   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	hostRe     = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	snapshotRe = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// siteStore keeps sites in <data_dir>/sites: sites.json (the records,
// replaced atomically) and snapshots/<hex>/ (files/ and manifest.json),
// which never change once complete.
type siteStore struct {
	dir    string
	hasApp func(name string) bool

	mu    sync.Mutex
	sites map[string]Site
	apps  map[string]siteApp // apps owned by sites, by app (siteapps.go)
}

// siteHolder loads the site store on first use.
type siteHolder struct {
	mu    sync.Mutex
	store *siteStore
}

// siteStore returns the mesh's site store, loading it on first use.
func (m *Mesh) siteStore() (*siteStore, error) {
	m.sites.mu.Lock()
	defer m.sites.mu.Unlock()
	if m.sites.store != nil {
		return m.sites.store, nil
	}
	s := &siteStore{dir: filepath.Join(m.Config().DataDir, "sites"), sites: map[string]Site{}}
	// An app site routes to an app mesh.hcl declares or one a site owns.
	s.hasApp = func(name string) bool {
		_, owned := s.apps[name]
		_, configured := m.Config().App(name)
		return owned || configured
	}
	if err := s.loadAppsLocked(); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(s.dir, "sites.json"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read sites: %w", err)
	default:
		var list []Site
		if err := json.Unmarshal(b, &list); err != nil {
			return nil, fmt.Errorf("decode %s: %w", filepath.Join(s.dir, "sites.json"), err)
		}
		for _, st := range list {
			s.sites[st.ID] = st
		}
	}
	m.sites.store = s
	return s, nil
}

func (s *siteStore) snapshotDir(digest string) string {
	return filepath.Join(s.dir, "snapshots", strings.TrimPrefix(digest, "sha256:"))
}

func (s *siteStore) hasSnapshot(digest string) bool {
	_, err := os.Stat(filepath.Join(s.snapshotDir(digest), "manifest.json"))
	return err == nil
}

// putSnapshot extracts a tar stream into a new snapshot and keeps it only
// when its content has the digest it was sent under. A snapshot that
// exists already is success (the body is drained, not stored).
func (s *siteStore) putSnapshot(digest string, body io.Reader) error {
	if s.hasSnapshot(digest) {
		_, _ = io.Copy(io.Discard, body)
		return nil
	}
	root := filepath.Join(s.dir, "snapshots")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("create snapshots dir: %w", err)
	}
	tmp, err := os.MkdirTemp(root, ".incoming-")
	if err != nil {
		return fmt.Errorf("create snapshot: %w", err)
	}
	defer os.RemoveAll(tmp)
	m, err := sitesnap.Extract(body, filepath.Join(tmp, "files"))
	if err != nil {
		return err
	}
	if got := m.Digest(); got != digest {
		return fmt.Errorf("snapshot content has digest %s, not %s", got, digest)
	}
	if err := sitesnap.WriteManifest(filepath.Join(tmp, "manifest.json"), m); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.snapshotDir(digest)); err != nil && !s.hasSnapshot(digest) {
		return fmt.Errorf("store snapshot %s: %w", digest, err)
	}
	return nil
}

func (s *siteStore) saveLocked() error {
	list := s.listLocked()
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return fmt.Errorf("encode sites: %w", err)
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("create sites dir: %w", err)
	}
	tmp := filepath.Join(s.dir, ".sites.json.tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("write sites: %w", err)
	}
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write sites: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, "sites.json")); err != nil {
		return fmt.Errorf("replace sites: %w", err)
	}
	return nil
}

func (s *siteStore) listLocked() []Site {
	list := make([]Site, 0, len(s.sites))
	for _, st := range s.sites {
		list = append(list, st)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	return list
}

// checkSite validates a site record against the store: a known snapshot,
// host names no other site claims.
func (s *siteStore) checkLocked(st Site) error {
	if !siteIDRe.MatchString(st.ID) {
		return fmt.Errorf("site id %q is not a DNS label", st.ID)
	}
	switch {
	case st.App != "":
		if st.Snapshot != "" {
			return fmt.Errorf("site %s: an app site has no snapshot", st.ID)
		}
		if !s.hasApp(st.App) {
			return fmt.Errorf("site %s: the mesh runs no app %q", st.ID, st.App)
		}
	case !snapshotRe.MatchString(st.Snapshot):
		return fmt.Errorf("site %s: snapshot %q is not sha256:<64 hex>", st.ID, st.Snapshot)
	case !s.hasSnapshot(st.Snapshot):
		return fmt.Errorf("site %s: snapshot %s not uploaded: %w", st.ID, st.Snapshot, fs.ErrNotExist)
	}
	if len(st.Domains) == 0 {
		return fmt.Errorf("site %s: no domains", st.ID)
	}
	for _, d := range st.Domains {
		if !hostRe.MatchString(d) || len(d) > 253 {
			return fmt.Errorf("site %s: %q is not a lower-case host name", st.ID, d)
		}
		for _, other := range s.sites {
			if other.ID == st.ID {
				continue
			}
			for _, od := range other.Domains {
				if od == d {
					return fmt.Errorf("site %s: %s already routes to site %s: %w", st.ID, d, other.ID, errConflict)
				}
			}
		}
	}
	return nil
}

var errConflict = errors.New("conflict")

// routes builds the edge's site table from the records.
func (s *siteStore) routesLocked() ([]edge.SiteRoute, error) {
	var out []edge.SiteRoute
	for _, st := range s.listLocked() {
		if st.App != "" {
			out = append(out, edge.SiteRoute{ID: st.ID, Hosts: st.Domains, App: st.App})
			continue
		}
		m, err := sitesnap.ReadManifest(filepath.Join(s.snapshotDir(st.Snapshot), "manifest.json"))
		if err != nil {
			return nil, fmt.Errorf("site %s: %w", st.ID, err)
		}
		etags := make(map[string]string, len(m))
		for p, f := range m {
			etags[p] = f.SHA256[:32]
		}
		out = append(out, edge.SiteRoute{ID: st.ID, Hosts: st.Domains, Dir: filepath.Join(s.snapshotDir(st.Snapshot), "files"),
			NotFound: st.NotFound, ETags: etags})
	}
	return out, nil
}

// applySites hands the stored sites to the edge. Run calls it once the
// edge exists; every change through the control API calls it again.
func (m *Mesh) applySites() error {
	s, err := m.siteStore()
	if err != nil {
		return err
	}
	s.mu.Lock()
	routes, err := s.routesLocked()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	m.mu.Lock()
	e := m.edge
	m.mu.Unlock()
	if e != nil {
		e.SetSites(routes)
	}
	return nil
}

// maxSnapshotUpload bounds one snapshot upload (the tar stream).
const maxSnapshotUpload = sitesnap.MaxTotalSize + 64<<20

// siteRoutes registers the sites endpoints of the control API.
func (m *Mesh) siteRoutes(mux *http.ServeMux) {
	withStore := func(h func(w http.ResponseWriter, r *http.Request, s *siteStore)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			s, err := m.siteStore()
			if err != nil {
				writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
				return
			}
			h(w, r, s)
		}
	}
	mux.HandleFunc("GET /v1/sites", withStore(func(w http.ResponseWriter, r *http.Request, s *siteStore) {
		s.mu.Lock()
		defer s.mu.Unlock()
		writeJSON(w, http.StatusOK, s.listLocked())
	}))
	mux.HandleFunc("GET /v1/sites/{id}", withStore(func(w http.ResponseWriter, r *http.Request, s *siteStore) {
		s.mu.Lock()
		st, ok := s.sites[r.PathValue("id")]
		s.mu.Unlock()
		if !ok {
			writeJSON(w, http.StatusNotFound, apiError{Error: "no site " + r.PathValue("id")})
			return
		}
		writeJSON(w, http.StatusOK, st)
	}))
	mux.HandleFunc("PUT /v1/sites/{id}", withStore(func(w http.ResponseWriter, r *http.Request, s *siteStore) {
		var st Site
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&st); err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "decode site: " + err.Error()})
			return
		}
		st.ID = r.PathValue("id")
		s.mu.Lock()
		if cur, ok := s.sites[st.ID]; ok && cur.Snapshot == st.Snapshot && cur.NotFound == st.NotFound &&
			cur.App == st.App && cur.Content == st.Content && equalStrings(cur.Domains, st.Domains) {
			s.mu.Unlock()
			writeJSON(w, http.StatusOK, cur) // already so: no write
			return
		}
		if err := s.checkLocked(st); err != nil {
			s.mu.Unlock()
			code := http.StatusUnprocessableEntity
			if errors.Is(err, errConflict) {
				code = http.StatusConflict
			}
			writeJSON(w, code, apiError{Error: err.Error()})
			return
		}
		prev, had := s.sites[st.ID]
		st.Updated = time.Now().UTC()
		s.sites[st.ID] = st
		if err := s.saveLocked(); err != nil {
			if had {
				s.sites[st.ID] = prev
			} else {
				delete(s.sites, st.ID)
			}
			s.mu.Unlock()
			writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
			return
		}
		s.mu.Unlock()
		if err := m.applySites(); err != nil {
			writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
			return
		}
		m.log.Info("site set", "site", st.ID, "snapshot", st.Snapshot, "domains", strings.Join(st.Domains, ","))
		// An app the site no longer routes to is withdrawn once the
		// requests already routed to it had the warmup to finish, as a
		// replaced instance drains.
		m.dropStaleSiteAppsAfter(st.ID, m.Config().Warmup)
		writeJSON(w, http.StatusOK, st)
	}))
	mux.HandleFunc("DELETE /v1/sites/{id}", withStore(func(w http.ResponseWriter, r *http.Request, s *siteStore) {
		id := r.PathValue("id")
		s.mu.Lock()
		prev, ok := s.sites[id]
		if !ok {
			s.mu.Unlock()
			// Already gone; an app it owned may be left from a release whose
			// site record was never set.
			if err := m.dropSiteApps(id, ""); err != nil {
				writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
				return
			}
			writeJSON(w, http.StatusOK, map[string]string{"deleted": ""})
			return
		}
		delete(s.sites, id)
		if err := s.saveLocked(); err != nil {
			s.sites[id] = prev
			s.mu.Unlock()
			writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
			return
		}
		s.mu.Unlock()
		if err := m.applySites(); err != nil {
			writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
			return
		}
		if err := m.dropSiteApps(id, ""); err != nil { // its app, once no host routes to it
			writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"deleted": id})
	}))
	mux.HandleFunc("HEAD /v1/site-snapshots/{digest}", withStore(func(w http.ResponseWriter, r *http.Request, s *siteStore) {
		if d := r.PathValue("digest"); snapshotRe.MatchString(d) && s.hasSnapshot(d) {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusNotFound)
	}))
	mux.HandleFunc("PUT /v1/site-snapshots/{digest}", withStore(func(w http.ResponseWriter, r *http.Request, s *siteStore) {
		d := r.PathValue("digest")
		if !snapshotRe.MatchString(d) {
			writeJSON(w, http.StatusBadRequest, apiError{Error: fmt.Sprintf("snapshot %q is not sha256:<64 hex>", d)})
			return
		}
		if err := s.putSnapshot(d, io.LimitReader(r.Body, maxSnapshotUpload)); err != nil {
			code := http.StatusUnprocessableEntity
			writeJSON(w, code, apiError{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"snapshot": d})
	}))
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
