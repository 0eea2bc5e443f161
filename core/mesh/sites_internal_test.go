package mesh

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mycelium-mesh/mesh/core/sitesnap"
)

func snapshotOf(t *testing.T, files map[string]string) (sitesnap.Manifest, []byte) {
	t.Helper()
	dir := t.TempDir()
	for n, b := range files {
		p := filepath.Join(dir, n)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := sitesnap.Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	var tarball bytes.Buffer
	if err := sitesnap.WriteTar(&tarball, dir, m); err != nil {
		t.Fatal(err)
	}
	return m, tarball.Bytes()
}

func TestSiteStoreSnapshotsAndRecords(t *testing.T) {
	s := &siteStore{dir: t.TempDir(), sites: map[string]Site{}}
	m, tarball := snapshotOf(t, map[string]string{"index.html": "v1"})
	other, _ := snapshotOf(t, map[string]string{"index.html": "v2"})

	// Content that does not match the digest it was sent under is refused
	// and leaves nothing behind.
	if err := s.putSnapshot(other.Digest(), bytes.NewReader(tarball)); err == nil || !strings.Contains(err.Error(), "digest") {
		t.Fatalf("mismatched snapshot: %v", err)
	}
	if s.hasSnapshot(other.Digest()) {
		t.Fatal("mismatched snapshot kept")
	}
	if err := s.putSnapshot(m.Digest(), bytes.NewReader(tarball)); err != nil {
		t.Fatal(err)
	}
	// Uploading it again is success.
	if err := s.putSnapshot(m.Digest(), bytes.NewReader(tarball)); err != nil {
		t.Fatalf("second upload: %v", err)
	}

	tests := []struct {
		name string
		site Site
		want string
	}{
		{"ok", Site{ID: "a", Domains: []string{"a.test"}, Snapshot: m.Digest()}, ""},
		{"bad id", Site{ID: "A", Domains: []string{"a.test"}, Snapshot: m.Digest()}, "DNS label"},
		{"unknown snapshot", Site{ID: "b", Domains: []string{"b.test"}, Snapshot: other.Digest()}, "not uploaded"},
		{"bad host", Site{ID: "b", Domains: []string{"B_.test"}, Snapshot: m.Digest()}, "host name"},
		{"no domains", Site{ID: "b", Snapshot: m.Digest()}, "no domains"},
		{"host of another site", Site{ID: "b", Domains: []string{"a.test"}, Snapshot: m.Digest()}, "already routes to site a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.checkLocked(tt.site)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				s.sites[tt.site.ID] = tt.site
				if err := s.saveLocked(); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
	if err := s.checkLocked(Site{ID: "b", Domains: []string{"a.test"}, Snapshot: m.Digest()}); !errors.Is(err, errConflict) {
		t.Fatalf("conflict not recognisable: %v", err)
	}
	routes, err := s.routesLocked()
	if err != nil || len(routes) != 1 || routes[0].ETags["index.html"] == "" {
		t.Fatalf("routes %+v %v", routes, err)
	}
}
