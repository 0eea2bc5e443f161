// Command dir-publish is an example third-party hosting plugin for Mycelium
// Mesh: it publishes each site's prebuilt files into a directory of its own
// under publish_dir (for a web server that already serves that directory),
// switching versions with an atomic rename.
//
//	plugin "hosting" "dir-publish" {
//	  command = "./dir-publish"
//	  config {
//	    sites_root  = "./sites"    # where build.outputDir is resolved
//	    publish_dir = "/srv/www"   # one directory per site id
//	  }
//	}
//	provision {
//	  providers = { localStatic = "dir-publish" }
//	}
//
// It imports only the mesh sdk. Build it with `go build`.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/mycelium-mesh/mesh/sdk"
)

// publisher holds its settings; the host has checked both are set and
// made them absolute.
type publisher struct {
	mu  sync.RWMutex
	cfg struct {
		SitesRoot  string `mesh:"sites_root"`
		PublishDir string `mesh:"publish_dir"`
	}
}

func (p *publisher) Info() sdk.Info {
	return sdk.Info{Kind: sdk.KindHosting, Name: "dir-publish", Version: "1.1.0", APIVersions: []uint32{sdk.APIVersion}}
}

func (p *publisher) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "sites_root", Type: sdk.TypePath, Required: true, Description: "directory build.outputDir is resolved against"},
		{Name: "publish_dir", Type: sdk.TypePath, Required: true, Description: "directory that receives one sub-directory per site"},
	}}
}

func (p *publisher) Configure(_ context.Context, cfg sdk.Config) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return cfg.Decode(&p.cfg)
}

func (p *publisher) dirs(req sdk.HostingRequest) (src, dst string) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	root, publish := p.cfg.SitesRoot, p.cfg.PublishDir
	out := "."
	if req.Site.Build != nil {
		out = req.Site.Build.OutputDir // validated by the host: relative, no ".."
	}
	return filepath.Join(root, req.Site.Site.ID, out), filepath.Join(publish, req.Site.Site.ID)
}

// Observe reports the published version (the tree hash written beside it).
func (p *publisher) Observe(_ context.Context, req sdk.HostingRequest) ([]sdk.HostingResource, error) {
	_, dst := p.dirs(req)
	v, err := os.ReadFile(dst + ".version")
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read published version: %w", err)
	}
	return []sdk.HostingResource{{Kind: "site-dir", Key: req.Site.Site.ID, Version: string(v)}}, nil
}

// Plan compares the source tree's hash with the published one.
func (p *publisher) Plan(_ context.Context, req sdk.HostingRequest, actual []sdk.HostingResource) ([]sdk.HostingAction, error) {
	src, _ := p.dirs(req)
	want, err := treeHash(src)
	if err != nil {
		return nil, err
	}
	for _, r := range actual {
		if r.Kind == "site-dir" && r.Key == req.Site.Site.ID {
			if r.Version == want {
				return nil, nil
			}
			return []sdk.HostingAction{{Op: sdk.OpUpdate, Kind: "site-dir", Key: req.Site.Site.ID, Detail: want}}, nil
		}
	}
	return []sdk.HostingAction{{Op: sdk.OpCreate, Kind: "site-dir", Key: req.Site.Site.ID, Detail: want}}, nil
}

// Apply copies the tree next to the published one and renames it in place.
func (p *publisher) Apply(_ context.Context, req sdk.HostingRequest, actions []sdk.HostingAction, done func(sdk.HostingAction)) error {
	src, dst := p.dirs(req)
	for _, a := range actions {
		if a.Kind != "site-dir" || (a.Op != sdk.OpCreate && a.Op != sdk.OpUpdate) {
			return fmt.Errorf("unsupported action %s %s", a.Op, a.Kind)
		}
		tmp := dst + ".new"
		os.RemoveAll(tmp)
		// Links and devices are refused: a site is regular files.
		if err := os.CopyFS(tmp, os.DirFS(src)); err != nil {
			return fmt.Errorf("copy %s: %w", src, err)
		}
		old := dst + ".old"
		os.RemoveAll(old)
		if err := os.Rename(dst, old); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("retire %s: %w", dst, err)
		}
		if err := os.Rename(tmp, dst); err != nil {
			return fmt.Errorf("publish %s: %w", dst, err)
		}
		os.RemoveAll(old)
		if err := os.WriteFile(dst+".version", []byte(a.Detail), 0o644); err != nil {
			return fmt.Errorf("record version: %w", err)
		}
		done(a)
	}
	return nil
}

// treeHash hashes every regular file's path and content, in path order.
func treeHash(root string) (string, error) {
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read site files: %w", err)
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		fmt.Fprintf(h, "%s\x00", filepath.ToSlash(rel))
		fh, err := os.Open(f)
		if err != nil {
			return "", err
		}
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func main() { sdk.Serve(&publisher{}) }
