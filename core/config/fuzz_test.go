package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// FuzzParse feeds arbitrary source to Parse: it must never panic, must return
// a Config exactly when there is no error, and every error it reports about
// the file must point into it.
func FuzzParse(f *testing.F) {
	if src, err := os.ReadFile(filepath.Join("..", "..", "examples", "mesh.hcl")); err == nil {
		f.Add(string(src))
	}
	for _, s := range []string{
		"", "warmup = \"2s\"", "edge {\n listen = \":1\"\n}", "agents {\n node \"a\" {}\n}",
		"app \"a\" {\n digest = \"" + goodDigest + "\"\n budget {}\n}",
		"plugin \"balancer\" \"x\" {\n command = \"./x\"\n config { a = 1 }\n}",
		"data_dir = env(\"HOME\")", "trusted_keys = [\"" + goodKey + "\"]",
		"app \"a\" {", "x = ${", "control {\n listen = \"127.0.0.1:1\"\n token = \"t\"\n}",
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	name := filepath.Join(dir, "mesh.hcl")
	f.Fuzz(func(t *testing.T, src string) {
		cfg, diags := Parse([]byte(src), name)
		if diags.HasErrors() != (cfg == nil) {
			t.Fatalf("errors %v but config %v", diags.HasErrors(), cfg != nil)
		}
		for _, d := range diags {
			if d.Severity != hcl.DiagError || d.Subject == nil || d.Subject.Filename != name {
				continue
			}
			if d.Subject.Start.Byte > len(src) || d.Subject.End.Byte > len(src)+1 {
				t.Fatalf("diagnostic %q points outside the source: %v", d.Summary, d.Subject)
			}
		}
		if cfg != nil && cfg.Agents.Count != len(cfg.Agents.NodeIDs) {
			t.Fatalf("count %d but %d node IDs", cfg.Agents.Count, len(cfg.Agents.NodeIDs))
		}
	})
}
