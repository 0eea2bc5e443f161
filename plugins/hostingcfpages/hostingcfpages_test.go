package hostingcfpages

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mycelium-mesh/mesh/core/provision"
	"github.com/mycelium-mesh/mesh/internal/cfcontract"
	"github.com/mycelium-mesh/mesh/sdk"
)

func TestAssetHashVector(t *testing.T) {
	cases := []struct{ name, content, want string }{
		{"logo.png", "foobar", "2082190357cfd3617ccfe04f340c6247"},
	}
	for _, c := range cases {
		got, err := AssetHash(c.name, strings.NewReader(c.content))
		if err != nil || got != c.want {
			t.Errorf("AssetHash(%s, %q) = %s, %v; want %s", c.name, c.content, got, err, c.want)
		}
	}
}

func TestBuckets(t *testing.T) {
	var as []asset
	for i := 0; i < 4500; i++ {
		a := asset{hash: "h"}
		a.Size = 10
		as = append(as, a)
	}
	big := asset{hash: "big"}
	big.Size = 30 << 20
	as = append(as, big, big)
	bs := buckets(as)
	total := 0
	for _, b := range bs {
		var size int64
		for _, a := range b {
			size += a.Size
		}
		if len(b) > maxBucketFiles || (size > maxBucketBytes && len(b) > 1) {
			t.Fatalf("bucket of %d files, %d bytes", len(b), size)
		}
		total += len(b)
	}
	if total != len(as) {
		t.Fatalf("buckets hold %d assets, want %d", total, len(as))
	}
}

type harness struct {
	t      *testing.T
	cf     *cfcontract.Server
	root   string
	engine *provision.Engine
	rep    *provision.Reporter
	out    *bytes.Buffer
}

func newHarness(t *testing.T, extra sdk.Config) *harness {
	h := &harness{t: t, cf: cfcontract.Start(t), root: t.TempDir(), out: &bytes.Buffer{}}
	t.Setenv("CLOUDFLARE_API_TOKEN", h.cf.Token)
	t.Setenv("CLOUDFLARE_ACCOUNT_ID", h.cf.Account)
	cfg := sdk.Config{"sites_root": h.root, "api_base": h.cf.URL, "request_timeout": "5s", "attempts": 3.0}
	for k, v := range extra {
		cfg[k] = v
	}
	be := New()
	if err := be.Configure(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	h.engine = provision.NewEngine(provision.EngineOptions{
		Backends: provision.BackendMap{provision.ProviderCloudflarePages: {Name: Name, Backend: provision.PluginBackend{Service: be}}},
		Owners:   &provision.Owners{Dir: t.TempDir()},
	})
	h.rep = provision.NewReporter(h.out)
	t.Cleanup(func() {
		for _, v := range h.cf.Violations() {
			t.Errorf("contract violation: %s", v)
		}
		if strings.Contains(h.out.String(), h.cf.Token) {
			t.Errorf("the API token appears in the results")
		}
	})
	return h
}

func (h *harness) write(site string, files map[string]string) {
	h.t.Helper()
	for name, body := range files {
		p := filepath.Join(h.root, site, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			h.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			h.t.Fatal(err)
		}
	}
}

func (h *harness) run(c *provision.Config) provision.Result {
	h.t.Helper()
	res := h.engine.Reconcile(context.Background(), c)
	h.rep.Report(res, nil)
	line, _ := json.Marshal(res)
	h.t.Logf("result: %.600s", line)
	return res
}

func writesOf(calls map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range calls {
		if !strings.HasSuffix(k, ".get") && !strings.HasSuffix(k, ".list") {
			out[k] = v
		}
	}
	return out
}

func siteConfig() *provision.Config {
	return &provision.Config{
		Site:    provision.Site{ID: "blog"},
		Repo:    &provision.Repo{Provider: provision.RepoNone, DefaultBranch: "trunk"},
		Build:   &provision.Build{Type: provision.BuildStaticPrebuilt},
		Domains: &provision.Domains{Primary: "blog.example.org", Aliases: []string{"www.blog.example.org"}},
		Hosting: provision.Hosting{Provider: provision.ProviderCloudflarePages, ProjectName: "blog-site"},
		DNS: &provision.DNS{Provider: provision.ProviderCloudflarePages, ZoneID: "zone1", Records: []provision.DNSRecord{
			{Name: "blog.example.org", Type: "TXT", Value: "v=spf1 -all", TTL: 300},
		}},
	}
}

func TestCreateThenReadOnlyThenMinimalUpload(t *testing.T) {
	h := newHarness(t, nil)
	h.write("blog", map[string]string{"index.html": "<h1>hi</h1>", "404.html": "gone", "a.css": "body{}", "img/logo.png": "foobar"})
	foreign := h.cf.PutRecord("zone1", cfcontract.Record{Name: "mail.example.org", Type: "MX", Content: "mx.example.org", TTL: 300})
	c := siteConfig()

	res := h.run(c)
	if res.Status != provision.StatusApplied {
		t.Fatalf("first run: %s %s", res.Status, res.Error)
	}
	p := h.cf.ProjectState("blog-site")
	if p == nil || p.ProductionBranch != "trunk" || len(p.Domains) != 2 || len(p.Deployments) != 1 {
		t.Fatalf("project after the first run: %+v", p)
	}
	if got := p.Deployments[0].Manifest["/img/logo.png"]; got != "2082190357cfd3617ccfe04f340c6247" {
		t.Fatalf("manifest hash of /img/logo.png = %q", got)
	}
	if n := h.cf.Uploaded(); n != 4 {
		t.Fatalf("first run uploaded %d assets, want 4", n)
	}
	recs := h.cf.Records("zone1")
	want := map[string]string{"blog.example.org TXT": "v=spf1 -all", "www.blog.example.org CNAME": "blog-site.pages.dev", "mail.example.org MX": "mx.example.org"}
	if len(recs) != 3 {
		t.Fatalf("zone after the first run: %+v", recs)
	}
	for _, r := range recs {
		if want[r.Name+" "+r.Type] != r.Content {
			t.Fatalf("record %+v not wanted (%v)", r, want)
		}
	}
	h.cf.Calls()

	// Second run: reads only.
	res = h.run(c)
	if res.Status != provision.StatusUnchanged {
		t.Fatalf("second run: %s %v %s", res.Status, res.Actions, res.Error)
	}
	if w := writesOf(h.cf.Calls()); len(w) != 0 {
		t.Fatalf("second run wrote: %v", w)
	}

	// One file changed: one asset uploaded, one deployment.
	h.write("blog", map[string]string{"a.css": "body{color:red}"})
	res = h.run(c)
	calls := h.cf.Calls()
	if res.Status != provision.StatusApplied || len(res.Actions) != 1 || res.Actions[0].Kind != KindDeployment {
		t.Fatalf("changed run: %s %v %s", res.Status, res.Actions, res.Error)
	}
	if n := h.cf.Uploaded(); n != 1 || calls["deployments.create"] != 1 || calls["projects.edit"] != 0 {
		t.Fatalf("changed run uploaded %d assets; calls %v", n, calls)
	}

	// The production branch changes: the project is edited, nothing else.
	c.Hosting.ProductionBranch = "release"
	res = h.run(c)
	calls = h.cf.Calls()
	if res.Status != provision.StatusApplied || calls["projects.edit"] != 1 || h.cf.ProjectState("blog-site").ProductionBranch != "release" {
		t.Fatalf("branch change: %s %v calls %v", res.Status, res.Actions, calls)
	}

	// Without prune settings, a dropped alias keeps its domain and CNAME.
	c.Domains.Aliases = nil
	if res = h.run(c); res.Status != provision.StatusUnchanged {
		t.Fatalf("alias dropped without prune: %s %v", res.Status, res.Actions)
	}
	if _, ok := h.cf.ProjectState("blog-site").Domains["www.blog.example.org"]; !ok {
		t.Fatal("a domain was removed without prune_domains")
	}

	// The foreign MX record was never touched.
	for _, r := range h.cf.Records("zone1") {
		if r.ID == foreign && (r.Content != "mx.example.org" || r.Comment != "") {
			t.Fatalf("foreign record changed: %+v", r)
		}
	}
}

func TestDNSUpsertAndPrune(t *testing.T) {
	h := newHarness(t, sdk.Config{"prune_dns": true, "prune_domains": true})
	h.write("blog", map[string]string{"index.html": "hi"})
	// A record of the same (name, type) made by someone else is upserted,
	// not duplicated.
	theirs := h.cf.PutRecord("zone1", cfcontract.Record{Name: "blog.example.org", Type: "TXT", Content: "old", TTL: 300})
	c := siteConfig()
	if res := h.run(c); res.Status != provision.StatusApplied {
		t.Fatalf("first run: %s %s", res.Status, res.Error)
	}
	var txt []cfcontract.Record
	for _, r := range h.cf.Records("zone1") {
		if r.Type == "TXT" {
			txt = append(txt, r)
		}
	}
	if len(txt) != 1 || txt[0].ID != theirs || txt[0].Content != "v=spf1 -all" {
		t.Fatalf("TXT records: %+v", txt)
	}
	// The alias leaves: its domain and CNAME (both ours) are removed; the
	// TXT record, which this backend only updated, stays when it leaves.
	c.Domains.Aliases = nil
	c.DNS.Records = nil
	res := h.run(c)
	if res.Status != provision.StatusApplied {
		t.Fatalf("prune run: %s %s", res.Status, res.Error)
	}
	p := h.cf.ProjectState("blog-site")
	if _, ok := p.Domains["www.blog.example.org"]; ok || len(p.Domains) != 1 {
		t.Fatalf("domains after prune: %v", p.Domains)
	}
	names := map[string]bool{}
	for _, r := range h.cf.Records("zone1") {
		names[r.Name+" "+r.Type] = true
	}
	if names["www.blog.example.org CNAME"] || !names["blog.example.org CNAME"] || !names["blog.example.org TXT"] {
		t.Fatalf("records after prune: %v", names)
	}
	t.Logf("records after prune: %v", names)
}

func TestRetriesRefusalsAndTokenRefresh(t *testing.T) {
	h := newHarness(t, nil)
	h.write("blog", map[string]string{"index.html": "hi"})
	c := siteConfig()

	// 429 with Retry-After on the first read: retried, then fine.
	h.cf.Inject(cfcontract.Fault{Route: "projects.get", Status: 429, RetryAfter: "0", Code: 10000, Message: "rate limited"})
	res := h.run(c)
	if calls := h.cf.Calls(); res.Status != provision.StatusApplied || calls["projects.get"] != 2 {
		t.Fatalf("throttled run: %s %s calls %v", res.Status, res.Error, calls)
	}

	// An expired upload token: a 401 on an asset call fetches a new one.
	h.cf.ExpireUploadTokens()
	h.write("blog", map[string]string{"index.html": "hi again"})
	res = h.run(c)
	if calls := h.cf.Calls(); res.Status != provision.StatusApplied || calls["upload-token"] != 1 || calls["assets.check-missing"] != 2 {
		t.Fatalf("token refresh run: %s %s calls %v", res.Status, res.Error, calls)
	}
	// The token is reused across runs until it is refused.
	h.write("blog", map[string]string{"index.html": "third"})
	res = h.run(c)
	calls := h.cf.Calls()
	if res.Status != provision.StatusApplied || calls["upload-token"] != 0 {
		t.Fatalf("third run: %s %s calls %v", res.Status, res.Error, calls)
	}

	// A 400 is reported with Cloudflare's code and message, and not retried.
	c.Domains.Aliases = append(c.Domains.Aliases, "shop.example.org")
	h.cf.Inject(cfcontract.Fault{Route: "domains.create", Status: 400, Code: 8000018, Message: "Domain is not allowed on this account"})
	res = h.run(c)
	calls = h.cf.Calls()
	if res.Status != provision.StatusFailed || !strings.Contains(res.Error, "8000018") || !strings.Contains(res.Error, "Domain is not allowed on this account") {
		t.Fatalf("refused run: %s %q", res.Status, res.Error)
	}
	if calls["domains.create"] != 1 {
		t.Fatalf("a 400 was sent %d times", calls["domains.create"])
	}
	// The next run converges.
	if res = h.run(c); res.Status != provision.StatusApplied {
		t.Fatalf("run after the refusal: %s %s", res.Status, res.Error)
	}
	if res = h.run(c); res.Status != provision.StatusUnchanged {
		t.Fatalf("run after convergence: %s %v", res.Status, res.Actions)
	}
}

func TestMissingCredentialsExit78(t *testing.T) {
	t.Setenv("CLOUDFLARE_API_TOKEN", "")
	t.Setenv("CLOUDFLARE_ACCOUNT_ID", "")
	be := New()
	if err := be.Configure(context.Background(), sdk.Config{"sites_root": t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	engine := provision.NewEngine(provision.EngineOptions{
		Backends: provision.BackendMap{provision.ProviderCloudflarePages: {Name: Name, Backend: provision.PluginBackend{Service: be}}},
		Owners:   &provision.Owners{Dir: t.TempDir()},
	})
	var out bytes.Buffer
	rep := provision.NewReporter(&out)
	res := engine.Reconcile(context.Background(), siteConfig())
	rep.Report(res, nil)
	if rep.ExitCode() != provision.ExitConfigMissing || !errors.Is(res.Err, provision.ErrConfigMissing) {
		t.Fatalf("exit %d, err %v", rep.ExitCode(), res.Err)
	}
	for _, v := range []string{"CLOUDFLARE_API_TOKEN", "CLOUDFLARE_ACCOUNT_ID"} {
		if !strings.Contains(out.String(), v) {
			t.Fatalf("result does not name %s: %s", v, out.String())
		}
	}
}

func TestProjectSettings(t *testing.T) {
	cases := []struct {
		name        string
		c           sdk.SiteConfig
		project, br string
		build       buildConfig
		hasBuild    bool
	}{
		{"defaults", sdk.SiteConfig{Site: sdk.SiteInfo{ID: "s"}}, "s", "main", buildConfig{}, false},
		{"repo branch", sdk.SiteConfig{Site: sdk.SiteInfo{ID: "s"}, Repo: &sdk.RepoInfo{DefaultBranch: "trunk"}}, "s", "trunk", buildConfig{}, false},
		{"hosting wins", sdk.SiteConfig{Site: sdk.SiteInfo{ID: "s"}, Repo: &sdk.RepoInfo{DefaultBranch: "trunk"}, Hosting: sdk.HostingInfo{ProjectName: "p", ProductionBranch: "prod"}}, "p", "prod", buildConfig{}, false},
		{"hugo", sdk.SiteConfig{Site: sdk.SiteInfo{ID: "s"}, Build: &sdk.BuildInfo{Type: "hugoNix", Framework: "hugo"}}, "s", "main", buildConfig{"hugo --minify", "public"}, true},
		{"astro with outputDir", sdk.SiteConfig{Site: sdk.SiteInfo{ID: "s"}, Build: &sdk.BuildInfo{Type: "astroStatic", Framework: "astro", OutputDir: "build"}}, "s", "main", buildConfig{"npx astro build", "build"}, true},
		{"none", sdk.SiteConfig{Site: sdk.SiteInfo{ID: "s"}, Build: &sdk.BuildInfo{Type: "staticPrebuilt", Framework: "none"}}, "s", "main", buildConfig{}, false},
	}
	for _, c := range cases {
		bc, ok := wantBuild(c.c)
		if projectName(c.c) != c.project || productionBranch(c.c) != c.br || bc != c.build || ok != c.hasBuild {
			t.Errorf("%s: project %s branch %s build %+v %v", c.name, projectName(c.c), productionBranch(c.c), bc, ok)
		}
	}
}
