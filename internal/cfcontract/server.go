// Package cfcontract is a stand-in for the part of Cloudflare's v4 API that
// the cloudflare-pages hosting plugin uses, for tests. It implements the
// documented endpoints and envelope ({success, errors, messages, result}),
// checks every request's method, path, auth header and body shape, and
// keeps state (projects, domains, assets, deployments, DNS records) so that
// idempotence can be observed: it counts calls by route, and a test can
// queue faults (429 with Retry-After, 5xx, a refusal) and expire upload
// tokens.
//
// A request it does not understand is answered 404 or 400 and recorded as
// a violation; tests assert there are none. It is a contract as read from
// the API's documentation, not Cloudflare: behaviour the documentation does
// not state is not imitated.
package cfcontract

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is one contract server.
type Server struct {
	// URL is the API base (as api_base in the plugin's config).
	URL     string
	Token   string
	Account string

	mu          sync.Mutex
	projects    map[string]*Project
	assets      map[string]Asset
	upserted    map[string]bool
	jwts        map[string]bool
	jwtSeq      int
	zones       map[string]map[string]*Record
	recSeq      int
	calls       map[string]int
	uploaded    int
	faults      []Fault
	violations  []string
	deployments int
}

// Project is the server's state of one Pages project.
type Project struct {
	Name             string
	ProductionBranch string
	BuildCommand     string
	DestinationDir   string
	Domains          map[string]string // name → status
	Deployments      []Deployment
}

// Deployment is one deployment of a project.
type Deployment struct {
	ID            string
	Branch        string
	CommitMessage string
	Manifest      map[string]string
}

// Asset is one stored asset.
type Asset struct {
	ContentType string
	Size        int
}

// Record is one DNS record.
type Record struct {
	ID, Name, Type, Content, Comment string
	TTL                              float64
}

// Fault is an answer to give instead of handling a request.
type Fault struct {
	Route      string // as counted by Calls, e.g. "projects.get"
	Status     int
	RetryAfter string
	Code       int
	Message    string
	Times      int // how many requests it answers (default 1)
}

// Start runs a contract server on loopback until the test ends.
func Start(t testing.TB) *Server {
	s := &Server{
		Token: "cf-test-token-" + strconv.FormatInt(time.Now().UnixNano(), 36), Account: "acc0123456789",
		projects: map[string]*Project{}, assets: map[string]Asset{}, upserted: map[string]bool{},
		jwts: map[string]bool{}, zones: map[string]map[string]*Record{}, calls: map[string]int{},
	}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL + "/client/v4"
	return s
}

// Calls returns the count of requests per route and resets it.
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls
	s.calls = map[string]int{}
	return c
}

// Uploaded returns how many asset entries were uploaded and resets it.
func (s *Server) Uploaded() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.uploaded
	s.uploaded = 0
	return n
}

// Violations returns what requests broke the contract.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

// Inject queues a fault.
func (s *Server) Inject(f Fault) {
	if f.Times == 0 {
		f.Times = 1
	}
	s.mu.Lock()
	s.faults = append(s.faults, f)
	s.mu.Unlock()
}

// ExpireUploadTokens makes every upload JWT handed out so far invalid.
func (s *Server) ExpireUploadTokens() {
	s.mu.Lock()
	s.jwts = map[string]bool{}
	s.mu.Unlock()
}

// ProjectState returns a copy of a project, or nil.
func (s *Server) ProjectState(name string) *Project {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.projects[name]
	if p == nil {
		return nil
	}
	cp := *p
	cp.Domains = map[string]string{}
	for k, v := range p.Domains {
		cp.Domains[k] = v
	}
	cp.Deployments = append([]Deployment(nil), p.Deployments...)
	return &cp
}

// PutRecord adds a record to a zone as someone else would.
func (s *Server) PutRecord(zone string, r Record) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recSeq++
	r.ID = fmt.Sprintf("rec%04d", s.recSeq)
	if s.zones[zone] == nil {
		s.zones[zone] = map[string]*Record{}
	}
	s.zones[zone][r.ID] = &r
	return r.ID
}

// Records returns a zone's records sorted by name and type.
func (s *Server) Records(zone string) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Record
	for _, r := range s.zones[zone] {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name+out[i].Type < out[j].Name+out[j].Type })
	return out
}

// --- envelope ---

type apiErr struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func reply(w http.ResponseWriter, status int, result any, info any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	env := map[string]any{"success": status < 300, "errors": []apiErr{}, "messages": []apiErr{}, "result": result}
	if info != nil {
		env["result_info"] = info
	}
	_ = json.NewEncoder(w).Encode(env)
}

func fail(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"success": false, "errors": []apiErr{{code, msg}}, "messages": []apiErr{}, "result": nil})
}

// --- routing ---

type route struct {
	method, name string
	pattern      *regexp.Regexp
	auth         string // "token" or "jwt"
	handle       func(s *Server, w http.ResponseWriter, r *http.Request, m []string)
}

var routes = []route{
	{"GET", "projects.list", regexp.MustCompile(`^/accounts/([^/]+)/pages/projects$`), "token", (*Server).listProjects},
	{"POST", "projects.create", regexp.MustCompile(`^/accounts/([^/]+)/pages/projects$`), "token", (*Server).createProject},
	{"GET", "projects.get", regexp.MustCompile(`^/accounts/([^/]+)/pages/projects/([^/]+)$`), "token", (*Server).getProject},
	{"PATCH", "projects.edit", regexp.MustCompile(`^/accounts/([^/]+)/pages/projects/([^/]+)$`), "token", (*Server).editProject},
	{"GET", "domains.list", regexp.MustCompile(`^/accounts/([^/]+)/pages/projects/([^/]+)/domains$`), "token", (*Server).listDomains},
	{"POST", "domains.create", regexp.MustCompile(`^/accounts/([^/]+)/pages/projects/([^/]+)/domains$`), "token", (*Server).createDomain},
	{"DELETE", "domains.delete", regexp.MustCompile(`^/accounts/([^/]+)/pages/projects/([^/]+)/domains/([^/]+)$`), "token", (*Server).deleteDomain},
	{"GET", "upload-token", regexp.MustCompile(`^/accounts/([^/]+)/pages/projects/([^/]+)/upload-token$`), "token", (*Server).uploadToken},
	{"POST", "deployments.create", regexp.MustCompile(`^/accounts/([^/]+)/pages/projects/([^/]+)/deployments$`), "token", (*Server).createDeployment},
	{"POST", "assets.check-missing", regexp.MustCompile(`^/pages/assets/check-missing$`), "jwt", (*Server).checkMissing},
	{"POST", "assets.upload", regexp.MustCompile(`^/pages/assets/upload$`), "jwt", (*Server).upload},
	{"POST", "assets.upsert-hashes", regexp.MustCompile(`^/pages/assets/upsert-hashes$`), "jwt", (*Server).upsertHashes},
	{"GET", "dns.list", regexp.MustCompile(`^/zones/([^/]+)/dns_records$`), "token", (*Server).listRecords},
	{"POST", "dns.create", regexp.MustCompile(`^/zones/([^/]+)/dns_records$`), "token", (*Server).createRecord},
	{"PATCH", "dns.edit", regexp.MustCompile(`^/zones/([^/]+)/dns_records/([^/]+)$`), "token", (*Server).editRecord},
	{"DELETE", "dns.delete", regexp.MustCompile(`^/zones/([^/]+)/dns_records/([^/]+)$`), "token", (*Server).deleteRecord},
}

func (s *Server) violate(format string, a ...any) {
	s.violations = append(s.violations, fmt.Sprintf(format, a...))
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	p, ok := strings.CutPrefix(r.URL.Path, "/client/v4")
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok {
		s.violate("%s %s: not under /client/v4", r.Method, r.URL.Path)
		fail(w, 404, 7000, "No route for that URI")
		return
	}
	pathMatched := false
	for _, rt := range routes {
		m := rt.pattern.FindStringSubmatch(p)
		if m == nil {
			continue
		}
		pathMatched = true
		if rt.method != r.Method {
			continue
		}
		s.calls[rt.name]++
		if strings.HasPrefix(p, "/accounts/") && m[1] != s.Account {
			s.violate("%s %s: account %q, want %q", r.Method, p, m[1], s.Account)
			fail(w, 403, 9109, "Unauthorized to access requested resource")
			return
		}
		auth := r.Header.Get("Authorization")
		switch rt.auth {
		case "token":
			if auth != "Bearer "+s.Token {
				s.violate("%s %s: Authorization is not the API token", r.Method, p)
				fail(w, 401, 10000, "Authentication error")
				return
			}
		case "jwt":
			jwt, _ := strings.CutPrefix(auth, "Bearer ")
			if auth == "Bearer "+s.Token {
				s.violate("%s %s: the API token was sent instead of an upload JWT", r.Method, p)
			}
			if !s.jwts[jwt] {
				fail(w, 401, 8000000, "Invalid or expired upload token")
				return
			}
		}
		for i := range s.faults {
			f := &s.faults[i]
			if f.Route == rt.name && f.Times > 0 {
				f.Times--
				if f.RetryAfter != "" {
					w.Header().Set("Retry-After", f.RetryAfter)
				}
				fail(w, f.Status, f.Code, f.Message)
				return
			}
		}
		rt.handle(s, w, r, m)
		return
	}
	if pathMatched {
		s.violate("%s %s: method not allowed", r.Method, p)
		fail(w, 405, 7001, "Method not allowed for this endpoint")
		return
	}
	s.violate("%s %s: no such endpoint", r.Method, p)
	fail(w, 404, 7003, "No route for that URI")
}

// decode reads a JSON body into v, refusing unknown fields and trailing
// data, and records a violation when the shape is wrong.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		s.violate("%s %s: Content-Type %q, want application/json", r.Method, r.URL.Path, ct)
		fail(w, 400, 10002, "Content-Type must be application/json")
		return false
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		s.violate("%s %s: body: %v", r.Method, r.URL.Path, err)
		fail(w, 400, 10002, "Malformed request body: "+err.Error())
		return false
	}
	return true
}
