package edge

import (
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// SiteRoute is one static site the edge serves by Host: every request whose
// Host is one of Hosts is answered from the files under Dir, which never
// change once the route is set (a new version is a new Dir, switched in
// with SetSites).
type SiteRoute struct {
	ID    string
	Hosts []string // lower-case host names, without port
	Dir   string   // the snapshot's files
	// NotFound is the relative path of the page answered with 404 for a
	// missing file, or "" for a plain 404.
	NotFound string
	// ETags maps a relative path to its entity tag (its content hash).
	ETags map[string]string
	// App, when set, sends the site's requests to that app instead: the
	// request continues as /{App}/{path} through the app routing.
	App string
}

// siteTable is the edge's host → site map, swapped atomically: a request
// looks its site up once and is served from that snapshot to the end, so
// no request sees a mix of two versions and none fails during a switch.
type siteTable struct {
	hosts atomic.Pointer[map[string]*SiteRoute]
}

// SetSites replaces the sites the edge serves by Host.
func (e *Edge) SetSites(routes []SiteRoute) {
	m := make(map[string]*SiteRoute, len(routes))
	for i := range routes {
		r := &routes[i]
		for _, h := range r.Hosts {
			m[strings.ToLower(h)] = r
		}
	}
	e.sites.hosts.Store(&m)
}

// serveSite answers r from the site its Host names, and reports whether
// there was one. It is the edge's first routing step: a Host that names no
// site falls through to /{app}/ routing.
func (e *Edge) serveSite(w http.ResponseWriter, r *http.Request, st []string) bool {
	tbl := e.sites.hosts.Load()
	if tbl == nil || len(*tbl) == 0 {
		return false
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	site := (*tbl)[strings.ToLower(strings.TrimSuffix(host, "."))]
	if site == nil {
		return false
	}
	if site.App != "" {
		// Continue as /{app}/... : the app routing (with its
		// strip_prefix) takes it from here.
		ru := r.RequestURI
		if ru == "" || ru[0] != '/' {
			ru = r.URL.RequestURI()
		}
		r.RequestURI = "/" + site.App + ru
		r.URL.Path = "/" + site.App + r.URL.Path
		if r.URL.RawPath != "" {
			r.URL.RawPath = "/" + site.App + r.URL.RawPath
		}
		return false
	}
	w.Header()[HeaderEdge] = st
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		edgeError(w, st, http.StatusMethodNotAllowed, "a static site answers GET and HEAD")
		return true
	}
	rel := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if rel == "" || strings.HasSuffix(r.URL.Path, "/") {
		rel = path.Join(rel, "index.html")
	}
	if e.serveSiteFile(w, r, site, rel, http.StatusOK) {
		return true
	}
	// A directory without its trailing slash: send the browser there, so
	// the index's relative links resolve.
	if _, ok := site.ETags[path.Join(rel, "index.html")]; ok {
		http.Redirect(w, r, "/"+rel+"/", http.StatusMovedPermanently)
		return true
	}
	if site.NotFound != "" && e.serveSiteFile(w, r, site, site.NotFound, http.StatusNotFound) {
		return true
	}
	edgeError(w, st, http.StatusNotFound, "not found")
	return true
}

// serveSiteFile serves one file of the snapshot. With status 200,
// http.ServeContent handles content types, ETag and Last-Modified
// conditionals and ranges; a 404 page is written whole.
func (e *Edge) serveSiteFile(w http.ResponseWriter, r *http.Request, site *SiteRoute, rel string, status int) bool {
	etag, ok := site.ETags[rel]
	if !ok {
		return false
	}
	f, err := os.Open(filepath.Join(site.Dir, filepath.FromSlash(rel)))
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	if status != http.StatusOK {
		if ct := contentTypeOf(rel); ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			_, _ = f.WriteTo(w)
		}
		return true
	}
	w.Header().Set("ETag", `"`+etag+`"`)
	http.ServeContent(w, r, rel, fi.ModTime(), f)
	return true
}

func contentTypeOf(rel string) string {
	switch strings.ToLower(path.Ext(rel)) {
	case ".html", ".htm":
		return "text/html; charset=utf-8"
	}
	return ""
}
