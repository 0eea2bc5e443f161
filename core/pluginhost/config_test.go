package pluginhost_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/mycelium-mesh/mesh/core/pluginhost"
	"github.com/mycelium-mesh/mesh/sdk"
)

func TestDecodeConfig(t *testing.T) {
	schema := sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "s", Type: sdk.TypeString, Default: "ds"},
		{Name: "n", Type: sdk.TypeNumber, Default: 1.0},
		{Name: "b", Type: sdk.TypeBool},
		{Name: "d", Type: sdk.TypeDuration, Default: "1s"},
		{Name: "l", Type: sdk.TypeStringList},
		{Name: "req", Type: sdk.TypeString, Required: true},
	}}
	tests := []struct {
		name string
		src  string // nil body when "-"
		want sdk.Config
		errs []string // each "line:summary"
	}{
		{"defaults", `req = "r"`, sdk.Config{"req": "r", "s": "ds", "n": 1.0, "d": "1s"}, nil},
		{"every type", "req = \"r\"\ns = \"x\"\nn = 2.5\nb = true\nd = \"250ms\"\nl = [\"a\", \"b\"]\n",
			sdk.Config{"req": "r", "s": "x", "n": 2.5, "b": true, "d": "250ms", "l": []string{"a", "b"}}, nil},
		{"conversions", "req = 5\ns = 12\nn = \"3\"\nb = \"true\"\n",
			sdk.Config{"req": "5", "s": "12", "n": 3.0, "b": true, "d": "1s"}, nil},
		{"expression", "req = \"a-${1+1}\"", sdk.Config{"req": "a-2", "s": "ds", "n": 1.0, "d": "1s"}, nil},
		{"nil body, missing required", "-", nil, []string{"0:Missing required argument"}},
		{"unknown attribute", "req = \"r\"\ncolor = 1\n", nil, []string{"2:Unsupported argument"}},
		{"block not allowed", "req = \"r\"\nsub {\n}\n", nil, []string{"2:Unsupported block type"}},
		{"wrong types", "req = \"r\"\nn = \"many\"\nb = \"maybe\"\nl = \"one\"\n", nil,
			[]string{"2:Incorrect attribute value type", "3:Incorrect attribute value type", "4:Incorrect attribute value type"}},
		{"bad duration", "req = \"r\"\n\nd = \"10 minutes\"\n", nil, []string{"3:Incorrect attribute value type"}},
		{"null required", "req = null\n", nil, []string{"1:Missing value"}},
		{"variable not allowed", "req = var.x\n", nil, []string{"1:Variables not allowed"}},
		{"all mistakes at once", "colour = 1\nn = \"x\"\n", nil, []string{"1:Unsupported argument", "1:Missing required argument", "2:Incorrect attribute value type"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body hcl.Body
			if tt.src != "-" {
				f, diags := hclsyntax.ParseConfig([]byte(tt.src), "mesh.hcl", hcl.InitialPos)
				if diags.HasErrors() {
					t.Fatal(diags)
				}
				body = f.Body
			}
			cfg, diags := pluginhost.DecodeConfig(schema, body)
			if len(tt.errs) == 0 {
				if diags.HasErrors() {
					t.Fatal(diags)
				}
				if !reflect.DeepEqual(cfg, tt.want) {
					t.Fatalf("got %#v\nwant %#v", cfg, tt.want)
				}
				return
			}
			var got []string
			for _, d := range diags {
				line := 0
				if d.Subject != nil && d.Subject.Filename == "mesh.hcl" {
					line = d.Subject.Start.Line
				}
				got = append(got, strconv.Itoa(line)+":"+d.Summary)
			}
			for _, want := range tt.errs {
				found := false
				for _, g := range got {
					if g == want {
						found = true
					}
				}
				if !found {
					t.Errorf("missing diagnostic %q; got %q", want, got)
				}
			}
		})
	}
}

func TestDecodeConfigContext(t *testing.T) {
	schema := sdk.Schema{Attributes: []sdk.Attribute{{Name: "token", Type: sdk.TypeString}}}
	f, diags := hclsyntax.ParseConfig([]byte(`token = var.secret`), "mesh.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	ectx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{"secret": cty.StringVal("s3")})}}
	cfg, diags := pluginhost.DecodeConfigContext(schema, f.Body, ectx)
	if diags.HasErrors() || cfg.String("token", "") != "s3" {
		t.Fatalf("cfg %v diags %v", cfg, diags)
	}
}

func TestBundledSchemaWithoutLaunch(t *testing.T) {
	for _, info := range pluginhost.Bundled() {
		s, ok := pluginhost.BundledSchema(info.Kind, info.Name)
		if !ok {
			t.Fatalf("no schema for %s/%s", info.Kind, info.Name)
		}
		if err := s.Validate(); err != nil {
			t.Errorf("%s/%s: %v", info.Kind, info.Name, err)
		}
		if !pluginhost.IsBundled(info.Kind, info.Name) {
			t.Errorf("IsBundled(%s, %s) = false", info.Kind, info.Name)
		}
	}
	if len(pluginhost.Bundled()) != 10 {
		t.Fatalf("bundled: %v", pluginhost.Bundled())
	}
	if s, ok := pluginhost.BundledSchema(sdk.KindRepo, "fs"); !ok || len(s.Attributes) != 1 || !s.Attributes[0].Required {
		t.Fatalf("repo fs schema %+v", s)
	}
	if _, ok := pluginhost.BundledSchema(sdk.KindHealth, "round-robin"); ok {
		t.Fatal("round-robin is not a health plugin")
	}
	if err := pluginhost.ServeBundled(sdk.KindHealth, "nope"); err == nil {
		t.Fatal("ServeBundled of an unknown plugin returned nil")
	}
}

// A path attribute written relative is resolved against the directory of
// the file that sets it, and arrives absolute even when that file was named
// relative to the working directory; an absolute one is kept; an empty one
// is refused; a default is resolved as if it were written in the block.
func TestDecodeConfigPath(t *testing.T) {
	schema := sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "dir", Type: sdk.TypePath},
		{Name: "cache", Type: sdk.TypePath, Default: "cache"},
	}}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file, src, want, err string
		cache                string // "" to skip
	}{
		{"/etc/mesh/mesh.hcl", `dir = "blobs"`, "/etc/mesh/blobs", "", "/etc/mesh/cache"},
		{"/etc/mesh/mesh.hcl", `dir = "../shared/blobs"`, "/etc/shared/blobs", "", ""},
		{"/etc/mesh/mesh.hcl", `dir = "/var/lib/blobs"`, "/var/lib/blobs", "", ""},
		{"/etc/mesh/mesh.hcl", `dir = ""`, "", "Incorrect attribute value type", ""},
		{"mesh.hcl", `dir = "blobs"`, filepath.Join(wd, "blobs"), "", filepath.Join(wd, "cache")},
		{"conf/mesh.hcl", `dir = "./blobs"`, filepath.Join(wd, "conf", "blobs"), "", ""},
	} {
		f, diags := hclsyntax.ParseConfig([]byte(tc.src), tc.file, hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		cfg, diags := pluginhost.DecodeConfig(schema, f.Body)
		if tc.err != "" {
			if !diags.HasErrors() || diags[0].Summary != tc.err {
				t.Errorf("%s: diags %v, want %q", tc.src, diags, tc.err)
			}
			continue
		}
		if diags.HasErrors() {
			t.Fatalf("%s: %v", tc.src, diags)
		}
		if got := cfg.String("dir", ""); got != tc.want {
			t.Errorf("%s: dir = %q, want %q", tc.src, got, tc.want)
		}
		if got := cfg.String("cache", ""); tc.cache != "" && got != tc.cache {
			t.Errorf("%s: default cache = %q, want %q", tc.src, got, tc.cache)
		}
	}
}

// Int attributes arrive as int64; min, max and one_of are enforced by the
// host at the attribute's line, so the plugin never sees a value outside
// them.
func TestDecodeConfigConstraints(t *testing.T) {
	schema := sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "count", Type: sdk.TypeInt, Default: int64(2), Min: new(1.0), Max: new(8.0)},
		{Name: "ratio", Type: sdk.TypeNumber, Max: new(1.0)},
		{Name: "mode", Type: sdk.TypeString, OneOf: []string{"fast", "fair"}},
	}}
	for _, tc := range []struct {
		src  string
		want sdk.Config // nil: an error is expected
		err  string
	}{
		{``, sdk.Config{"count": int64(2)}, ""},
		{`count = 8`, sdk.Config{"count": int64(8)}, ""},
		{`count = "3"`, sdk.Config{"count": int64(3)}, ""},
		{`count = 2.5`, nil, "whole number"},
		{`count = "many"`, nil, "whole number"},
		{`count = 0`, nil, "must be between 1 and 8, got 0"},
		{`count = 9`, nil, "must be between 1 and 8, got 9"},
		{`ratio = 1.5`, nil, "must be at most 1, got 1.5"},
		{`ratio = 0.25`, sdk.Config{"count": int64(2), "ratio": 0.25}, ""},
		{`mode = "fair"`, sdk.Config{"count": int64(2), "mode": "fair"}, ""},
		{`mode = "slow"`, nil, `must be one of ["fast" "fair"], got "slow"`},
	} {
		t.Run(tc.src, func(t *testing.T) {
			f, diags := hclsyntax.ParseConfig([]byte("\n"+tc.src), "/etc/mesh/mesh.hcl", hcl.InitialPos)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			cfg, diags := pluginhost.DecodeConfig(schema, f.Body)
			if tc.want != nil {
				if diags.HasErrors() {
					t.Fatal(diags)
				}
				if !reflect.DeepEqual(cfg, tc.want) {
					t.Fatalf("got %#v, want %#v", cfg, tc.want)
				}
				return
			}
			if len(diags) != 1 || !strings.Contains(diags[0].Detail, tc.err) || diags[0].Subject == nil || diags[0].Subject.Start.Line != 2 {
				t.Fatalf("diags %v, want one at line 2 saying %q", diags, tc.err)
			}
		})
	}
}
