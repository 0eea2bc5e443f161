package pluginhost_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/mycelium-mesh/mesh/core/pluginhost"
	"github.com/mycelium-mesh/mesh/sdk"
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
	badSchema := filepath.Join(dir, "test-badschema")
	if err := os.Link(testPlugin, badSchema); err != nil {
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
			[]string{file + ":3,", `Invalid value for "path"`, "must start with /"}, nil},
		{"external, valid", block("health", "ext", testPlugin, "    greeting = \"hello\"\n"), 0, nil, nil},
		{"external, unknown attribute", block("health", "ext", testPlugin, "    colour = 1\n"), hcl.DiagError,
			[]string{file + ":4,", "colour"}, nil},
		{"external, value the plugin rejects", block("health", "ext", testPlugin, "    greeting = \"reject-me\"\n"), hcl.DiagError,
			[]string{file + ":4,", `Invalid value for "greeting"`, `"reject-me" is refused`}, nil},
		{"external, block the plugin rejects", block("health", "ext", testPlugin, "    greeting = \"reject-block\"\n"), hcl.DiagError,
			[]string{file + ":1,", "Plugin rejects its configuration", "the whole block is refused"}, nil},
		{"external without a validator", block("health", "old", noValidate, "    greeting = \"reject-me\"\n"), hcl.DiagWarning,
			[]string{"checked against the schema only", "does not implement sdk.ConfigValidator"}, nil},
		{"external whose own schema is wrong", block("health", "broken", badSchema, ""), hcl.DiagError,
			[]string{file + ":1,", "Plugin did not start", "no plugin handshake", `its stderr: plugin "test-health": schema: attribute "every": default soon is not a duration`}, pluginhost.ErrNotPlugin},
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
			// The position is the diagnostic's subject; its text does not
			// say it (nor the plugin's prefix) a second time.
			for _, twice := range []string{file + ":", "plugin: plugin", "plugin " + strconv.Quote(tc.spec.Name) + ": "} {
				if strings.Contains(d.Detail, twice) {
					t.Errorf("detail repeats %q: %s", twice, d.Detail)
				}
			}
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

// A block the plugin refuses at Load (mesh run) is a ConfigError at the
// attribute's own line, naming the plugin once.
func TestLoadRejectedAttribute(t *testing.T) {
	h, _ := newHost(t, nil)
	spec := pluginBlock(t, "/etc/mesh/mesh.hcl", "plugin \"health\" \"ext\" {\n  command = \""+testPlugin+"\"\n  config {\n    greeting = \"reject-me\"\n  }\n}\n")
	_, err := h.Load(ctxT(t), spec)
	var diags hcl.Diagnostics
	if !errors.Is(err, pluginhost.ErrConfig) || !errors.As(err, &diags) {
		t.Fatalf("Load: %v, want a config error", err)
	}
	if len(diags) != 1 || diags[0].Subject == nil || diags[0].Subject.Start.Line != 4 {
		t.Fatalf("diagnostics %v, want one at line 4", diags)
	}
	msg := err.Error()
	if n := strings.Count(msg, `"ext"`); n != 1 {
		t.Errorf("plugin named %d times in %q", n, msg)
	}
	for _, w := range []string{"/etc/mesh/mesh.hcl:4,", `Invalid value for "greeting"`, `"reject-me" is refused`} {
		if !strings.Contains(msg, w) {
			t.Errorf("error lacks %q: %s", w, msg)
		}
	}
	if n := len(h.Statuses()); n != 0 {
		t.Errorf("a refused plugin stays loaded (%d)", n)
	}
}

// Integers a plugin logs reach the host's log as integers, not as floats
// in exponent form; fractions stay fractions. The line carries the
// plugin's fields alone, sorted, without go-plugin's timestamp and
// hclog's @module.
func TestPluginLogIntegers(t *testing.T) {
	h, logs := newHost(t, nil)
	hc, err := h.Health(ctxT(t), pluginhost.Spec{Kind: "health", Name: "ints", Command: testPlugin})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hc.Check(ctxT(t), sdk.HealthCheck{URL: "http://127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	var line string
	waitFor(t, 5*time.Second, "the plugin's log line in the host log", func() bool {
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "test check served") {
				line = l
				return true
			}
		}
		return false
	})
	for _, w := range []string{"bytes=8900000", "ratio=0.5"} {
		if !strings.Contains(line, w) {
			t.Errorf("log line lacks %s: %s", w, line)
		}
	}
	// Nothing the host's line says already, and the fields in one order.
	if want := "test check served: bytes=8900000 ratio=0.5 url=http://127.0.0.1:1"; !strings.HasSuffix(line, want) {
		t.Errorf("log line %q, want it to end %q", line, want)
	}
}
