package mesh_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/internal/testutil"
)

// A second mesh, with its own data_dir and the bundled http repo backend,
// runs a spore it fetched from the first mesh's control API; a spore whose
// bytes the first mesh serves tampered is refused with an error naming its
// digest.
func TestRepoHTTPBackend(t *testing.T) {
	const token = "repo-http-test-token"
	a := newEnv(t)
	controlAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	a.controlExtra = fmt.Sprintf("  listen = %q\n  token  = %q\n", controlAddr, token)
	a.writeConfig()
	a.start()
	d1 := a.status().Apps[0].Digest

	dirB := t.TempDir()
	pub, err := os.ReadFile(filepath.Join(a.dir, "dev.pub"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"dev.pub": pub, "token": []byte(token + "\n")} {
		if err := os.WriteFile(filepath.Join(dirB, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b := &env{t: t, dir: dirB, cfgPath: filepath.Join(dirB, "mesh.hcl"),
		edgeURL: fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t))}
	cfg := fmt.Sprintf(`
data_dir = "data"
run_dir  = "run"
warmup   = "300ms"
grace    = "2s"
min_healthy = "0s"
trusted_keys = ["dev.pub"]
repo {
  dir        = "repo"
  backend    = "http"
  url        = "http://%s"
  token_file = "token"
}
control { socket = "control.sock" }
edge { listen = %q }
agents { count = 1 }
app "billing" {
  digest  = %q
  restart = "on-failure"
}
`, controlAddr, strings.TrimPrefix(b.edgeURL, "http://"), d1)
	if err := os.WriteFile(b.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	runCLI(t, "validate", b.cfgPath)
	b.launch()
	b.waitReady(30 * time.Second)
	resp, err := http.Get(b.edgeURL + "/billing/hello")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v := resp.Header.Get("X-Hello-Version"); v != "v1" {
		t.Fatalf("second mesh serves version %q, want v1", v)
	}
	if _, err := os.Stat(filepath.Join(dirB, "repo", strings.TrimPrefix(d1, "sha256:")+".spore")); err != nil {
		t.Fatalf("fetched spore not in the second mesh's own repo: %v", err)
	}

	// The first mesh's copy of v2 is damaged on its disk: it serves the
	// damaged bytes, and the second mesh must refuse them.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d2, err := a.client().PublishSpore(ctx, a.v2)
	if err != nil {
		t.Fatal(err)
	}
	p2 := filepath.Join(a.dir, "repo", strings.TrimPrefix(d2, "sha256:")+".spore")
	blob, err := os.ReadFile(p2)
	if err != nil {
		t.Fatal(err)
	}
	blob[len(blob)/2] ^= 0x01
	if err := os.WriteFile(p2, blob, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = b.client().Deploy(ctx, "billing", d2)
	if err == nil || !strings.Contains(err.Error(), d2) || !strings.Contains(err.Error(), "digest mismatch") {
		t.Fatalf("deploy of a tampered spore: %v; want a digest mismatch naming %s", err, d2)
	}
	t.Logf("refused: %v", err)
	if _, err := os.Stat(filepath.Join(dirB, "repo", strings.TrimPrefix(d2, "sha256:")+".spore")); !os.IsNotExist(err) {
		t.Fatalf("tampered spore stored in the second mesh's repo: %v", err)
	}
	if st := b.status(); st.Apps[0].Digest != d1 {
		t.Fatalf("second mesh's app moved to %s", st.Apps[0].Digest)
	}
}
