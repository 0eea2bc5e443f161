package config

import (
	"strings"
	"testing"
)

// Attributes of a bundled backend inside the repo block configure it as a
// plugin block would.
func TestRepoBackendInline(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		wantAttr []string // attributes of the repo/http plugin config
		wantErr  string
	}{
		{"inline", `repo {
  backend    = "http"
  url        = "http://127.0.0.1:7070"
  token_file = "token"
}`, []string{"url", "token_file"}, ""},
		{"plugin block", `repo { backend = "http" }
plugin "repo" "http" {
  config {
    url = "http://127.0.0.1:7070"
  }
}`, []string{"url"}, ""},
		{"plugin block without config", `repo {
  backend = "http"
  url     = "http://127.0.0.1:7070"
}
plugin "repo" "http" {}`, []string{"url"}, ""},
		{"both", `repo {
  backend = "http"
  url     = "http://127.0.0.1:7070"
}
plugin "repo" "http" {
  config {
    url = "http://127.0.0.1:7071"
  }
}`, nil, "configured twice"},
		{"no backend", `repo { url = "http://x" }`, nil, "names no backend"},
		{"external backend", `repo {
  backend = "s4"
  url     = "http://x"
}
plugin "repo" "s4" { command = "/bin/true" }`, nil, "Only a bundled repo backend"},
		{"a block inside", `repo {
  backend = "http"
  tls {}
}`, nil, "Unexpected \"tls\" block"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, diags := parseIn(t, t.TempDir(), tc.src)
			if tc.wantErr != "" {
				if !diags.HasErrors() || !strings.Contains(diags.Error(), tc.wantErr) {
					t.Fatalf("diagnostics %v, want %q", diags, tc.wantErr)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			p, ok := cfg.Plugin(KindRepo, "http")
			if !ok || p.Config == nil {
				t.Fatalf("no repo/http plugin config: %+v", cfg.Plugins)
			}
			attrs, d := p.Config.JustAttributes()
			if d.HasErrors() {
				t.Fatal(d)
			}
			if len(attrs) != len(tc.wantAttr) {
				t.Fatalf("config attributes %v, want %v", attrs, tc.wantAttr)
			}
			for _, a := range tc.wantAttr {
				if attrs[a] == nil {
					t.Errorf("attribute %s missing from %v", a, attrs)
				}
			}
		})
	}
}
