// Package hostingcfpages is the bundled hosting plugin "cloudflare-pages":
// it hosts cloudflarePages sites on Cloudflare Pages through the REST API
// (never wrangler), and keeps the site's DNS records in a Cloudflare zone.
//
// What it ensures, in order:
//
//   - the project, named hosting.projectName else site.id, with the
//     production branch hosting.productionBranch, else repo.defaultBranch,
//     else "main", and for a build.framework its build command and output
//     directory; created when missing, edited when these differ;
//   - the custom domains (domains.primary and aliases), added when missing;
//     one is removed only when this backend added it and prune_domains is
//     set;
//   - for prebuilt sites, a direct-upload deployment: each file's asset
//     hash, only the assets Cloudflare lacks uploaded (in buckets, a few at
//     a time, a fresh upload token on a 401), the hashes upserted and the
//     deployment created with its manifest. The site's content digest rides
//     in the deployment's commit message, so an unchanged site is not
//     deployed again;
//   - with a dns block (provider cloudflarePages), each record upserted by
//     (name, type) in dns.zoneId, plus the CNAME to <project>.pages.dev each
//     custom domain needs unless the message gives a record of that name;
//     a record is removed only when this backend created it and prune_dns
//     is set.
//
// The official SDK (its pages, dns and option packages) makes the project,
// domain, deployment and DNS calls; a small client here makes the four
// asset-upload calls it lacks. One HTTP transport under both gives each
// attempt a timeout and retries 429 and 5xx with jittered backoff,
// honouring Retry-After; other 4xx answers are reported with Cloudflare's
// codes and messages and never retried.
//
// CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID are required; the token
// never appears in a log line, a plan or an error.
package hostingcfpages

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cloudflare/cloudflare-go/v6/option"
	"github.com/cloudflare/cloudflare-go/v6/pages"

	"github.com/mycelium-mesh/mesh/plugins/internal/backoff"
	"github.com/mycelium-mesh/mesh/plugins/internal/sitefiles"
	"github.com/mycelium-mesh/mesh/sdk"
)

// Name is the plugin's name in mesh.hcl.
const Name = "cloudflare-pages"

// Version is the plugin's version.
const Version = "1.0.0"

// DefaultAPI is Cloudflare's v4 API.
const DefaultAPI = "https://api.cloudflare.com/client/v4"

// Resource kinds.
const (
	KindProject    = "project"
	KindDomain     = "domain"
	KindDeployment = "deployment"
	KindDNS        = "dns-record"
)

type settings struct {
	sitesRoot    string
	api          string
	account      string
	token        string
	pruneDomains bool
	pruneDNS     bool
	cnames       bool
	timeout      time.Duration
	attempts     int
	concurrency  int
}

type backend struct {
	mu   sync.RWMutex
	set  settings
	http *http.Client
	// uploads keeps one asset client per project, so its upload token is
	// reused across runs until Cloudflare refuses it.
	uploads map[string]*assetClient
}

// New returns the cloudflare-pages hosting backend.
func New() sdk.HostingBackend { return &backend{} }

func (b *backend) Info() sdk.Info {
	return sdk.Info{Kind: sdk.KindHosting, Name: Name, Version: Version, APIVersions: []uint32{sdk.APIVersion}}
}

func (b *backend) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "sites_root", Type: sdk.TypePath, Default: "", Description: "directory build.outputDir (else the site id) is resolved against (needed to deploy prebuilt sites)"},
		{Name: "api_base", Type: sdk.TypeString, Default: DefaultAPI, Description: "Cloudflare API base URL"},
		{Name: "prune_domains", Type: sdk.TypeBool, Default: false, Description: "remove custom domains this backend added that the site no longer lists"},
		{Name: "prune_dns", Type: sdk.TypeBool, Default: false, Description: "remove DNS records this backend created that the site no longer lists"},
		{Name: "domain_cnames", Type: sdk.TypeBool, Default: true, Description: "with a dns block, ensure a CNAME to <project>.pages.dev for each custom domain"},
		{Name: "request_timeout", Type: sdk.TypeDuration, Default: "60s", Description: "timeout of one API request attempt"},
		{Name: "attempts", Type: sdk.TypeNumber, Default: 5.0, Description: "tries of one request (429, 5xx and connection failures are retried)"},
		{Name: "upload_concurrency", Type: sdk.TypeNumber, Default: 3.0, Description: "asset buckets uploaded at a time"},
	}}
}

func (b *backend) Configure(_ context.Context, cfg sdk.Config) error {
	s := settings{
		sitesRoot:    cfg.String("sites_root", ""),
		api:          strings.TrimRight(cfg.String("api_base", DefaultAPI), "/"),
		account:      os.Getenv("CLOUDFLARE_ACCOUNT_ID"),
		token:        os.Getenv("CLOUDFLARE_API_TOKEN"),
		pruneDomains: cfg.Bool("prune_domains", false),
		pruneDNS:     cfg.Bool("prune_dns", false),
		cnames:       cfg.Bool("domain_cnames", true),
		timeout:      cfg.Duration("request_timeout", 60*time.Second),
		attempts:     max(int(cfg.Number("attempts", 5)), 1),
		concurrency:  max(int(cfg.Number("upload_concurrency", 3)), 1),
	}
	if s.api == "" {
		s.api = DefaultAPI
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.set = s
	b.uploads = map[string]*assetClient{}
	b.http = &http.Client{Transport: &backoff.Transport{
		Policy:  backoff.Policy{Attempts: s.attempts, Base: 250 * time.Millisecond, Max: 30 * time.Second},
		Timeout: s.timeout,
	}}
	return nil
}

// target is what one request resolves to.
type target struct {
	set     settings
	http    *http.Client
	project string
	branch  string
	opts    []option.RequestOption
	assets  *assetClient
	// acct carries the account id as the SDK's parameter field, copied
	// into every call's parameters.
	acct pages.ProjectGetParams
}

func (b *backend) target(req sdk.HostingRequest) (*target, error) {
	b.mu.RLock()
	s, hc := b.set, b.http
	b.mu.RUnlock()
	if hc == nil {
		return nil, fmt.Errorf("cloudflare-pages: not configured")
	}
	var missing []string
	if s.token == "" {
		missing = append(missing, "CLOUDFLARE_API_TOKEN")
	}
	if s.account == "" {
		missing = append(missing, "CLOUDFLARE_ACCOUNT_ID")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("cloudflare-pages needs %s in the environment of mesh provision: %w", strings.Join(missing, " and "), sdk.ErrConfigMissing)
	}
	t := &target{set: s, http: hc, project: projectName(req.Site), branch: productionBranch(req.Site)}
	t.opts = []option.RequestOption{
		option.WithBaseURL(s.api),
		option.WithAPIToken(s.token),
		option.WithHTTPClient(hc),
		option.WithMaxRetries(0), // the transport retries, by this package's policy
	}
	t.acct.AccountID.Value, t.acct.AccountID.Present = s.account, true
	b.mu.Lock()
	t.assets = b.uploads[t.project]
	if t.assets == nil {
		t.assets = &assetClient{http: hc, base: s.api, account: s.account, token: s.token, project: t.project}
		b.uploads[t.project] = t.assets
	}
	b.mu.Unlock()
	return t, nil
}

// projectName is hosting.projectName, else site.id.
func projectName(c sdk.SiteConfig) string {
	if c.Hosting.ProjectName != "" {
		return c.Hosting.ProjectName
	}
	return c.Site.ID
}

// productionBranch is hosting.productionBranch, else repo.defaultBranch,
// else main.
func productionBranch(c sdk.SiteConfig) string {
	switch {
	case c.Hosting.ProductionBranch != "":
		return c.Hosting.ProductionBranch
	case c.Repo != nil && c.Repo.DefaultBranch != "":
		return c.Repo.DefaultBranch
	}
	return "main"
}

// buildConfig is what Pages is told to build a framework with.
type buildConfig struct {
	Command string
	Dir     string
}

// frameworkBuilds maps CfFramework to the build command and output
// directory of a static build with that framework. Pages has no framework
// field: the mapping is the framework.
var frameworkBuilds = map[string]buildConfig{
	"hugo":  {Command: "hugo --minify", Dir: "public"},
	"next":  {Command: "npx next build", Dir: "out"},
	"astro": {Command: "npx astro build", Dir: "dist"},
	"nuxt":  {Command: "npx nuxi generate", Dir: ".output/public"},
}

// wantBuild is the build config a site asks for, or false for none
// (framework none, or no build block).
func wantBuild(c sdk.SiteConfig) (buildConfig, bool) {
	if c.Build == nil {
		return buildConfig{}, false
	}
	bc, ok := frameworkBuilds[c.Build.Framework]
	if !ok {
		return buildConfig{}, false
	}
	if c.Build.OutputDir != "" && c.Build.OutputDir != "." {
		bc.Dir = c.Build.OutputDir
	}
	return bc, true
}

// prebuilt reports whether the site's files are deployed by direct upload.
func prebuilt(c sdk.SiteConfig) bool { return c.Build == nil || c.Build.Type == "staticPrebuilt" }

func (t *target) siteDir(c sdk.SiteConfig) (string, error) {
	if t.set.sitesRoot == "" {
		return "", fmt.Errorf(`cloudflare-pages needs sites_root in its plugin "hosting" "cloudflare-pages" config block to deploy prebuilt files: %w`, sdk.ErrConfigMissing)
	}
	if c.Repo != nil && c.Repo.Provider != "none" {
		return "", fmt.Errorf("cloudflare-pages deploys prebuilt files under sites_root; repo.provider %s is not fetched", c.Repo.Provider)
	}
	return sitefiles.Dir(t.set.sitesRoot, c), nil
}

// ValidateConfig says whether Configure would accept cfg, by configuring a
// fresh value: Configure only parses, so nothing outside changes.
func (b *backend) ValidateConfig(ctx context.Context, cfg sdk.Config) error {
	return New().Configure(ctx, cfg)
}
