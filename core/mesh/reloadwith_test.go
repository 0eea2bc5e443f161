package mesh

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/repo"
)

// reloadMesh is a Mesh with a fabric, a repo and a loaded mesh.hcl, and no
// agents, edge or plugins: enough to plan and apply reloads in-process.
func reloadMesh(t *testing.T, dir, src string) (*Mesh, string) {
	t.Helper()
	path := filepath.Join(dir, "mesh.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := fabric.New(fabric.Options{DataDir: cfg.DataDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	r, err := repo.Open(cfg.Repo.Dir)
	if err != nil {
		t.Fatal(err)
	}
	m := &Mesh{opts: Options{ConfigPath: path}, log: hclog.NewNullLogger(), cfg: cfg, fabric: f, repo: r,
		pluginsFP: pluginsFingerprint(cfg), published: map[string]time.Time{}}
	if err := m.applyApps(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	return m, path
}

// TestReloadWithChangedDataDir: a data_dir change needs a restart; until
// then the applied state of the running data_dir decides the digests, and
// the change stays listed on every reload.
func TestReloadWithChangedDataDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "v1.spore"), []byte("spore bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	const tmpl = "data_dir = %q\nrepo { dir = \"repo\" }\napp \"billing\" {\n  spore = \"v1.spore\"\n  max   = %d\n}\n"
	m, path := reloadMesh(t, dir, fmt.Sprintf(tmpl, "data", 3))
	deployed := digestOf('2')
	p, _ := m.fabric.Plan("billing")
	p.Digest = deployed
	if err := m.fabric.PublishPlan(p); err != nil { // what a deploy does
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(fmt.Sprintf(tmpl, "elsewhere", 2)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, opts := range []ReloadOptions{{PlanOnly: true}, {}, {}} {
		rp, err := m.ReloadWith(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if ap := rp.Apps[0]; ap.Digest != deployed || ap.DigestChanged || ap.DigestReason != reasonKept {
			t.Fatalf("%+v: app %+v, want the deployed digest kept", opts, ap)
		}
		if len(rp.Restart) != 1 || !strings.Contains(rp.Restart[0], "data_dir") {
			t.Fatalf("%+v: restart notes %q, want data_dir", opts, rp.Restart)
		}
	}
	if p, _ := m.fabric.Plan("billing"); p.Digest != deployed || p.Max != 2 {
		t.Fatalf("plan %+v, want the deployed digest and max 2", p)
	}
	if _, err := os.Stat(filepath.Join(dir, "elsewhere")); !os.IsNotExist(err) {
		t.Fatalf("the file's new data_dir was written to before a restart (%v)", err)
	}
}
