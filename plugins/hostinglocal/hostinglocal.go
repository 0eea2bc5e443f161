// Package hostinglocal is the bundled hosting plugin "local-static": it
// hosts localStatic sites on the mesh itself. A site's prebuilt files
// (build.outputDir, resolved against sites_root) become a content-addressed
// snapshot in the mesh's data dir, uploaded as a tar stream through the
// control API, and the edge serves them by Host for domains.primary and
// every alias. The mesh keeps sites as desired state, so they survive a
// restart; a new version switches atomically.
//
// Resources, by natural key: "snapshot" keyed by the site id (version: the
// snapshot digest) and "route" keyed by host name (version: the site id).
package hostinglocal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/mycelium-mesh/mesh/core/siteapi"
	"github.com/mycelium-mesh/mesh/core/sitesnap"
	"github.com/mycelium-mesh/mesh/sdk"
)

// Name is the plugin's name in mesh.hcl.
const Name = "local-static"

// Version is the plugin's version.
const Version = "1.0.0"

type backend struct {
	mu        sync.RWMutex
	sitesRoot string
	addr      string
	token     string
	client    *siteapi.Client
}

// New returns the local-static hosting backend.
func New() sdk.HostingBackend { return &backend{} }

func (b *backend) Info() sdk.Info {
	return sdk.Info{Kind: sdk.KindHosting, Name: Name, Version: Version, APIVersions: []uint32{sdk.APIVersion}}
}

func (b *backend) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "sites_root", Type: sdk.TypePath, Default: "", Description: "directory build.outputDir is resolved against (required to host sites)"},
		{Name: "control_addr", Type: sdk.TypeString, Default: "", Description: "the mesh's control API (default: MESH_ADDR, set by mesh provision from mesh.hcl)"},
		{Name: "token", Type: sdk.TypeString, Default: "", Description: "bearer token for a TCP control API (default: MESH_HOSTING_TOKEN, set by mesh provision)"},
	}}
}

func (b *backend) Configure(_ context.Context, cfg sdk.Config) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sitesRoot = cfg.String("sites_root", "")
	b.addr = cfg.String("control_addr", "")
	if b.addr == "" {
		b.addr = os.Getenv("MESH_ADDR")
	}
	b.token = cfg.String("token", "")
	if b.token == "" {
		b.token = os.Getenv(sdk.HostingTokenEnv)
	}
	b.client = nil
	if b.addr != "" {
		c, err := siteapi.NewClient(b.addr, b.token)
		if err != nil {
			return err
		}
		b.client = c
	}
	return nil
}

// site resolves what a request needs, or says which configuration is
// missing.
func (b *backend) site(req sdk.HostingRequest) (*siteapi.Client, string, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.client == nil {
		return nil, "", fmt.Errorf("local-static needs the mesh's control address (run mesh provision with -config mesh.hcl or -addr, or set control_addr): %w", sdk.ErrConfigMissing)
	}
	if b.sitesRoot == "" {
		return nil, "", fmt.Errorf(`local-static needs sites_root in its plugin "hosting" "local-static" config block: %w`, sdk.ErrConfigMissing)
	}
	if req.Site.Repo != nil && req.Site.Repo.Provider != "none" {
		return nil, "", fmt.Errorf("local-static serves prebuilt files under sites_root; repo.provider %s is not fetched", req.Site.Repo.Provider)
	}
	if req.Site.Domains == nil {
		return nil, "", errors.New("local-static serves sites by Host: domains.primary is required")
	}
	out := req.Site.Site.ID
	if req.Site.Build != nil && req.Site.Build.OutputDir != "" && req.Site.Build.OutputDir != "." {
		out = req.Site.Build.OutputDir // validated by the host: relative, inside
	}
	return b.client, filepath.Join(b.sitesRoot, filepath.FromSlash(out)), nil
}

// Observe reports the site's snapshot and routes as the mesh has them.
func (b *backend) Observe(ctx context.Context, req sdk.HostingRequest) ([]sdk.HostingResource, error) {
	c, _, err := b.site(req)
	if err != nil {
		return nil, err
	}
	st, err := c.Site(ctx, req.Site.Site.ID)
	if errors.Is(err, siteapi.ErrNoSite) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := []sdk.HostingResource{{Kind: "snapshot", Key: st.ID, Version: st.Snapshot}}
	for _, d := range st.Domains {
		out = append(out, sdk.HostingResource{Kind: "route", Key: d, Version: st.ID})
	}
	return out, nil
}

// Plan scans the site's files and compares their digest and the domains
// with what the mesh serves.
func (b *backend) Plan(ctx context.Context, req sdk.HostingRequest, actual []sdk.HostingResource) ([]sdk.HostingAction, error) {
	_, dir, err := b.site(req)
	if err != nil {
		return nil, err
	}
	// A site with a build command is built by Apply (Plan changes
	// nothing), so its snapshot is planned as "build, then upload if it
	// differs"; Apply reports it only when the content did change.
	want := "built by: " + strings.Join(req.BuildCommand, " ")
	if len(req.BuildCommand) == 0 {
		m, err := sitesnap.Scan(dir)
		if err != nil {
			return nil, err
		}
		if _, ok := m["index.html"]; !ok {
			return nil, fmt.Errorf("%s has no index.html", dir)
		}
		want = m.Digest()
	}
	var acts []sdk.HostingAction
	have := map[string]bool{}
	snapOp := sdk.OpCreate
	for _, r := range actual {
		switch r.Kind {
		case "snapshot":
			snapOp = sdk.OpUpdate
			if r.Version == want {
				snapOp = ""
			}
		case "route":
			have[r.Key] = true
		}
	}
	if snapOp != "" {
		acts = append(acts, sdk.HostingAction{Op: snapOp, Kind: "snapshot", Key: req.Site.Site.ID, Detail: want})
	}
	wantHosts := map[string]bool{}
	for _, h := range req.Site.Domains.All() {
		wantHosts[h] = true
		if !have[h] {
			acts = append(acts, sdk.HostingAction{Op: sdk.OpCreate, Kind: "route", Key: h, Detail: req.Site.Site.ID})
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

// build runs the configured build command in the site's directory under
// sites_root (sites_root/<site id>), reporting the end of its output when
// it fails.
func (b *backend) build(ctx context.Context, req sdk.HostingRequest) error {
	b.mu.RLock()
	dir := filepath.Join(b.sitesRoot, req.Site.Site.ID)
	b.mu.RUnlock()
	cmd := exec.CommandContext(ctx, req.BuildCommand[0], req.BuildCommand[1:]...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		tail := string(out)
		if len(tail) > 2000 {
			tail = "…" + tail[len(tail)-2000:]
		}
		return fmt.Errorf("build %s with %q in %s: %w\n%s", req.Site.Site.ID, strings.Join(req.BuildCommand, " "), dir, err, tail)
	}
	return nil
}

// Apply uploads the snapshot when the mesh lacks it, then sets the site
// record (one idempotent PUT that carries the snapshot and every route).
func (b *backend) Apply(ctx context.Context, req sdk.HostingRequest, actions []sdk.HostingAction, done func(sdk.HostingAction)) error {
	c, dir, err := b.site(req)
	if err != nil {
		return err
	}
	if len(req.BuildCommand) > 0 {
		if err := b.build(ctx, req); err != nil {
			return err
		}
	}
	// Scan again: the files may have changed since Plan; what is uploaded
	// is named by what is read now.
	m, err := sitesnap.Scan(dir)
	if err != nil {
		return err
	}
	if _, ok := m["index.html"]; !ok {
		return fmt.Errorf("%s has no index.html", dir)
	}
	digest := m.Digest()
	if len(req.BuildCommand) > 0 {
		// The build may have produced what the mesh already serves.
		if cur, err := c.Site(ctx, req.Site.Site.ID); err == nil && cur.Snapshot == digest {
			var rest []sdk.HostingAction
			for _, a := range actions {
				if a.Kind != "snapshot" {
					rest = append(rest, a)
				}
			}
			if len(rest) == 0 {
				return nil
			}
			actions = rest
		}
	}
	has, err := c.HasSnapshot(ctx, digest)
	if err != nil {
		return err
	}
	if !has {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(sitesnap.WriteTar(pw, dir, m)) }()
		err := c.PutSnapshot(ctx, digest, pr)
		pr.Close()
		if err != nil {
			return err
		}
	}
	st := siteapi.Site{ID: req.Site.Site.ID, Domains: req.Site.Domains.All(), Snapshot: digest}
	if _, ok := m["404.html"]; ok {
		st.NotFound = "404.html"
	}
	if _, err := c.PutSite(ctx, st); err != nil {
		return fmt.Errorf("set site %s: %w", st.ID, err)
	}
	for _, a := range actions {
		if a.Kind == "snapshot" {
			a.Detail = digest
		}
		done(a)
	}
	return nil
}

// ValidateConfig says whether Configure would accept cfg, by configuring a
// fresh value: Configure only parses, so nothing outside changes.
func (b *backend) ValidateConfig(ctx context.Context, cfg sdk.Config) error {
	return New().Configure(ctx, cfg)
}
