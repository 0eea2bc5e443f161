package config

import (
	"strings"
	"testing"
	"time"
)

// TestMinHealthy: min_healthy defaults from the table, applies to every app,
// is overridden per app, may be zero (off), and changes no plan.
func TestMinHealthy(t *testing.T) {
	app := func(extra string) string {
		return "app \"a\" {\n  digest = \"" + goodDigest + "\"\n" + extra + "}\n"
	}
	tests := []struct {
		name          string
		src           string
		global, inApp time.Duration
		err           string
	}{
		{"default", app(""), DefaultMinHealthy, DefaultMinHealthy, ""},
		{"global applies to apps", "min_healthy = \"30s\"\n" + app(""), 30 * time.Second, 30 * time.Second, ""},
		{"app overrides", "min_healthy = \"30s\"\n" + app("  min_healthy = \"3s\"\n"), 30 * time.Second, 3 * time.Second, ""},
		{"zero turns it off", app("  min_healthy = \"0s\"\n"), DefaultMinHealthy, 0, ""},
		{"negative refused", app("  min_healthy = \"-1s\"\n"), 0, 0, "must not be negative"},
		{"garbage refused", "min_healthy = \"soon\"\n", 0, 0, "Invalid duration"},
		{"not below the deadline refused", "min_healthy = \"5m\"\n" + app(""), 0, 0, "not below progress_deadline"},
		{"not below the app's deadline refused", app("  progress_deadline = \"20s\"\n  min_healthy = \"20s\"\n"), 0, 0, "not below progress_deadline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, diags := parseIn(t, t.TempDir(), tt.src)
			if tt.err != "" {
				if !diags.HasErrors() || !strings.Contains(diags.Error(), tt.err) {
					t.Fatalf("want error %q, got %v", tt.err, diags)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			if cfg.MinHealthy != tt.global || cfg.Apps[0].MinHealthy != tt.inApp {
				t.Fatalf("min_healthy %s / %s, want %s / %s", cfg.MinHealthy, cfg.Apps[0].MinHealthy, tt.global, tt.inApp)
			}
		})
	}
	a, _ := parseIn(t, t.TempDir(), app(""))
	b, _ := parseIn(t, t.TempDir(), app("  min_healthy = \"3s\"\n"))
	if a.Apps[0].Hash != b.Apps[0].Hash {
		t.Fatal("min_healthy changed the app hash")
	}
}
