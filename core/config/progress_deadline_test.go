package config

import (
	"strings"
	"testing"
	"time"
)

func TestProgressDeadline(t *testing.T) {
	app := func(extra string) string {
		return "app \"a\" {\n  digest = \"" + goodDigest + "\"\n" + extra + "}\n"
	}
	tests := []struct {
		name          string
		src           string
		global, inApp time.Duration
		err           string
	}{
		{"default", app(""), DefaultProgressDeadline, DefaultProgressDeadline, ""},
		{"global applies to apps", "progress_deadline = \"90s\"\n" + app(""), 90 * time.Second, 90 * time.Second, ""},
		{"app overrides", "progress_deadline = \"90s\"\n" + app("  progress_deadline = \"20s\"\n"), 90 * time.Second, 20 * time.Second, ""},
		{"zero refused", app("  progress_deadline = \"0s\"\n"), 0, 0, "greater than zero"},
		{"garbage refused", "progress_deadline = \"soon\"\n", 0, 0, "Invalid duration"},
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
			if cfg.ProgressDeadline != tt.global || cfg.Apps[0].ProgressDeadline != tt.inApp {
				t.Fatalf("deadlines %s / %s, want %s / %s", cfg.ProgressDeadline, cfg.Apps[0].ProgressDeadline, tt.global, tt.inApp)
			}
		})
	}
	// Changing only the deadline changes no plan.
	a, _ := parseIn(t, t.TempDir(), app(""))
	b, _ := parseIn(t, t.TempDir(), app("  progress_deadline = \"20s\"\n"))
	if a.Apps[0].Hash != b.Apps[0].Hash {
		t.Fatal("progress_deadline changed the app hash")
	}
}
