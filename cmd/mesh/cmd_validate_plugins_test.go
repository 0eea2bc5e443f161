package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildExamplePlugin builds examples/balancer-plugin, an external plugin.
func buildExamplePlugin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "weighted-static")
	out, err := exec.Command("go", "build", "-o", bin, "../../examples/balancer-plugin").CombinedOutput()
	if err != nil {
		t.Fatalf("go build example plugin: %v\n%s", err, out)
	}
	return bin
}

// mesh validate starts each plugin block's plugin, bundled or external,
// decodes the block against the schema the plugin declares and has the
// plugin validate it, pointing at the offending line. mesh plugins reports
// the same findings as FAILED.
func TestValidatePluginConfig(t *testing.T) {
	bin := buildConfigMesh(t)
	ext := buildExamplePlugin(t)
	dir := t.TempDir()
	external := func(config string) string {
		return "plugin \"balancer\" \"weighted-static\" {\n  command = \"" + ext + "\"\n  config {\n" + config + "  }\n}\n"
	}
	for _, tc := range []struct {
		name, src string
		code      int
		want      []string
	}{
		{"unknown attribute", "plugin \"balancer\" \"least-loaded\" {\n  config {\n    bogus = 1\n  }\n}\n", 1,
			[]string{"plugin.hcl line 3", "bogus"}},
		{"wrong type", "plugin \"health\" \"http\" {\n  config {\n    timeout = \"soon\"\n  }\n}\n", 1,
			[]string{"plugin.hcl line 3"}},
		{"missing required", "plugin \"repo\" \"fs\" {\n  config {\n  }\n}\n", 1,
			[]string{"plugin.hcl line 2", `"dir"`}},
		{"value the bundled plugin rejects", "plugin \"health\" \"http\" {\n  config {\n    path = \"ready\"\n  }\n}\n", 1,
			[]string{"plugin.hcl line 3", `Invalid value for "path"`, "must start with /"}},
		{"valid", "plugin \"health\" \"http\" {\n  config {\n    timeout = \"2s\"\n  }\n}\n", 0, nil},
		{"external, wrong type", external("    default_weight = \"heavy\"\n"), 1,
			[]string{"plugin.hcl line 4", "number is required"}},
		{"external, unknown attribute", external("    colour = \"red\"\n"), 1,
			[]string{"plugin.hcl line 4", "colour"}},
		{"external, value out of bounds", external("    weights = { \"node-1\" = -1 }\n"), 1,
			[]string{"plugin.hcl line 4", `element "node-1" must be between 0 and`}},
		{"external, value the plugin rejects", external("    default_weight = 0\n"), 1,
			[]string{"plugin.hcl line 4", `Invalid value for "default_weight"`, "no endpoint would take traffic"}},
		{"external, valid", external("    mode = \"p2c\"\n"), 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "plugin.hcl")
			if err := os.WriteFile(path, []byte(tc.src), 0o644); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := runConfigMesh(t, bin, dir, "validate", path)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("diagnostics lack %q:\n%s", w, stderr)
				}
			}
			if tc.code == 0 && !strings.Contains(stdout, "Configuration is valid.") {
				t.Errorf("stdout %q", stdout)
			}
			// mesh plugins agrees with mesh validate.
			code, stdout, stderr = runConfigMesh(t, bin, dir, "plugins", "-config", path)
			if code != tc.code {
				t.Fatalf("mesh plugins: exit %d, want %d\n%s%s", code, tc.code, stdout, stderr)
			}
			if tc.code != 0 && !strings.Contains(stdout, "FAILED") {
				t.Errorf("mesh plugins does not say FAILED:\n%s", stdout)
			}
		})
	}
}
