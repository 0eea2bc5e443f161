// Package hostingapp is the bundled hosting plugin "mesh-app": it hosts
// criomosHost sites as mesh apps. The site's files (build.outputDir under
// sites_root) are appended to the static file server (workloads/siteserve,
// named by the server attribute), packed into a .spore signed with the
// operator's key, published, and rolled out blue/green to the site's app
// like any app, so the site is supervised, health-gated and respawned like
// one. Its domains route to the app by Host.
//
// The app is "site-<site id>" (or hosting.projectName). When mesh.hcl
// declares no app of that name, the mesh creates it for the site (one
// instance per agent, restart on-failure) and the site owns it: reloads keep
// it, deleting the site withdraws it. An app declared in mesh.hcl is used as
// it is.
//
// Resources, by natural key: "release" keyed by the app (version: the
// digest of the site's files) and "route" keyed by host name.
package hostingapp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/mycelium-mesh/mesh/core/siteapi"
	"github.com/mycelium-mesh/mesh/core/sitesnap"
	"github.com/mycelium-mesh/mesh/core/spore"
	"github.com/mycelium-mesh/mesh/sdk"
)

// Name is the plugin's name in mesh.hcl.
const Name = "mesh-app"

// Version is the plugin's version.
const Version = "1.0.0"

type backend struct {
	mu        sync.RWMutex
	sitesRoot string
	server    string
	key       string
	client    *siteapi.Client
}

// New returns the mesh-app hosting backend.
func New() sdk.HostingBackend { return &backend{} }

func (b *backend) Info() sdk.Info {
	return sdk.Info{Kind: sdk.KindHosting, Name: Name, Version: Version, APIVersions: []uint32{sdk.APIVersion}}
}

func (b *backend) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "sites_root", Type: sdk.TypePath, Default: "", Description: "directory build.outputDir is resolved against"},
		{Name: "server", Type: sdk.TypePath, Default: "", Description: "the static file server executable (go build ./workloads/siteserve)"},
		{Name: "key", Type: sdk.TypePath, Default: "", Description: "the operator's signing key (mesh keygen); its public key must be in trusted_keys"},
		{Name: "control_addr", Type: sdk.TypeString, Default: "", Description: "the mesh's control API (default: MESH_ADDR)"},
		{Name: "token", Type: sdk.TypeString, Default: "", Description: "bearer token for a TCP control API (default: MESH_HOSTING_TOKEN, set by mesh provision)"},
	}}
}

func (b *backend) Configure(_ context.Context, cfg sdk.Config) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sitesRoot = cfg.String("sites_root", "")
	b.server = cfg.String("server", "")
	b.key = cfg.String("key", "")
	addr, token := cfg.String("control_addr", ""), cfg.String("token", "")
	if addr == "" {
		addr = os.Getenv("MESH_ADDR")
	}
	if token == "" {
		token = os.Getenv(sdk.HostingTokenEnv)
	}
	b.client = nil
	if addr != "" {
		c, err := siteapi.NewClient(addr, token)
		if err != nil {
			return err
		}
		b.client = c
	}
	return nil
}

type target struct {
	client           *siteapi.Client
	dir, server, key string
	app, site        string
}

func (b *backend) target(req sdk.HostingRequest) (target, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	switch {
	case b.client == nil:
		return target{}, fmt.Errorf("mesh-app needs the mesh's control address (mesh provision -config mesh.hcl or -addr): %w", sdk.ErrConfigMissing)
	case b.sitesRoot == "" || b.server == "" || b.key == "":
		return target{}, fmt.Errorf(`mesh-app needs sites_root, server and key in its plugin "hosting" "mesh-app" config block: %w`, sdk.ErrConfigMissing)
	case req.Site.Repo != nil && req.Site.Repo.Provider != "none":
		return target{}, fmt.Errorf("mesh-app hosts prebuilt files under sites_root; repo.provider %s is not fetched", req.Site.Repo.Provider)
	case req.Site.Domains == nil:
		return target{}, errors.New("mesh-app routes sites by Host: domains.primary is required")
	case len(req.BuildCommand) > 0:
		return target{}, errors.New("mesh-app hosts prebuilt files only (staticPrebuilt)")
	}
	out := req.Site.Site.ID
	if req.Site.Build != nil && req.Site.Build.OutputDir != "" && req.Site.Build.OutputDir != "." {
		out = req.Site.Build.OutputDir
	}
	app := "site-" + req.Site.Site.ID
	if req.Site.Hosting.ProjectName != "" {
		app = req.Site.Hosting.ProjectName
	}
	return target{client: b.client, dir: filepath.Join(b.sitesRoot, filepath.FromSlash(out)), server: b.server, key: b.key, app: app, site: req.Site.Site.ID}, nil
}

func (b *backend) Observe(ctx context.Context, req sdk.HostingRequest) ([]sdk.HostingResource, error) {
	t, err := b.target(req)
	if err != nil {
		return nil, err
	}
	st, err := t.client.Site(ctx, req.Site.Site.ID)
	if errors.Is(err, siteapi.ErrNoSite) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	release := sdk.HostingResource{Kind: "release", Key: st.App, Version: st.Content}
	if st.App != "" {
		// The app itself, not only the record: a mesh that lost its
		// fabric store holds no plan for it, and the release is made again.
		app, err := t.client.SiteApp(ctx, req.Site.Site.ID)
		switch {
		case errors.Is(err, siteapi.ErrNoSite):
			release.Version = ""
		case err != nil:
			return nil, err
		case app.Digest == "":
			release.Version = ""
		}
	}
	out := []sdk.HostingResource{release}
	for _, d := range st.Domains {
		out = append(out, sdk.HostingResource{Kind: "route", Key: d, Version: st.ID})
	}
	return out, nil
}

func (b *backend) Plan(ctx context.Context, req sdk.HostingRequest, actual []sdk.HostingResource) ([]sdk.HostingAction, error) {
	t, err := b.target(req)
	if err != nil {
		return nil, err
	}
	m, err := sitesnap.Scan(t.dir)
	if err != nil {
		return nil, err
	}
	if _, ok := m["index.html"]; !ok {
		return nil, fmt.Errorf("%s has no index.html", t.dir)
	}
	want := m.Digest()
	op := sdk.OpCreate
	have := map[string]bool{}
	for _, r := range actual {
		switch r.Kind {
		case "release":
			op = sdk.OpUpdate
			if r.Key == t.app && r.Version == want {
				op = ""
			}
		case "route":
			have[r.Key] = true
		}
	}
	var acts []sdk.HostingAction
	if op != "" {
		acts = append(acts, sdk.HostingAction{Op: op, Kind: "release", Key: t.app, Detail: want})
	}
	wantHosts := map[string]bool{}
	for _, h := range req.Site.Domains.All() {
		wantHosts[h] = true
		if !have[h] {
			acts = append(acts, sdk.HostingAction{Op: sdk.OpCreate, Kind: "route", Key: h, Detail: t.app})
		}
	}
	var gone []string
	for h := range have {
		if !wantHosts[h] {
			gone = append(gone, h)
		}
	}
	sort.Strings(gone)
	for _, h := range gone {
		acts = append(acts, sdk.HostingAction{Op: sdk.OpDelete, Kind: "route", Key: h})
	}
	return acts, nil
}

// Apply packs, publishes and rolls out a new release when the files
// changed, then points the site's hosts at the app.
func (b *backend) Apply(ctx context.Context, req sdk.HostingRequest, actions []sdk.HostingAction, done func(sdk.HostingAction)) error {
	t, err := b.target(req)
	if err != nil {
		return err
	}
	m, err := sitesnap.Scan(t.dir)
	if err != nil {
		return err
	}
	content := m.Digest()
	release := false
	for _, a := range actions {
		release = release || a.Kind == "release"
	}
	if release {
		if err := b.release(ctx, t, m, content); err != nil {
			return err
		}
	}
	st := siteapi.Site{ID: req.Site.Site.ID, Domains: req.Site.Domains.All(), App: t.app, Content: content}
	if _, err := t.client.PutSite(ctx, st); err != nil {
		return fmt.Errorf("set site %s: %w", st.ID, err)
	}
	for _, a := range actions {
		if a.Kind == "release" {
			a.Detail = content
		}
		done(a)
	}
	return nil
}

func (b *backend) release(ctx context.Context, t target, m sitesnap.Manifest, content string) error {
	key, err := spore.ReadPrivateKey(t.key)
	if err != nil {
		return fmt.Errorf("%w: %w", sdk.ErrConfigMissing, err)
	}
	work, err := os.MkdirTemp("", "mesh-app-")
	if err != nil {
		return fmt.Errorf("work dir: %w", err)
	}
	defer os.RemoveAll(work)
	bundle := filepath.Join(work, "siteserve")
	f, err := os.OpenFile(bundle, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	err = sitesnap.WriteBundle(f, t.server, t.dir, m)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("bundle %s: %w", t.app, err)
	}
	man := spore.Manifest{
		Identity:  spore.Identity{Kind: "Spore", Name: t.app, Version: content[len("sha256:") : len("sha256:")+12]},
		Runtime:   spore.Runtime{Args: []string{}, Env: map[string]string{}},
		Resources: spore.Resources{Nutrients: spore.Nutrients{CPUMilli: 100, MemoryMB: 64}},
		SLO:       spore.SLO{P99BudgetMS: 50},
	}
	sporePath := filepath.Join(work, t.app+".spore")
	if _, err := spore.PackFile(sporePath, bundle, man, key); err != nil {
		return err
	}
	sf, err := os.Open(sporePath)
	if err != nil {
		return err
	}
	digest, err := t.client.PublishSpore(ctx, sf)
	sf.Close()
	if err != nil {
		return err
	}
	if _, err := t.client.EnsureApp(ctx, t.site, siteapi.AppRequest{App: t.app, Digest: digest}); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return t.client.WaitRollout(wctx, t.app, digest)
}

// ValidateConfig says whether Configure would accept cfg, by configuring a
// fresh value: Configure only parses, so nothing outside changes.
func (b *backend) ValidateConfig(ctx context.Context, cfg sdk.Config) error {
	return New().Configure(ctx, cfg)
}
