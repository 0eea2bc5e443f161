// Package sitefiles reads a prebuilt static site from disk for the cloud
// hosting plugins: where a site's files are (sites_root joined with
// build.outputDir, else the site id), which regular files it holds, and
// their content types. Links, devices and other non-regular files are
// refused, so nothing outside the site's directory is ever uploaded.
package sitefiles

import (
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/mycelium-mesh/mesh/sdk"
)

// File is one file of a site.
type File struct {
	// Name is the slash-separated path relative to the site's directory.
	Name string
	// Path is the file's path on disk.
	Path string
	Size int64
}

// Dir returns the directory holding req's site under root: root joined with
// build.outputDir when it is set (the host has validated it as relative and
// inside), else with the site id.
func Dir(root string, site sdk.SiteConfig) string {
	out := site.Site.ID
	if site.Build != nil && site.Build.OutputDir != "" && site.Build.OutputDir != "." {
		out = site.Build.OutputDir
	}
	return filepath.Join(root, filepath.FromSlash(out))
}

// Limits bounds what List accepts.
type Limits struct {
	MaxFiles    int   // 0: no limit
	MaxFileSize int64 // 0: no limit
}

// List returns the site's regular files sorted by name. It fails on a
// missing directory, on anything that is neither a directory nor a regular
// file, and on a site over the limits.
func List(dir string, lim Limits) ([]File, error) {
	var out []File
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file (links and devices are not site content)", name)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if lim.MaxFileSize > 0 && info.Size() > lim.MaxFileSize {
			return fmt.Errorf("%s is %d bytes, over the limit of %d", name, info.Size(), lim.MaxFileSize)
		}
		out = append(out, File{Name: name, Path: p, Size: info.Size()})
		if lim.MaxFiles > 0 && len(out) > lim.MaxFiles {
			return fmt.Errorf("more than %d files", lim.MaxFiles)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) && len(out) == 0 {
		return nil, fmt.Errorf("site directory %s: %w", dir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("read site %s: %w", dir, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ContentType is the media type a file is served with, from its extension;
// text types carry charset=utf-8; unknown extensions are
// application/octet-stream.
func ContentType(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if t, ok := common[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}

// common pins the types of the usual web files, so a site is served the
// same whatever the machine's mime tables say.
var common = map[string]string{
	".html":  "text/html; charset=utf-8",
	".htm":   "text/html; charset=utf-8",
	".css":   "text/css; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".mjs":   "text/javascript; charset=utf-8",
	".json":  "application/json",
	".txt":   "text/plain; charset=utf-8",
	".xml":   "application/xml",
	".svg":   "image/svg+xml",
	".png":   "image/png",
	".jpg":   "image/jpeg",
	".jpeg":  "image/jpeg",
	".gif":   "image/gif",
	".webp":  "image/webp",
	".ico":   "image/x-icon",
	".wasm":  "application/wasm",
	".woff":  "font/woff",
	".woff2": "font/woff2",
	".pdf":   "application/pdf",
	".map":   "application/json",
}

// Exists reports whether dir is a directory.
func Exists(dir string) bool {
	st, err := os.Stat(dir)
	return err == nil && st.IsDir()
}
