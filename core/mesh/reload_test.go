package mesh

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mycelium-mesh/mesh/core/config"
)

func TestRestartNotes(t *testing.T) {
	base := `control {
  socket = "c.sock"
}
plugin "balancer" "least-loaded" {
  config {
    %s
  }
}
app "billing" {
  digest = "sha256:%s"
  max    = %d
}
`
	digest := strings.Repeat("a", 64)
	load := func(t *testing.T, dir, src string) (*config.Config, string) {
		t.Helper()
		path := filepath.Join(dir, "mesh.hcl")
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, diags := config.Load(path)
		if diags.HasErrors() {
			t.Fatalf("load: %s", diags.Error())
		}
		return cfg, pluginsFingerprint(cfg)
	}
	for _, tc := range []struct {
		name     string
		old, new string
		want     []string // substrings, one note each
	}{
		{"nothing", fmtCfg(base, "", digest, 3), fmtCfg(base, "", digest, 3), nil},
		{"app block only: applied live", fmtCfg(base, "", digest, 3), fmtCfg(base, "", digest, 1), nil},
		{"plugin config", fmtCfg(base, "", digest, 3), fmtCfg(base, `max_weight = 50`, digest, 3), []string{"plugins changed"}},
		{"edge listener", fmtCfg(base, "", digest, 3), fmtCfg(base, "", digest, 3) + "edge {\n  listen = \"127.0.0.1:9999\"\n}\n", []string{"edge changed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			oldCfg, oldFP := load(t, dir, tc.old)
			newCfg, newFP := load(t, dir, tc.new)
			notes := restartNotes(oldCfg, newCfg, oldFP, newFP)
			if len(notes) != len(tc.want) {
				t.Fatalf("notes %q, want %d matching %q", notes, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(notes[i], w) {
					t.Errorf("note %q lacks %q", notes[i], w)
				}
			}
		})
	}
}

func fmtCfg(base, pluginCfg, digest string, max int) string {
	return fmt.Sprintf(base, pluginCfg, digest, max)
}
