package config

import (
	"strings"
	"testing"
)

func TestLogsAndEnforcement(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		wantLogs LogsConfig
		enforce  bool
		maxPids  int
		wantErr  string // a diagnostic summary, "" for none
	}{
		{"defaults", `app "a" { digest = "` + goodDigest + `" }`, LogsConfig{DefaultLogMaxSize, DefaultLogMaxFiles}, false, 0, ""},
		{"logs block", `app "a" {
  digest = "` + goodDigest + `"
  logs {
    max_size  = "64KB"
    max_files = 5
  }
  budget { max_instances = 2 }
}`, LogsConfig{64 << 10, 5}, false, 0, ""},
		{"size in MB", `app "a" {
  digest = "` + goodDigest + `"
  logs { max_size = "10MB" }
}`, LogsConfig{10 << 20, DefaultLogMaxFiles}, false, 0, ""},
		{"enforcement", `agents {
  enforce_nutrients = true
  max_pids = 128
}`, LogsConfig{}, true, 128, ""},
		{"bad size", `app "a" {
  digest = "` + goodDigest + `"
  logs { max_size = "ten" }
}`, LogsConfig{}, false, 0, "Invalid size"},
		{"tiny size", `app "a" {
  digest = "` + goodDigest + `"
  logs { max_size = "100B" }
}`, LogsConfig{}, false, 0, "Log size too small"},
		{"bad max_files", `app "a" {
  digest = "` + goodDigest + `"
  logs { max_files = 0 }
}`, LogsConfig{}, false, 0, "Invalid max_files"},
		{"two logs blocks", `app "a" {
  digest = "` + goodDigest + `"
  logs {}
  logs {}
}`, LogsConfig{}, false, 0, "Duplicate logs block"},
		{"bad max_pids", `agents { max_pids = 0 }`, LogsConfig{}, false, 0, "Invalid max_pids"},
		{"adopt", `agents { adopt = true }`, LogsConfig{}, false, 0, ""},
		{"bad adopt", `agents { adopt = "yes" }`, LogsConfig{}, false, 0, "adopt"},
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
			if cfg.Agents.Adopt != strings.Contains(tc.src, "adopt = true") {
				t.Fatalf("agents adopt %v for %s", cfg.Agents.Adopt, tc.src)
			}
			if cfg.Agents.EnforceNutrients != tc.enforce || cfg.Agents.MaxPids != tc.maxPids {
				t.Fatalf("agents %+v", cfg.Agents)
			}
			if len(cfg.Apps) > 0 {
				if cfg.Apps[0].Logs != tc.wantLogs {
					t.Fatalf("logs %+v, want %+v", cfg.Apps[0].Logs, tc.wantLogs)
				}
				if len(cfg.Apps) == 1 && strings.Contains(tc.src, "budget") && cfg.Apps[0].Budget == nil {
					t.Fatal("budget block lost next to a logs block")
				}
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"512", 512, true}, {"4KB", 4096, true}, {"10MB", 10 << 20, true}, {"1GiB", 1 << 30, true},
		{"2 mb", 2 << 20, true}, {"7B", 7, true}, {"-1MB", 0, false}, {"1.5MB", 0, false}, {"", 0, false},
		{"99999999999GB", 0, false},
	} {
		got, err := parseSize(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseSize(%q) = %d, %v", c.in, got, err)
		}
	}
}
