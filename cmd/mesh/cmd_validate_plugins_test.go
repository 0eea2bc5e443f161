package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mesh validate checks the config blocks of bundled plugins against their
// declared schemas and points at the offending line.
func TestValidatePluginConfig(t *testing.T) {
	bin := buildConfigMesh(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name, src string
		code      int
		want      []string
	}{
		{"unknown attribute", "plugin \"balancer\" \"least-loaded\" {\n  config {\n    bogus = 1\n  }\n}\n", 1,
			[]string{"plugin.hcl line 3", "bogus"}},
		{"wrong type", "plugin \"health\" \"http\" {\n  config {\n    timeout = \"soon\"\n  }\n}\n", 1,
			[]string{"plugin.hcl line 3"}},
		{"valid", "plugin \"health\" \"http\" {\n  config {\n    timeout = \"2s\"\n  }\n}\n", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "plugin.hcl")
			if err := os.WriteFile(path, []byte(tc.src), 0o644); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := runConfigMesh(t, bin, dir, "validate", path)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("diagnostics lack %q:\n%s", w, stderr)
				}
			}
		})
	}
}
