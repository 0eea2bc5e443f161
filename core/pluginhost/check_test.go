package pluginhost_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/mycelium-mesh/mesh/core/pluginhost"
)

// Check is the one validation of a plugin block: every case below is
// something mesh run refuses (an error) or a block the plugin could not
// look at itself (a warning), for bundled and external plugins alike.
func TestCheck(t *testing.T) {
	h, _ := newHost(t, nil)
	dir := t.TempDir()
	noValidate := filepath.Join(dir, "test-novalidate")
	if err := os.Link(testPlugin, noValidate); err != nil {
		t.Fatal(err)
	}
	const file = "/etc/mesh/mesh.hcl"
	block := func(kind, name, command, config string) pluginhost.Spec {
		src := "plugin \"" + kind + "\" \"" + name + "\" {\n"
		if command != "" {
			src += "  command = \"" + command + "\"\n"
		}
		src += "  config {\n" + config + "  }\n}\n"
		return pluginBlock(t, file, src)
	}
	for _, tc := range []struct {
		name     string
		spec     pluginhost.Spec
		severity hcl.DiagnosticSeverity // 0: no diagnostic at all
		want     []string
		err      error // the start error, when the plugin cannot run
	}{
		{"bundled, listed without a block", pluginhost.Spec{Kind: "repo", Name: "fs"}, 0, nil, nil},
		{"bundled, valid", block("health", "http", "", "    path = \"/ready\"\n"), 0, nil, nil},
		{"bundled, wrong type", block("health", "http", "", "    timeout = \"soon\"\n"), hcl.DiagError,
			[]string{file + ":3,", "not a duration"}, nil},
		{"bundled, value the plugin rejects", block("health", "http", "", "    path = \"ready\"\n"), hcl.DiagError,
			[]string{file + ":1,", "Plugin rejects its configuration", "path must start with /"}, nil},
		{"external, valid", block("health", "ext", testPlugin, "    greeting = \"hello\"\n"), 0, nil, nil},
		{"external, unknown attribute", block("health", "ext", testPlugin, "    colour = 1\n"), hcl.DiagError,
			[]string{file + ":4,", "colour"}, nil},
		{"external, value the plugin rejects", block("health", "ext", testPlugin, "    greeting = \"reject-me\"\n"), hcl.DiagError,
			[]string{"Plugin rejects its configuration", `greeting "reject-me" is refused`}, nil},
		{"external without a validator", block("health", "old", noValidate, "    greeting = \"reject-me\"\n"), hcl.DiagWarning,
			[]string{"checked against the schema only", "does not implement sdk.ConfigValidator"}, nil},
		{"external, missing command", block("health", "gone", filepath.Join(dir, "nope"), ""), hcl.DiagError,
			[]string{"Plugin cannot be started", "not checked"}, pluginhost.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, diags, err := h.Check(ctxT(t), tc.spec)
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("start error %v, want %v", err, tc.err)
			}
			if tc.severity == 0 {
				if len(diags) != 0 {
					t.Fatalf("diagnostics for a valid block: %v", diags)
				}
				if info.Name == "" {
					t.Errorf("no info from a plugin that started")
				}
				return
			}
			if len(diags) != 1 || diags[0].Severity != tc.severity {
				t.Fatalf("want one diagnostic of severity %v, got %v", tc.severity, diags)
			}
			d := diags[0]
			text := d.Summary + "; " + d.Detail
			if d.Subject != nil {
				text = d.Subject.Filename + ":" + strconv.Itoa(d.Subject.Start.Line) + ",: " + text
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("diagnostic lacks %q: %s", w, text)
				}
			}
		})
	}
	if n := len(h.Statuses()); n != 0 {
		t.Errorf("Check left %d plugins loaded", n)
	}
}
