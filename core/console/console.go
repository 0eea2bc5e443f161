// Package console is the mesh's web console: a read-only page, served on
// the admin listener beside /metrics, that shows what a running mesh is
// doing and updates itself as it happens. It shows the apps (desired,
// ready, degraded), each app's instances per node (state, pid, port,
// uptime, restarts, last error), rollouts in progress and their history,
// per-app request rate, 5xx rate and latency over the last minutes, the
// plugins and the sites served.
//
// The page is plain HTML, CSS and JavaScript embedded in the binary: no
// build step, nothing fetched from anywhere but the mesh itself (its
// Content-Security-Policy forbids it). It reads three documents:
//
//	GET /console/api/snapshot   the mesh's state (Options.Snapshot), every few seconds
//	GET /console/api/metrics    per-app samples of the edge's counters (Sampler)
//	GET /console/api/events     the event stream as server-sent events (Options.Events)
//
// and refreshes the snapshot whenever an event arrives, so a rollout or a
// crash shows within moments without reloading. Nothing on it changes the
// mesh: deploys and rollbacks stay in the CLI and the control API.
//
// On a loopback listener the console needs no credentials, like /metrics,
// but answers only requests addressed to a loopback host (a page elsewhere
// cannot reach it by rebinding a DNS name to 127.0.0.1). On any other
// address it needs the control token: as a bearer token, or through the
// sign-in form at /console/login, which keeps it in an HttpOnly cookie.
// Without a control token configured it is not served there at all.
package console

import (
	"bytes"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"time"
)

//go:embed assets
var assets embed.FS

// Options configure a Console.
type Options struct {
	// Snapshot returns the document the page renders (the mesh's status,
	// rollout history and sites); it is encoded as JSON.
	Snapshot func() any
	// Events serves the event stream; the page asks for server-sent events.
	Events http.Handler
	// Samples holds the per-app metrics the charts draw; nil serves none.
	Samples *Sampler
	// Loopback says the listener is on a loopback address.
	Loopback bool
	// Token is the control token, required when not Loopback.
	Token string
}

// Console serves the web console. Create it with New.
type Console struct {
	opts Options
	mux  *http.ServeMux
}

// cookieName carries the token of a signed-in browser.
const cookieName = "mesh_console"

// New returns the console for opts.
func New(opts Options) *Console {
	c := &Console{opts: opts, mux: http.NewServeMux()}
	static, _ := fs.Sub(assets, "assets")
	files := http.FileServerFS(static)
	c.mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", files))
	c.mux.HandleFunc("GET /console/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, static, "index.html")
	})
	c.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/", http.StatusFound)
	})
	c.mux.HandleFunc("GET /console", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/", http.StatusFound)
	})
	c.mux.HandleFunc("GET /console/api/snapshot", func(w http.ResponseWriter, r *http.Request) {
		var doc any
		if opts.Snapshot != nil {
			doc = opts.Snapshot()
		}
		writeJSON(w, doc)
	})
	c.mux.HandleFunc("GET /console/api/metrics", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, opts.Samples.Series())
	})
	if opts.Events != nil {
		c.mux.Handle("GET /console/api/events", opts.Events)
	}
	return c
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

// ServeHTTP checks the caller and serves the console.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if c.opts.Loopback {
		if !loopbackHost(r.Host) {
			http.Error(w, "the console answers requests for a loopback host only (127.0.0.1, ::1, localhost)", http.StatusMisdirectedRequest)
			return
		}
		c.mux.ServeHTTP(w, r)
		return
	}
	if c.opts.Token == "" {
		http.Error(w, "the console is not served on a non-loopback admin listener without control.token", http.StatusForbidden)
		return
	}
	if r.URL.Path == "/console/login" || strings.HasPrefix(r.URL.Path, "/console/static/") {
		if r.URL.Path == "/console/login" {
			c.login(w, r)
			return
		}
		c.mux.ServeHTTP(w, r)
		return
	}
	if !c.authorized(r) {
		if strings.HasPrefix(r.URL.Path, "/console/api/") {
			h.Set("WWW-Authenticate", `Bearer realm="mesh"`)
			http.Error(w, "missing or wrong control token", http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, "/console/login", http.StatusFound)
		return
	}
	c.mux.ServeHTTP(w, r)
}

// authorized reports whether r carries the token, as a bearer token or in
// the sign-in cookie.
func (c *Console) authorized(r *http.Request) bool {
	want := []byte(c.opts.Token)
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && subtle.ConstantTimeCompare([]byte(tok), want) == 1 {
		return true
	}
	ck, err := r.Cookie(cookieName)
	return err == nil && subtle.ConstantTimeCompare([]byte(ck.Value), want) == 1
}

// login shows the sign-in form (GET) or checks the token posted from it
// and keeps it in a cookie for the console's paths (POST).
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		b, err := assets.ReadFile("assets/login.html")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if r.URL.Query().Has("wrong") {
			b = bytes.Replace(b, []byte("<!--wrong-->"), []byte(wrongToken), 1)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(b)
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, 4096)
		tok := r.PostFormValue("token")
		if subtle.ConstantTimeCompare([]byte(tok), []byte(c.opts.Token)) != 1 {
			http.Redirect(w, r, "/console/login?wrong=1", http.StatusSeeOther)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: cookieName, Value: tok, Path: "/console/", HttpOnly: true,
			SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: int((12 * time.Hour).Seconds())})
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// wrongToken is what the sign-in form says after a wrong token.
const wrongToken = `<p class="bad" role="alert">That is not the control token of this mesh. Try again.</p>`

// loopbackHost reports whether the Host header names a loopback address
// or localhost.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
