// Package sitesnap makes content-addressed snapshots of a static site's
// files: a digest that names a directory tree, a tar stream to move it, and
// a safe extraction that checks what it received against the digest.
//
// The digest is the sha256 of a manifest listing every regular file by
// slash-separated relative path, in byte order, with its size and sha256.
// Only directories and regular files belong to a site: links, devices and
// the like are refused, so a snapshot can never point outside itself.
package sitesnap

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Limits of one snapshot.
const (
	MaxFiles     = 20000
	MaxFileSize  = 256 << 20
	MaxTotalSize = 2 << 30
)

// ErrUnsafe is wrapped by refusals of a tree or a stream: a link, an
// absolute or climbing name, a size above the limits.
var ErrUnsafe = errors.New("unsafe site content")

// Manifest maps each file's relative path to the hex sha256 of its content.
type Manifest map[string]File

// File is one manifest entry.
type File struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Digest is the snapshot's name: "sha256:" and the hex sha256 of the
// manifest's canonical text.
func (m Manifest) Digest() string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00%s\n", n, m[n].Size, m[n].SHA256)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Scan walks dir and returns its manifest, refusing anything that is not a
// directory or a regular file.
func Scan(dir string) (Manifest, error) {
	m := Manifest{}
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			return fmt.Errorf("%w: %s is not a regular file", ErrUnsafe, rel)
		}
		if len(m) >= MaxFiles {
			return fmt.Errorf("%w: more than %d files", ErrUnsafe, MaxFiles)
		}
		f, err := hashFile(p)
		if err != nil {
			return err
		}
		if f.Size > MaxFileSize {
			return fmt.Errorf("%w: %s is %d bytes, at most %d", ErrUnsafe, rel, f.Size, MaxFileSize)
		}
		if total += f.Size; total > MaxTotalSize {
			return fmt.Errorf("%w: more than %d bytes", ErrUnsafe, MaxTotalSize)
		}
		m[rel] = f
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", dir, err)
	}
	return m, nil
}

func hashFile(p string) (File, error) {
	f, err := os.Open(p)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return File{}, fmt.Errorf("read %s: %w", p, err)
	}
	return File{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// WriteTar streams the files of m, read from dir, as a tar archive.
func WriteTar(w io.Writer, dir string, m Manifest) error {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := tar.NewWriter(w)
	for _, n := range names {
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(n)))
		if err != nil {
			return fmt.Errorf("open %s: %w", n, err)
		}
		err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Size: m[n].Size, Mode: 0o644})
		if err == nil {
			_, err = io.CopyN(tw, f, m[n].Size)
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("archive %s: %w", n, err)
		}
	}
	return tw.Close()
}

// safeName cleans an archive member name, refusing absolute and climbing
// names.
func safeName(n string) (string, error) {
	if n == "" || strings.HasPrefix(n, "/") || strings.Contains(n, "\\") {
		return "", fmt.Errorf("%w: member name %q", ErrUnsafe, n)
	}
	c := path.Clean(n)
	if c == "." || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%w: member name %q", ErrUnsafe, n)
	}
	return c, nil
}

// Extract reads a tar stream into dst (which must not exist), accepting
// only regular files within the limits, and returns the manifest of what it
// wrote. The caller compares its digest with the one it expected.
func Extract(r io.Reader, dst string) (Manifest, error) {
	if err := os.Mkdir(dst, 0o755); err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	tr := tar.NewReader(r)
	m := Manifest{}
	var total int64
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return m, nil
		}
		if err != nil {
			return nil, fmt.Errorf("extract: read archive: %w", err)
		}
		name, err := safeName(hdr.Name)
		if err != nil {
			return nil, err
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
		default:
			return nil, fmt.Errorf("%w: %s is not a regular file", ErrUnsafe, name)
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("%w: %s appears twice", ErrUnsafe, name)
		}
		if len(m) >= MaxFiles || hdr.Size > MaxFileSize || total+hdr.Size > MaxTotalSize {
			return nil, fmt.Errorf("%w: %s exceeds the snapshot limits", ErrUnsafe, name)
		}
		total += hdr.Size
		p := filepath.Join(dst, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, fmt.Errorf("extract %s: %w", name, err)
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return nil, fmt.Errorf("extract %s: %w", name, err)
		}
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(tr, hdr.Size))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil && n != hdr.Size {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return nil, fmt.Errorf("extract %s: %w", name, err)
		}
		m[name] = File{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}
	}
}

// WriteManifest stores m as JSON at p.
func WriteManifest(p string, m Manifest) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}

// ReadManifest loads a manifest written by WriteManifest.
func ReadManifest(p string) (Manifest, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode manifest %s: %w", p, err)
	}
	return m, nil
}
