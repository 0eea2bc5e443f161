package config

import (
	"strings"
	"testing"
)

func TestProvisionBlock(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want map[string]string // provider → plugin
		err  string
	}{
		{"defaults", ``, map[string]string{"localStatic": "local-static", "criomosHost": "mesh-app"}, ""},
		{"override", `
plugin "hosting" "mirror" { command = "/bin/true" }
provision { providers = { localStatic = "mirror" } }`, map[string]string{"localStatic": "mirror", "s3Static": "s3-static"}, ""},
		{"unknown provider", `provision { providers = { netlify = "local-static" } }`, nil, `"netlify" is not a HostingProvider`},
		{"undeclared plugin", `provision { providers = { localStatic = "nope" } }`, nil, `No hosting plugin named "nope"`},
		{"not a map", `provision { providers = "x" }`, nil, "must be a map"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, diags := Parse([]byte(tt.src), "/tmp/mesh.hcl")
			if tt.err != "" {
				if !diags.HasErrors() || !strings.Contains(diags.Error(), tt.err) {
					t.Fatalf("diags %v, want %q", diags, tt.err)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			for p, want := range tt.want {
				if got := cfg.Provision.Plugin(p); got != want {
					t.Fatalf("%s → %s, want %s", p, got, want)
				}
			}
		})
	}
}
