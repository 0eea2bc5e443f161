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

// buildTestPlugin builds the host's external test health plugin under
// name (its behaviour follows the name; see its package doc).
func buildTestPlugin(t *testing.T, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	out, err := exec.Command("go", "build", "-o", bin, "../../core/pluginhost/internal/testplugin").CombinedOutput()
	if err != nil {
		t.Fatalf("go build test plugin: %v\n%s", err, out)
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
	typed := buildTestPlugin(t, "test-required")
	dir := t.TempDir()
	external := func(config string) string {
		return "plugin \"balancer\" \"weighted-static\" {\n  command = \"" + ext + "\"\n  config {\n" + config + "  }\n}\n"
	}
	// A health plugin with required attributes, a list, a map and
	// repeated nested blocks; line 4 is the first line inside config.
	health := func(config string) string {
		return "plugin \"health\" \"typed\" {\n  command = \"" + typed + "\"\n  config {\n    token = \"t\"\n    retries = 1\n" + config + "  }\n}\n"
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
		{"external, missing required", "plugin \"health\" \"typed\" {\n  command = \"" + typed + "\"\n  config {\n    token = \"t\"\n  }\n}\n", 1,
			[]string{"plugin.hcl line 3", "Missing required argument", `"retries"`}},
		{"external, list of the wrong element type", health("    codes = [200, \"ok\"]\n"), 1,
			[]string{"plugin.hcl line 6", `"codes"`, "list of whole numbers"}},
		{"external, list element out of bounds", health("    codes = [200, 700]\n"), 1,
			[]string{"plugin.hcl line 6", "element 1 must be between 100 and 599, got 700"}},
		{"external, map written as a list", health("    headers = [\"a\"]\n"), 1,
			[]string{"plugin.hcl line 6", `"headers"`, "map of strings"}},
		{"external, nested block missing required", health("    match {\n    }\n"), 1,
			[]string{"plugin.hcl line 6", "Missing required argument", `"contains"`}},
		{"external, nested block unknown attribute", health("    match {\n      contains = \"a\"\n      colour = 1\n    }\n"), 1,
			[]string{"plugin.hcl line 8", "colour"}},
		{"external, nested value the plugin rejects", health("    match {\n      contains = \"a\"\n    }\n    match {\n      contains = \"reject-me\"\n    }\n"), 1,
			[]string{"plugin.hcl line 10", `Invalid value for "match[1].contains"`, `"reject-me" is refused`}},
		{"external, typed settings valid", health("    codes = [200, 204]\n    headers = { \"X-Probe\" = \"mesh\" }\n    match {\n      contains = \"ok\"\n    }\n"), 0, nil},
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
			// One finding, said once: one diagnostic, whose text does not
			// repeat the position its header gives.
			if tc.code != 0 {
				if n := strings.Count(stderr, "Error: "); n != 1 {
					t.Errorf("%d diagnostics, want 1:\n%s", n, stderr)
				}
				if strings.Contains(stderr, path+":") || strings.Contains(stderr, "plugin: plugin") {
					t.Errorf("position or prefix said twice:\n%s", stderr)
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
