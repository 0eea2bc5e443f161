package cfcontract

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

var (
	hashRE    = regexp.MustCompile(`^[0-9a-f]{32}$`)
	projectRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,57}$`)
	created   = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)
)

type buildConfigBody struct {
	BuildCommand    *string `json:"build_command,omitempty"`
	DestinationDir  *string `json:"destination_dir,omitempty"`
	RootDir         *string `json:"root_dir,omitempty"`
	BuildCaching    *bool   `json:"build_caching,omitempty"`
	WebAnalyticsTag *string `json:"web_analytics_tag,omitempty"`
}

type projectBody struct {
	Name              *string          `json:"name"`
	ProductionBranch  *string          `json:"production_branch"`
	BuildConfig       *buildConfigBody `json:"build_config"`
	DeploymentConfigs json.RawMessage  `json:"deployment_configs"`
	Source            json.RawMessage  `json:"source"`
}

func (s *Server) projectJSON(p *Project) map[string]any {
	domains := make([]string, 0, len(p.Domains))
	for d := range p.Domains {
		domains = append(domains, d)
	}
	sort.Strings(domains)
	out := map[string]any{
		"id": "proj-" + p.Name, "name": p.Name, "subdomain": p.Name + ".pages.dev",
		"production_branch": p.ProductionBranch, "created_on": created, "domains": domains,
		"build_config":         map[string]any{"build_command": p.BuildCommand, "destination_dir": p.DestinationDir, "root_dir": ""},
		"canonical_deployment": nil, "latest_deployment": nil,
	}
	if n := len(p.Deployments); n > 0 {
		latest := p.Deployments[n-1]
		out["latest_deployment"] = deploymentJSON(p, latest)
		for i := n - 1; i >= 0; i-- {
			if p.Deployments[i].Branch == p.ProductionBranch {
				out["canonical_deployment"] = deploymentJSON(p, p.Deployments[i])
				break
			}
		}
	}
	return out
}

func deploymentJSON(p *Project, d Deployment) map[string]any {
	env := "preview"
	if d.Branch == p.ProductionBranch {
		env = "production"
	}
	return map[string]any{
		"id": d.ID, "project_name": p.Name, "environment": env, "created_on": created,
		"url": "https://" + d.ID + "." + p.Name + ".pages.dev",
		"deployment_trigger": map[string]any{"type": "ad_hoc", "metadata": map[string]any{
			"branch": d.Branch, "commit_hash": "", "commit_message": d.CommitMessage, "commit_dirty": false}},
	}
}

func (s *Server) listProjects(w http.ResponseWriter, _ *http.Request, _ []string) {
	names := make([]string, 0, len(s.projects))
	for n := range s.projects {
		names = append(names, n)
	}
	sort.Strings(names)
	out := []any{}
	for _, n := range names {
		out = append(out, s.projectJSON(s.projects[n]))
	}
	reply(w, 200, out, map[string]any{"page": 1, "per_page": 100, "count": len(out), "total_count": len(out)})
}

func (s *Server) createProject(w http.ResponseWriter, r *http.Request, _ []string) {
	var b projectBody
	if !s.decode(w, r, &b) {
		return
	}
	if b.Name == nil || !projectRE.MatchString(*b.Name) || b.ProductionBranch == nil || *b.ProductionBranch == "" {
		s.violate("create project: name and production_branch are required (got %+v)", b)
		fail(w, 400, 8000007, "name and production_branch are required")
		return
	}
	if _, ok := s.projects[*b.Name]; ok {
		fail(w, 409, 8000002, "A project with this name already exists")
		return
	}
	p := &Project{Name: *b.Name, ProductionBranch: *b.ProductionBranch, Domains: map[string]string{}}
	applyBuild(p, b.BuildConfig)
	s.projects[p.Name] = p
	reply(w, 200, s.projectJSON(p), nil)
}

func applyBuild(p *Project, bc *buildConfigBody) {
	if bc == nil {
		return
	}
	if bc.BuildCommand != nil {
		p.BuildCommand = *bc.BuildCommand
	}
	if bc.DestinationDir != nil {
		p.DestinationDir = *bc.DestinationDir
	}
}

func (s *Server) project(w http.ResponseWriter, name string) *Project {
	p := s.projects[name]
	if p == nil {
		fail(w, 404, 8000007, "Project not found. The specified project name does not match any of your existing projects.")
	}
	return p
}

func (s *Server) getProject(w http.ResponseWriter, _ *http.Request, m []string) {
	if p := s.project(w, m[2]); p != nil {
		reply(w, 200, s.projectJSON(p), nil)
	}
}

func (s *Server) editProject(w http.ResponseWriter, r *http.Request, m []string) {
	p := s.project(w, m[2])
	if p == nil {
		return
	}
	var b projectBody
	if !s.decode(w, r, &b) {
		return
	}
	if b.Name != nil && *b.Name != p.Name {
		s.violate("edit project %s: renaming is not what the backend does", p.Name)
	}
	if b.ProductionBranch != nil {
		p.ProductionBranch = *b.ProductionBranch
	}
	applyBuild(p, b.BuildConfig)
	reply(w, 200, s.projectJSON(p), nil)
}

func domainJSON(name, status string) map[string]any {
	return map[string]any{"id": "dom-" + name, "domain_id": "dom-" + name, "name": name, "status": status,
		"created_on": created, "zone_tag": "", "certificate_authority": "google",
		"validation_data":   map[string]any{"status": status, "method": "http"},
		"verification_data": map[string]any{"status": status}}
}

func (s *Server) listDomains(w http.ResponseWriter, _ *http.Request, m []string) {
	p := s.project(w, m[2])
	if p == nil {
		return
	}
	names := make([]string, 0, len(p.Domains))
	for d := range p.Domains {
		names = append(names, d)
	}
	sort.Strings(names)
	out := []any{}
	for _, d := range names {
		out = append(out, domainJSON(d, p.Domains[d]))
	}
	reply(w, 200, out, map[string]any{"page": 1, "per_page": len(out), "count": len(out), "total_count": len(out)})
}

func (s *Server) createDomain(w http.ResponseWriter, r *http.Request, m []string) {
	p := s.project(w, m[2])
	if p == nil {
		return
	}
	var b struct {
		Name *string `json:"name"`
	}
	if !s.decode(w, r, &b) {
		return
	}
	if b.Name == nil || !strings.Contains(*b.Name, ".") {
		s.violate("add domain: name is required and must be a host name")
		fail(w, 400, 8000018, "Invalid domain name")
		return
	}
	if _, ok := p.Domains[*b.Name]; ok {
		fail(w, 409, 8000018, "You have already added this custom domain.")
		return
	}
	p.Domains[*b.Name] = "pending"
	reply(w, 200, domainJSON(*b.Name, "pending"), nil)
}

func (s *Server) deleteDomain(w http.ResponseWriter, _ *http.Request, m []string) {
	p := s.project(w, m[2])
	if p == nil {
		return
	}
	if _, ok := p.Domains[m[3]]; !ok {
		fail(w, 404, 8000019, "Domain not found")
		return
	}
	delete(p.Domains, m[3])
	reply(w, 200, nil, nil)
}

func (s *Server) uploadToken(w http.ResponseWriter, _ *http.Request, m []string) {
	if s.project(w, m[2]) == nil {
		return
	}
	s.jwtSeq++
	jwt := fmt.Sprintf("jwt.%s.%d", m[2], s.jwtSeq)
	s.jwts[jwt] = true
	reply(w, 200, map[string]any{"jwt": jwt}, nil)
}

type hashesBody struct {
	Hashes []string `json:"hashes"`
}

func (s *Server) hashes(w http.ResponseWriter, r *http.Request) ([]string, bool) {
	var b hashesBody
	if !s.decode(w, r, &b) {
		return nil, false
	}
	if b.Hashes == nil {
		s.violate("%s: hashes is required", r.URL.Path)
		fail(w, 400, 8000096, "hashes is required")
		return nil, false
	}
	for _, h := range b.Hashes {
		if !hashRE.MatchString(h) {
			s.violate("%s: %q is not an asset hash", r.URL.Path, h)
			fail(w, 400, 8000096, "Invalid hash")
			return nil, false
		}
	}
	return b.Hashes, true
}

func (s *Server) checkMissing(w http.ResponseWriter, r *http.Request, _ []string) {
	hs, ok := s.hashes(w, r)
	if !ok {
		return
	}
	missing := []string{}
	for _, h := range hs {
		if _, ok := s.assets[h]; !ok {
			missing = append(missing, h)
		}
	}
	reply(w, 200, missing, nil)
}

func (s *Server) upload(w http.ResponseWriter, r *http.Request, _ []string) {
	var entries []struct {
		Key      *string           `json:"key"`
		Value    *string           `json:"value"`
		Metadata map[string]string `json:"metadata"`
		Base64   *bool             `json:"base64"`
	}
	if !s.decode(w, r, &entries) {
		return
	}
	if len(entries) == 0 || len(entries) > 2000 {
		s.violate("upload: %d entries in one bucket (1 to 2000)", len(entries))
	}
	for i, e := range entries {
		if e.Key == nil || !hashRE.MatchString(*e.Key) || e.Value == nil || e.Base64 == nil || !*e.Base64 || e.Metadata["contentType"] == "" {
			s.violate("upload: entry %d lacks key, value, base64: true or metadata.contentType", i)
			fail(w, 400, 8000096, "Invalid upload entry")
			return
		}
		raw, err := base64.StdEncoding.DecodeString(*e.Value)
		if err != nil {
			s.violate("upload: entry %d value is not base64", i)
			fail(w, 400, 8000096, "Invalid base64")
			return
		}
		s.assets[*e.Key] = Asset{ContentType: e.Metadata["contentType"], Size: len(raw)}
	}
	s.uploaded += len(entries)
	reply(w, 200, nil, nil)
}

func (s *Server) upsertHashes(w http.ResponseWriter, r *http.Request, _ []string) {
	hs, ok := s.hashes(w, r)
	if !ok {
		return
	}
	for _, h := range hs {
		if _, ok := s.assets[h]; !ok {
			s.violate("upsert-hashes: %s was never uploaded", h)
		}
		s.upserted[h] = true
	}
	reply(w, 200, nil, nil)
}

func (s *Server) createDeployment(w http.ResponseWriter, r *http.Request, m []string) {
	p := s.project(w, m[2])
	if p == nil {
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		s.violate("create deployment: Content-Type %q, want multipart/form-data", r.Header.Get("Content-Type"))
		fail(w, 400, 8000000, "multipart/form-data required")
		return
	}
	if err := r.ParseMultipartForm(32 << 20); err != nil {
		s.violate("create deployment: %v", err)
		fail(w, 400, 8000000, "Malformed multipart body")
		return
	}
	var manifest map[string]string
	if err := json.Unmarshal([]byte(r.FormValue("manifest")), &manifest); err != nil || len(manifest) == 0 {
		s.violate("create deployment: manifest is not a JSON object of paths to hashes")
		fail(w, 400, 8000000, "Invalid manifest")
		return
	}
	if len(manifest) > 20000 {
		fail(w, 400, 8000000, "Too many files")
		return
	}
	for path, h := range manifest {
		if !strings.HasPrefix(path, "/") || !hashRE.MatchString(h) {
			s.violate("create deployment: manifest entry %q: %q", path, h)
		}
		if !s.upserted[h] {
			s.violate("create deployment: %s (%s) was not uploaded and upserted first", h, path)
			fail(w, 400, 8000000, "Manifest references an asset that was not uploaded")
			return
		}
	}
	for k := range r.MultipartForm.Value {
		switch k {
		case "manifest", "branch", "commit_hash", "commit_message", "commit_dirty", "pages_build_output_dir", "wrangler_config_hash":
		default:
			s.violate("create deployment: unknown form field %q", k)
		}
	}
	branch := r.FormValue("branch")
	if branch == "" {
		branch = p.ProductionBranch
	}
	s.deployments++
	d := Deployment{ID: "dep" + strconv.Itoa(s.deployments), Branch: branch, CommitMessage: r.FormValue("commit_message"), Manifest: manifest}
	p.Deployments = append(p.Deployments, d)
	reply(w, 200, deploymentJSON(p, d), nil)
}

type recordBody struct {
	Name           *string         `json:"name"`
	Type           *string         `json:"type"`
	Content        *string         `json:"content"`
	TTL            *float64        `json:"ttl"`
	Comment        *string         `json:"comment"`
	Proxied        *bool           `json:"proxied"`
	Priority       *float64        `json:"priority"`
	Tags           json.RawMessage `json:"tags"`
	Data           json.RawMessage `json:"data"`
	Settings       json.RawMessage `json:"settings"`
	PrivateRouting *bool           `json:"private_routing"`
}

func recordJSON(r *Record) map[string]any {
	return map[string]any{"id": r.ID, "name": r.Name, "type": r.Type, "content": r.Content, "ttl": r.TTL,
		"comment": r.Comment, "proxied": false, "proxiable": true, "created_on": created, "modified_on": created, "meta": map[string]any{}, "tags": []string{}}
}

func (s *Server) listRecords(w http.ResponseWriter, r *http.Request, m []string) {
	recs := s.zones[m[1]]
	ids := make([]string, 0, len(recs))
	for id := range recs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	if page < 1 {
		page = 1
	}
	if per < 1 {
		per = 2 // small pages, so paging is exercised
	}
	out := []any{}
	for i := (page - 1) * per; i < len(ids) && i < page*per; i++ {
		out = append(out, recordJSON(recs[ids[i]]))
	}
	reply(w, 200, out, map[string]any{"page": page, "per_page": per, "count": len(out), "total_count": len(ids)})
}

func (s *Server) recordFromBody(w http.ResponseWriter, r *http.Request, rec *Record, create bool) bool {
	var b recordBody
	if !s.decode(w, r, &b) {
		return false
	}
	if create && (b.Name == nil || b.Type == nil || b.Content == nil || b.TTL == nil) {
		s.violate("create dns record: name, type, content and ttl are required")
		fail(w, 400, 9000, "DNS name, type, content and ttl are required")
		return false
	}
	if b.TTL != nil && *b.TTL != 1 && (*b.TTL < 30 || *b.TTL > 86400) {
		fail(w, 400, 9021, "Invalid TTL. Must be between 30 and 86400 seconds, or 1 for Automatic.")
		return false
	}
	if b.Name != nil {
		rec.Name = strings.ToLower(*b.Name)
	}
	if b.Type != nil {
		rec.Type = strings.ToUpper(*b.Type)
	}
	if b.Content != nil {
		rec.Content = *b.Content
	}
	if b.TTL != nil {
		rec.TTL = *b.TTL
	}
	if b.Comment != nil {
		rec.Comment = *b.Comment
	}
	return true
}

func (s *Server) createRecord(w http.ResponseWriter, r *http.Request, m []string) {
	rec := &Record{}
	if !s.recordFromBody(w, r, rec, true) {
		return
	}
	for _, o := range s.zones[m[1]] {
		if o.Name == rec.Name && o.Type == rec.Type && o.Type == "CNAME" {
			fail(w, 400, 81053, "An A, AAAA, or CNAME record with that host already exists.")
			return
		}
	}
	s.recSeq++
	rec.ID = fmt.Sprintf("rec%04d", s.recSeq)
	if s.zones[m[1]] == nil {
		s.zones[m[1]] = map[string]*Record{}
	}
	s.zones[m[1]][rec.ID] = rec
	reply(w, 200, recordJSON(rec), nil)
}

func (s *Server) editRecord(w http.ResponseWriter, r *http.Request, m []string) {
	rec := s.zones[m[1]][m[2]]
	if rec == nil {
		fail(w, 404, 81044, "Record does not exist.")
		return
	}
	if s.recordFromBody(w, r, rec, false) {
		reply(w, 200, recordJSON(rec), nil)
	}
}

func (s *Server) deleteRecord(w http.ResponseWriter, _ *http.Request, m []string) {
	if s.zones[m[1]][m[2]] == nil {
		fail(w, 404, 81044, "Record does not exist.")
		return
	}
	delete(s.zones[m[1]], m[2])
	reply(w, 200, map[string]any{"id": m[2]}, nil)
}
