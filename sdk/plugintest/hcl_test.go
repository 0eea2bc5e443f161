package plugintest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/sdk"
	"github.com/mycelium-mesh/mesh/sdk/plugintest"
)

func TestMain(m *testing.M) { plugintest.Main(m, func() sdk.Plugin { return &echo{} }) }

// echo is a health checker whose Check answers with the configuration it
// was given, so a test can see what crossed the wire.
type echo struct {
	mu  sync.Mutex
	cfg sdk.Config
}

func (e *echo) Info() sdk.Info { return sdk.Info{Kind: sdk.KindHealth, Name: "echo", Version: "1"} }

func (e *echo) Schema() sdk.Schema {
	return sdk.Schema{
		Attributes: []sdk.Attribute{
			{Name: "dir", Type: sdk.TypePath},
			{Name: "cache", Type: sdk.TypePath, Default: "cache"},
			{Name: "every", Type: sdk.TypeDuration, Default: "1s"},
		},
		Blocks: []sdk.Block{{Name: "backend", Repeated: true, Schema: sdk.Schema{Attributes: []sdk.Attribute{
			{Name: "url", Type: sdk.TypeString, Required: true},
			{Name: "weight", Type: sdk.TypeInt, Default: int64(1), Min: new(0.0)},
		}}}},
	}
}

func (e *echo) Configure(_ context.Context, cfg sdk.Config) error {
	for i, b := range cfg.Blocks("backend") {
		if b.Int("weight", 0) == 13 {
			return sdk.AttrErrorf(fmt.Sprintf("backend[%d].weight", i), "13 is unlucky")
		}
	}
	if cfg.String("dir", "") == "/refused" {
		return fmt.Errorf("no thanks")
	}
	e.mu.Lock()
	e.cfg = cfg
	e.mu.Unlock()
	return nil
}

func (e *echo) Check(context.Context, sdk.HealthCheck) (sdk.HealthResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	b, err := json.Marshal(e.cfg)
	return sdk.HealthResult{Healthy: true, Reason: string(b)}, err
}

// seen is the configuration the plugin process holds.
func seen(t *testing.T, p *plugintest.Plugin) map[string]any {
	t.Helper()
	res, err := p.Health().Check(context.Background(), sdk.HealthCheck{URL: "x", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(res.Reason), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// A snippet is decoded as the host decodes it: defaults filled in, paths
// made absolute against the snippet's directory, nested blocks with their
// own defaults.
func TestRunConfiguresFromHCL(t *testing.T) {
	p := plugintest.Run(t)
	if p.PID() <= 0 || p.PID() == os.Getpid() {
		t.Fatalf("plugin pid %d: not a process of its own", p.PID())
	}
	wd, _ := os.Getwd()
	p.MustConfigure(`
dir = "data"
backend {
  url = "http://a"
}
backend {
  url    = "http://b"
  weight = 3
}
`)
	want := map[string]any{
		"dir": filepath.Join(wd, "data"), "cache": filepath.Join(wd, "cache"), "every": "1s",
		"backend": []any{map[string]any{"url": "http://a", "weight": 1.0}, map[string]any{"url": "http://b", "weight": 3.0}},
	}
	if got := seen(t, p); !reflect.DeepEqual(got, want) {
		t.Fatalf("plugin holds %v\nwant %v", got, want)
	}

	p.File = "/etc/mesh/conf.d/lb.hcl"
	p.MustConfigure(`dir = "../data"`)
	if got := seen(t, p); got["dir"] != "/etc/mesh/data" || got["cache"] != "/etc/mesh/conf.d/cache" {
		t.Fatalf("paths against File's directory: %v", got)
	}
}

// What the host refuses, and what the plugin refuses, come back as
// diagnostics at the line that caused them.
func TestRunReportsMistakesAtTheirLine(t *testing.T) {
	p := plugintest.Run(t)
	for _, tc := range []struct {
		name, src string
		line      int
		want      string
	}{
		{"unknown attribute", "\ncolour = 1", 2, "Unsupported argument"},
		{"wrong type", "every = \"soon\"", 1, "is not a duration"},
		{"missing attribute in a block", "backend {\n  weight = 1\n}", 1, `"url" is required`},
		{"below min in a block", "backend {\n  url = \"a\"\n  weight = -1\n}", 3, "must be at least 0"},
		{"plugin refuses a nested value", "backend {\n  url = \"a\"\n}\nbackend {\n  url = \"b\"\n  weight = 13\n}", 6, `Invalid value for "backend[1].weight"`},
		{"plugin refuses the block", "\n\ndir = \"/refused\"", 1, "no thanks"},
		{"syntax", "dir = ", 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.Configure(tc.src)
			if err == nil || !strings.Contains(err.Error(), tc.want) || plugintest.Line(err) != tc.line {
				t.Fatalf("err %v (line %d), want %q at line %d", err, plugintest.Line(err), tc.want, tc.line)
			}
			if strings.Contains(err.Error(), "mesh.hcl:") == false {
				t.Fatalf("diagnostic does not name the file: %v", err)
			}
		})
	}
	// echo has no ValidateConfig.
	if err := p.Validate(``); err == nil || !strings.Contains(err.Error(), "does not check configurations") {
		t.Fatalf("Validate: %v", err)
	}
}
