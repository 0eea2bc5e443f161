package config

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

const (
	goodKey    = "ed25519:7ukElwFPq4ulD8TJBJoZR2znpNTTQCIzRwU4DQc9kwU="
	goodDigest = "sha256:fac0a478370c10defa2ec7a5fc18d60c4bc1caf2101f1f0697fce68dbd0b239d"
)

// parseIn writes nothing; it parses src as if it were dir/mesh.hcl.
func parseIn(t *testing.T, dir, src string) (*Config, hcl.Diagnostics) {
	t.Helper()
	return Parse([]byte(src), filepath.Join(dir, "mesh.hcl"))
}

func TestDefaults(t *testing.T) {
	dir := t.TempDir()
	cfg, diags := parseIn(t, dir, "")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := &Config{
		File:     filepath.Join(dir, "mesh.hcl"),
		DataDir:  filepath.Join(dir, ".mesh/data"),
		RunDir:   filepath.Join(dir, ".mesh/run"),
		Warmup:   2 * time.Second,
		Grace:    5 * time.Second,
		LogLevel: "info",
		Repo:     RepoConfig{Dir: filepath.Join(dir, ".mesh/repo")},

		ProgressDeadline: 5 * time.Minute,
		MinHealthy:       10 * time.Second,
		Edge: EdgeConfig{
			Listen: "127.0.0.1:8080", Admin: "127.0.0.1:9090", LogInterval: 10 * time.Second,
			Balancer: "round-robin", ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 90 * time.Second,
			UpstreamTimeout: 30 * time.Second, MaxHeaderBytes: 65536,
			RequestBodyTimeout: time.Minute, WriteTimeout: time.Minute, StreamIdleTimeout: 5 * time.Minute,
			MaxConnsPerEndpoint: 1024,
		},
		Control: ControlConfig{Socket: filepath.Join(dir, ".mesh/control.sock")},
		Agents:  AgentsConfig{Count: 3, NodeIDs: []string{"n1", "n2", "n3"}, HealthTimeout: 6 * time.Second},
		Health:  HealthConfig{Plugin: "http", Path: "/health", Timeout: time.Second},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", cfg, want)
	}
}

func TestFullConfig(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "keys", "dev.pub")
	if err := os.MkdirAll(filepath.Dir(keyFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, []byte(goodKey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "billing.spore"), []byte("zip"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MESH_TEST_TOKEN", "0123456789abcdef0123")
	t.Setenv("MESH_TEST_PORT", "8181")
	src := `
data_dir = "/var/lib/mesh"
run_dir  = "run"
warmup   = "500ms"
grace    = "1m"
trusted_keys = ["` + goodKey + `", "./keys/dev.pub"]
log_level = "DEBUG"
repo {
  dir     = "blobs"
  backend = "fs"
}
edge {
  listen              = "127.0.0.1:${env("MESH_TEST_PORT")}"
  admin               = ""
  log_interval        = "1s"
  balancer            = "my-lb"
  read_header_timeout = "2s"
  idle_timeout        = "1m"
  upstream_timeout    = "3s"
  max_header_bytes    = 8192
  request_body_timeout = "20s"
  write_timeout        = "45s"
  stream_idle_timeout  = "2m"
  max_connections      = 5000
  max_conns_per_endpoint = 64
  trusted_proxies      = ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]
}
control {
  socket = ""
  listen = "127.0.0.1:7070"
  token  = env("MESH_TEST_TOKEN")
}
agents {
  node "alpha" {}
  node "beta" {}
  health_timeout = "3s"
}
health {
  plugin  = "tcp"
  path    = "/ready"
  timeout = "250ms"
}
plugin "balancer" "my-lb" {
  command = "./bin/my-lb"
  sha256  = "FAC0A478370C10DEFA2EC7A5FC18D60C4BC1CAF2101F1F0697FCE68DBD0B239D"
  config {
    weight_by = "latency"
  }
}
plugin "repo" "fs" {
  config { dir = "/srv/blobs" }
}
app "billing" {
  spore        = "billing.spore"
  min          = 2
  max          = 4
  port         = 9000
  restart      = "always"
  strip_prefix = false
  balancer     = "least-loaded"
  health_path  = "/healthz"
  budget {
    max_instances = 4
    cpu_milli     = 500
    memory_mb     = 256
  }
}
app "search" {
  digest = "` + strings.TrimPrefix(goodDigest, "sha256:") + `"
}
`
	cfg, diags := parseIn(t, dir, src)
	if diags.HasErrors() {
		var buf bytes.Buffer
		WriteDiagnostics(&buf, diags, map[string][]byte{filepath.Join(dir, "mesh.hcl"): []byte(src)}, 0, false)
		t.Fatal(buf.String())
	}
	if len(diags) != 0 {
		t.Fatalf("unexpected warnings: %v", diags)
	}
	check := func(name string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", name, got, want)
		}
	}
	check("DataDir", cfg.DataDir, "/var/lib/mesh")
	check("RunDir", cfg.RunDir, filepath.Join(dir, "run"))
	check("Warmup", cfg.Warmup, 500*time.Millisecond)
	check("Grace", cfg.Grace, time.Minute)
	check("TrustedKeys", cfg.TrustedKeys, []string{goodKey, keyFile})
	check("LogLevel", cfg.LogLevel, "debug")
	check("Repo", cfg.Repo, RepoConfig{Dir: filepath.Join(dir, "blobs"), Backend: "fs"})
	check("Edge", cfg.Edge, EdgeConfig{
		Listen: "127.0.0.1:8181", Admin: "", LogInterval: time.Second, Balancer: "my-lb",
		ReadHeaderTimeout: 2 * time.Second, IdleTimeout: time.Minute, UpstreamTimeout: 3 * time.Second,
		MaxHeaderBytes:     8192,
		RequestBodyTimeout: 20 * time.Second, WriteTimeout: 45 * time.Second, StreamIdleTimeout: 2 * time.Minute,
		MaxConnections:      5000,
		MaxConnsPerEndpoint: 64,
		TrustedProxies:      []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/32")},
	})
	check("Control", cfg.Control, ControlConfig{Listen: "127.0.0.1:7070", Token: "0123456789abcdef0123"})
	check("Agents", cfg.Agents, AgentsConfig{Count: 2, NodeIDs: []string{"alpha", "beta"}, HealthTimeout: 3 * time.Second})
	check("Health", cfg.Health, HealthConfig{Plugin: "tcp", Path: "/ready", Timeout: 250 * time.Millisecond})

	if len(cfg.Plugins) != 2 {
		t.Fatalf("Plugins = %+v", cfg.Plugins)
	}
	lb := cfg.Plugins[0]
	check("plugin kind/name", [2]string{lb.Kind, lb.Name}, [2]string{"balancer", "my-lb"})
	check("plugin command", lb.Command, filepath.Join(dir, "bin/my-lb"))
	check("plugin sha256", lb.SHA256, strings.TrimPrefix(goodDigest, "sha256:"))
	check("plugin line", lb.DeclRange.Start.Line, lineOf(src, `plugin "balancer" "my-lb"`))
	if lb.Config == nil {
		t.Fatal("plugin config body is nil")
	}
	attrs, d := lb.Config.JustAttributes()
	if d.HasErrors() || attrs["weight_by"] == nil {
		t.Fatalf("plugin config body: %v %v", attrs, d)
	}
	if v, _ := attrs["weight_by"].Expr.Value(nil); v.AsString() != "latency" {
		t.Errorf("weight_by = %v", v)
	}
	fs, ok := cfg.Plugin("repo", "fs")
	if !ok || fs.Command != "" || fs.Config == nil {
		t.Errorf("bundled fs plugin block = %+v, %v", fs, ok)
	}

	billing, ok := cfg.App("billing")
	if !ok {
		t.Fatal("no billing app")
	}
	check("billing", AppConfig{
		Name: billing.Name, Digest: billing.Digest, Spore: billing.Spore, Min: billing.Min, Max: billing.Max,
		Port: billing.Port, Restart: billing.Restart, StripPrefix: billing.StripPrefix,
		Balancer: billing.Balancer, HealthPath: billing.HealthPath, Budget: billing.Budget,
	}, AppConfig{
		Name: "billing", Spore: filepath.Join(dir, "billing.spore"), Min: 2, Max: 4, Port: 9000,
		Restart: "always", StripPrefix: false, Balancer: "least-loaded", HealthPath: "/healthz",
		Budget: &BudgetConfig{MaxInstances: 4, CPUMilli: 500, MemoryMB: 256},
	})
	check("billing line", billing.DeclRange.Start.Line, lineOf(src, `app "billing"`))
	search, _ := cfg.App("search")
	check("search digest", search.Digest, goodDigest)
	check("search defaults", []any{search.Min, search.Max, search.Port, search.Restart, search.StripPrefix, search.Balancer, search.HealthPath, search.Budget},
		[]any{1, 1, 0, "on-failure", true, "my-lb", "/ready", (*BudgetConfig)(nil)})
	if billing.Hash == "" || search.Hash == "" || billing.Hash == search.Hash {
		t.Errorf("hashes %q and %q", billing.Hash, search.Hash)
	}
}

// lineOf returns the 1-based line of the first occurrence of sub in src.
func lineOf(src, sub string) int {
	i := strings.Index(src, sub)
	if i < 0 {
		return -1
	}
	return strings.Count(src[:i], "\n") + 1
}

func TestAppHash(t *testing.T) {
	dir := t.TempDir()
	load := func(src string) AppConfig {
		t.Helper()
		cfg, diags := parseIn(t, dir, src)
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		return cfg.Apps[0]
	}
	base := load(`app "a" {
  digest = "` + goodDigest + `"
  max = 2
}`)
	// Formatting, comments, spelling out defaults and other blocks do not
	// change the hash.
	same := load(`# comment
edge { listen = ":9999" }
app "a" {
    max    = 2
    digest = "` + strings.ToUpper(strings.TrimPrefix(goodDigest, "sha256:")) + `"
    min = 1
    restart = "on-failure"
}`)
	if base.Hash != same.Hash {
		t.Errorf("equivalent blocks hash differently: %s vs %s", base.Hash, same.Hash)
	}
	app := func(extra string) string {
		return "app \"a\" {\n  digest = \"" + goodDigest + "\"\n  max = 2\n" + extra + "\n}\n"
	}
	for _, changed := range []string{
		"app \"a\" {\n  digest = \"" + goodDigest + "\"\n  max = 3\n}",
		"app \"a\" {\n  digest = \"sha256:" + strings.Repeat("1", 64) + "\"\n  max = 2\n}",
		app(`restart = "always"`),
		app(`port = 8000`),
		app(`strip_prefix = false`),
		app(`health_path = "/hz"`),
		app("budget {\n memory_mb = 10\n}"),
		app("budget {}"),
		"edge {\n  balancer = \"least-loaded\"\n}\n" + app(""),
	} {
		if h := load(changed).Hash; h == base.Hash {
			t.Errorf("changed block keeps the hash:\n%s", changed)
		}
	}
}

func TestEnvFunction(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("MESH_TEST_SET", "/from/env")
	cfg, diags := parseIn(t, dir, `
data_dir = env("MESH_TEST_SET")
log_level = "${env("MESH_TEST_SURELY_UNSET_12345")}warn"
`)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if cfg.DataDir != "/from/env" || cfg.LogLevel != "warn" {
		t.Fatalf("DataDir %q, LogLevel %q", cfg.DataDir, cfg.LogLevel)
	}
}

// TestDiagnostics feeds broken snippets and checks each error's summary and
// the line it points at.
func TestDiagnostics(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "present.spore"), []byte("zip"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MESH_TEST_EMPTY", "")
	d := goodDigest
	tests := []struct {
		name    string
		src     string
		summary string
		line    int
		detail  string // substring of the detail, optional
	}{
		{"syntax", "edge {\n  listen = \n}", "Invalid expression", 2, ""},
		{"unknown top attribute", "data_dir = \"x\"\nfoo = 1", "Unsupported argument", 2, `"foo"`},
		{"unknown block", "\n\nfrobnicate {}", "Unsupported block type", 3, ""},
		{"unknown edge attribute", "edge {\n  listne = \":80\"\n}", "Unsupported argument", 2, `"listen"`},
		{"admin on the edge address", "edge {\n  listen = \"127.0.0.1:8080\"\n  admin  = \"127.0.0.1:8080\"\n}", "Address used twice", 3, "own port"},
		{"duplicate edge", "edge {}\n\nedge {}", "Duplicate edge block", 3, "line 1"},
		{"bad duration", "warmup = \"2\"", "Invalid duration", 1, `"2"`},
		{"negative duration", "\ngrace = \"-1s\"", "Invalid duration", 2, "negative"},
		{"zero timeout", "edge {\n idle_timeout = \"0s\"\n}", "Invalid duration", 2, "greater than zero"},
		{"duration wrong type", "warmup = 2", "Invalid duration", 1, ""},
		{"wrong type", "data_dir = [\"a\"]", "Incorrect attribute value type", 1, ""},
		{"log level", "log_level = \"loud\"", "Invalid log level", 1, "loud"},
		{"empty data dir", "data_dir = \"\"", "Empty path", 1, ""},
		{"listen missing port", "edge {\n  listen = \"127.0.0.1\"\n}", "Invalid listen address", 2, "missing port"},
		{"listen bad port", "edge {\n  listen = \"127.0.0.1:99999\"\n}", "Invalid listen address", 2, "99999"},
		{"listen garbage host", "edge {\n  admin = \"not a host:80\"\n}", "Invalid listen address", 2, ""},
		{"header bytes", "edge {\n  max_header_bytes = 10\n}", "Invalid header size limit", 2, ""},
		{"header bytes fraction", "edge {\n  max_header_bytes = 10.5\n}", "Invalid whole number", 2, ""},
		{"unknown balancer", "edge {\n  balancer = \"random\"\n}", "Unknown balancer plugin", 2, "least-loaded, round-robin"},
		{"unknown repo backend", "repo {\n  backend = \"s3\"\n}", "Unknown repo plugin", 2, ""},
		{"unknown health plugin", "health {\n  plugin = \"grpc\"\n}", "Unknown health plugin", 2, ""},
		{"health path", "health {\n  path = \"health\"\n}", "Invalid HTTP path", 2, ""},
		{"control listen without token", "control {\n  listen = \"127.0.0.1:7000\"\n}", "Control listener without token", 2, "token"},
		{"control token from unset env", "control {\n  listen = \"127.0.0.1:7000\"\n  token = env(\"MESH_TEST_EMPTY\")\n}", "Control listener without token", 2, "environment variable"},
		{"control bad listen", "control {\n  listen = \"7000\"\n  token = \"0123456789abcdef\"\n}", "Invalid listen address", 2, ""},
		{"control listen on every interface without token", "control {\n  listen = \":7000\"\n}", "Control listener without token", 2, "not a loopback address"},
		{"control listen on a public address without token", "control {\n  listen = \"192.0.2.7:7000\"\n}", "Control listener without token", 2, "refused without a bearer token"},
		{"control listen on a host name, token from unset env", "control {\n  listen = \"mesh.example:7000\"\n  token = env(\"MESH_TEST_EMPTY\")\n}", "Control listener without token", 2, "environment variable"},
		{"env without argument", "data_dir = env()", "Not enough function arguments", 1, ""},
		{"env bad name", "data_dir = env(\"\")", "Invalid function argument", 1, ""},
		{"unknown function", "data_dir = file(\"x\")", "Call to unknown function", 1, ""},
		{"trusted key bad base64", "trusted_keys = [\n  \"" + goodKey + "\",\n  \"ed25519:@@@\",\n]", "Invalid trusted key", 3, "base64"},
		{"trusted key short", "trusted_keys = [\"ed25519:AAAA\"]", "Invalid trusted key", 1, "want 32"},
		{"trusted key missing file", "\ntrusted_keys = [\"./nope.pub\"]", "Trusted key file not found", 2, "nope.pub"},
		{"trusted key bad file", "trusted_keys = [\n  \"./present.spore\"]", "Invalid trusted key", 2, "present.spore"},
		{"trusted key empty", "trusted_keys = [\"\"]", "Invalid trusted key", 1, "empty"},
		{"agents count zero", "agents {\n  count = 0\n}", "Invalid agent count", 2, ""},
		{"agents negative", "agents {\n  count = -2\n}", "Invalid agent count", 2, ""},
		{"agents both", "agents {\n  count = 2\n  node \"a\" {}\n}", "Both count and node blocks", 2, "line 3"},
		{"duplicate node", "agents {\n  node \"a\" {}\n  node \"b\" {}\n  node \"a\" {}\n}", "Duplicate node ID", 4, "line 2"},
		{"bad node id", "agents {\n  node \"../x\" {}\n}", "Invalid node ID", 2, ""},
		{"node attributes", "agents {\n  node \"a\" {\n    port = 1\n  }\n}", "Unsupported argument", 3, ""},
		{"agents health timeout", "agents {\n  health_timeout = \"soon\"\n}", "Invalid duration", 2, ""},
		{"plugin kind", "plugin \"storage\" \"x\" {\n  command = \"./x\"\n}", "Invalid plugin kind", 1, `"storage"`},
		{"plugin name", "plugin \"balancer\" \"a/b\" {\n  command = \"./x\"\n}", "Invalid plugin name", 1, ""},
		{"duplicate plugin", "plugin \"balancer\" \"x\" {\n  command = \"./x\"\n}\nplugin \"balancer\" \"x\" {\n  command = \"./y\"\n}", "Duplicate plugin block", 4, "line 1"},
		{"unknown bundled plugin", "\nplugin \"balancer\" \"fancy\" {}", "Missing plugin command", 2, "round-robin"},
		{"bundled name of other kind", "plugin \"health\" \"round-robin\" {}", "Missing plugin command", 1, "http, tcp"},
		{"plugin bad sha", "plugin \"balancer\" \"x\" {\n  command = \"./x\"\n  sha256 = \"abc\"\n}", "Invalid sha256", 3, ""},
		{"plugin sha without command", "plugin \"balancer\" \"round-robin\" {\n  sha256 = \"" + d + "\"\n}", "sha256 without command", 2, ""},
		{"plugin two configs", "plugin \"balancer\" \"round-robin\" {\n  config {}\n  config {}\n}", "Duplicate config block", 3, ""},
		{"plugin unknown attribute", "plugin \"balancer\" \"round-robin\" {\n  path = \"x\"\n}", "Unsupported argument", 2, ""},
		{"plugin missing labels", "plugin \"balancer\" {}", "Missing name for plugin", 1, ""},
		{"app without source", "\napp \"billing\" {\n  min = 1\n}", "Missing digest or spore", 2, ""},
		{"app both sources", "app \"billing\" {\n  digest = \"" + d + "\"\n  spore = \"./present.spore\"\n}", "Both digest and spore", 3, "line 2"},
		{"app bad digest", "app \"billing\" {\n  digest = \"sha256:1234\"\n}", "Invalid digest", 2, "64 hex"},
		{"app digest path trick", "app \"billing\" {\n  digest = \"../../etc/passwd\"\n}", "Invalid digest", 2, ""},
		{"app digest other algo", "app \"billing\" {\n  digest = \"md5:d41d8cd98f00b204e9800998ecf8427e\"\n}", "Invalid digest", 2, "unsupported algorithm"},
		{"app missing spore", "app \"billing\" {\n  spore = \"./missing.spore\"\n}", "Spore file not found", 2, "missing.spore"},
		{"app min > max", "app \"billing\" {\n  digest = \"" + d + "\"\n  min = 3\n  max = 2\n}", "Invalid instance range", 4, "min (3)"},
		{"app negative min", "app \"billing\" {\n  digest = \"" + d + "\"\n  min = -1\n}", "Negative number", 3, ""},
		{"app negative max", "app \"billing\" {\n  digest = \"" + d + "\"\n  max = -1\n}", "Negative number", 3, ""},
		{"app port range", "app \"billing\" {\n  digest = \"" + d + "\"\n  port = 70000\n}", "Invalid port", 3, ""},
		{"app negative port", "app \"billing\" {\n  digest = \"" + d + "\"\n  port = -80\n}", "Negative number", 3, ""},
		{"app restart", "app \"billing\" {\n  digest = \"" + d + "\"\n  restart = \"sometimes\"\n}", "Invalid restart policy", 3, "sometimes"},
		{"app strip_prefix type", "app \"billing\" {\n  digest = \"" + d + "\"\n  strip_prefix = \"maybe\"\n}", "Incorrect attribute value type", 3, ""},
		{"app balancer", "app \"billing\" {\n  digest = \"" + d + "\"\n  balancer = \"nope\"\n}", "Unknown balancer plugin", 3, ""},
		{"app health path", "app \"billing\" {\n  digest = \"" + d + "\"\n  health_path = \"/a b\"\n}", "Invalid HTTP path", 3, ""},
		{"app name", "app \"bill/ing\" {\n  digest = \"" + d + "\"\n}", "Invalid app name", 1, ""},
		{"app name dot-dot", "app \"..\" {\n  digest = \"" + d + "\"\n}", "Invalid app name", 1, ""},
		{"duplicate app", "app \"a\" {\n  digest = \"" + d + "\"\n}\n\napp \"a\" {\n  digest = \"" + d + "\"\n}", "Duplicate app block", 5, "line 1"},
		{"budget negative", "app \"a\" {\n  digest = \"" + d + "\"\n  budget {\n    cpu_milli = -5\n  }\n}", "Negative number", 4, ""},
		{"budget unknown", "app \"a\" {\n  digest = \"" + d + "\"\n  budget {\n    gpus = 1\n  }\n}", "Unsupported argument", 4, ""},
		{"two budgets", "app \"a\" {\n  digest = \"" + d + "\"\n  budget {}\n  budget {}\n}", "Duplicate budget block", 4, ""},
		{"app unknown attribute", "app \"a\" {\n  digest = \"" + d + "\"\n  replicas = 3\n}", "Unsupported argument", 3, ""},
		{"trusted proxy not a prefix", "edge {\n  trusted_proxies = [\"10.0.0.0/8\",\n    \"10.0.0.0/33\"]\n}", "Invalid trusted proxy", 3, "10.0.0.0/33"},
		{"trusted proxies not a list", "edge {\n  trusted_proxies = 5\n}", "Incorrect attribute value type", 2, ""},
		{"negative max_connections", "edge {\n  max_connections = -1\n}", "Negative number", 2, ""},
		{"zero max_conns_per_endpoint", "edge {\n  max_conns_per_endpoint = 0\n}", "Invalid connection cap", 2, ""},
		{"zero write_timeout", "edge {\n  write_timeout = \"0s\"\n}", "Invalid duration", 2, ""},
		{"bad stream_idle_timeout", "edge {\n  stream_idle_timeout = \"forever\"\n}", "Invalid duration", 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, diags := parseIn(t, dir, tt.src)
			if !diags.HasErrors() {
				t.Fatalf("no error for:\n%s", tt.src)
			}
			if cfg != nil {
				t.Error("Config returned along with errors")
			}
			var found *hcl.Diagnostic
			for _, d := range diags {
				if d.Severity == hcl.DiagError && d.Summary == tt.summary {
					found = d
					break
				}
			}
			if found == nil {
				t.Fatalf("no %q error; got %v", tt.summary, diags)
			}
			if found.Subject == nil {
				t.Fatalf("%q has no subject", tt.summary)
			}
			if found.Subject.Start.Line != tt.line {
				t.Errorf("%q points at line %d, want %d", tt.summary, found.Subject.Start.Line, tt.line)
			}
			if found.Subject.Filename != filepath.Join(dir, "mesh.hcl") {
				t.Errorf("subject file %q", found.Subject.Filename)
			}
			if tt.detail != "" && !strings.Contains(found.Detail, tt.detail) {
				t.Errorf("detail %q does not mention %q", found.Detail, tt.detail)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		src     string
		summary string
		line    int
	}{
		{"budget below min", "app \"a\" {\n  digest = \"" + goodDigest + "\"\n  min = 3\n  max = 3\n  budget {\n    max_instances = 2\n  }\n}", "Budget below min", 6},
		{"short token", "control {\n  listen = \"127.0.0.1:7000\"\n  token = \"abc\"\n}", "Short control token", 3},
		{"control disabled", "\ncontrol {\n  socket = \"\"\n}", "Control API disabled", 2},
		{"control listen on every interface", "control {\n  listen = \":7000\"\n  token = \"0123456789abcdef\"\n}", "Control listener off loopback", 2},
		{"control listen on a public address", "control {\n  token = \"0123456789abcdef\"\n  listen = \"192.0.2.7:7000\"\n}", "Control listener off loopback", 3},
		{"control listen on a host name", "control {\n  listen = \"mesh.example:7000\"\n  token = \"0123456789abcdef\"\n}", "Control listener off loopback", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, diags := parseIn(t, dir, tt.src)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			if cfg == nil {
				t.Fatal("no config with warnings only")
			}
			if len(diags) != 1 || diags[0].Severity != hcl.DiagWarning || diags[0].Summary != tt.summary {
				t.Fatalf("diags = %v, want one %q warning", diags, tt.summary)
			}
			if diags[0].Subject.Start.Line != tt.line {
				t.Errorf("warning at line %d, want %d", diags[0].Subject.Start.Line, tt.line)
			}
		})
	}
}

func TestAllErrorsReportedAtOnce(t *testing.T) {
	src := "warmup = \"x\"\nedge {\n  listen = \"nope\"\n}\napp \"a\" {\n  restart = \"x\"\n  digest = \"y\"\n}\n"
	_, diags := parseIn(t, t.TempDir(), src)
	var lines []int
	for _, d := range diags {
		lines = append(lines, d.Subject.Start.Line)
	}
	if !reflect.DeepEqual(lines, []int{1, 3, 6, 7}) {
		t.Fatalf("error lines %v (%v)", lines, diags)
	}
}

func TestLoadAndWriteDiagnostics(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "broken.hcl")
	src := "edge {\n  listen = \"127.0.0.1:8080\"\n}\n\napp \"billing\" {\n  digest  = \"" + goodDigest + "\"\n  restart = \"sometimes\"\n}\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, diags := Load(path)
	if cfg != nil || !diags.HasErrors() {
		t.Fatalf("Load = %v, %v", cfg, diags)
	}
	var buf bytes.Buffer
	if err := WriteDiagnostics(&buf, diags, nil, 0, false); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"Error: Invalid restart policy",
		"on " + path + " line 7, in app \"billing\":",
		`   7:   restart = "sometimes"`,
		`restart must be "never", "on-failure" or "always"; got "sometimes".`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// Sources given explicitly win over the disk.
	buf.Reset()
	if err := WriteDiagnostics(&buf, diags, map[string][]byte{path: []byte(strings.Replace(src, "sometimes", "SOMETIMES", 1))}, 0, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "SOMETIMES") {
		t.Errorf("explicit source ignored:\n%s", buf.String())
	}

	_, diags = Load(filepath.Join(dir, "missing.hcl"))
	if !diags.HasErrors() || diags[0].Summary != "Cannot read configuration file" {
		t.Fatalf("missing file: %v", diags)
	}
}

func TestExampleFile(t *testing.T) {
	path := filepath.Join("..", "..", "examples", "mesh.hcl")
	cfg, diags := Load(path)
	if len(diags) != 0 {
		var buf bytes.Buffer
		WriteDiagnostics(&buf, diags, nil, 0, false)
		t.Fatalf("examples/mesh.hcl:\n%s", buf.String())
	}
	if len(cfg.Apps) == 0 || len(cfg.Plugins) == 0 || len(cfg.TrustedKeys) == 0 {
		t.Errorf("example does not exercise apps, plugins and keys: %+v", cfg)
	}
}

func TestCheckHostPort(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:8080": true, ":8080": true, "localhost:0": true, "[::1]:9090": true,
		"mesh.example.internal:443": true, "127.0.0.1": false, "127.0.0.1:http": false,
		"127.0.0.1:-1": false, "a b:80": false, "host_name:80": false, "[::1:80": false, "": false,
	} {
		if err := checkHostPort(addr); (err == nil) != ok {
			t.Errorf("checkHostPort(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7000": true, "127.0.0.2:7000": true, "[::1]:7000": true, "localhost:7000": true,
		":7000": false, "0.0.0.0:7000": false, "[::]:7000": false, "192.0.2.7:7000": false,
		"mesh.example:7000": false, "127.0.0.1": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
