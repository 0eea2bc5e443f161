package hclconfig_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/mycelium-mesh/mesh/sdk"
	"github.com/mycelium-mesh/mesh/sdk/hclconfig"
)

func parse(t *testing.T, file, src string) hcl.Body {
	t.Helper()
	f, diags := hclsyntax.ParseConfig([]byte(src), file, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return f.Body
}

// Lists and maps arrive as typed Go slices and maps, their elements
// checked against Min, Max and OneOf at the attribute's line.
func TestDecodeListsAndMaps(t *testing.T) {
	schema := sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "ports", Type: sdk.TypeIntList, Min: new(1.0), Max: new(65535.0)},
		{Name: "ratios", Type: sdk.TypeNumberList},
		{Name: "flags", Type: sdk.TypeBoolList},
		{Name: "names", Type: sdk.TypeStringList, OneOf: []string{"a", "b"}},
		{Name: "weights", Type: sdk.TypeIntMap, Min: new(0.0), Default: map[string]int64{}},
		{Name: "labels", Type: sdk.TypeStringMap},
		{Name: "scales", Type: sdk.TypeNumberMap},
		{Name: "enabled", Type: sdk.TypeBoolMap},
	}}
	for _, tc := range []struct {
		src  string
		want sdk.Config // nil: an error at line 2 is expected
		err  string
	}{
		{``, sdk.Config{"weights": map[string]int64{}}, ""},
		{`ports = [80, "443"]`, sdk.Config{"ports": []int64{80, 443}, "weights": map[string]int64{}}, ""},
		{`ratios = [0.5, 1]`, sdk.Config{"ratios": []float64{0.5, 1}, "weights": map[string]int64{}}, ""},
		{`flags = [true, false]`, sdk.Config{"flags": []bool{true, false}, "weights": map[string]int64{}}, ""},
		{`weights = { "node-1" = 5, node-2 = 0 }`, sdk.Config{"weights": map[string]int64{"node-1": 5, "node-2": 0}}, ""},
		{`labels = { zone = "a" }`, sdk.Config{"labels": map[string]string{"zone": "a"}, "weights": map[string]int64{}}, ""},
		{`scales = { x = 1.5 }`, sdk.Config{"scales": map[string]float64{"x": 1.5}, "weights": map[string]int64{}}, ""},
		{`enabled = { x = true }`, sdk.Config{"enabled": map[string]bool{"x": true}, "weights": map[string]int64{}}, ""},
		{`ports = [80, 0]`, nil, "element 1 must be between 1 and 65535, got 0"},
		{`ports = [80, 2.5]`, nil, "element 1: a whole number is required, got 2.5"},
		{`ports = 80`, nil, "a list of whole numbers is required"},
		{`ports = [80, null]`, nil, "must not contain null"},
		{`names = ["a", "c"]`, nil, `element 1 must be one of ["a" "b"], got "c"`},
		{`weights = ["node-1=5"]`, nil, "a map of whole numbers is required, written as { key = value }"},
		{`weights = { a = -1 }`, nil, `element "a" must be at least 0, got -1`},
		{`weights = { a = "many" }`, nil, "a map of whole numbers is required"},
		{`weights = { a = 1.5 }`, nil, `element "a": a whole number is required, got 1.5`},
	} {
		t.Run(tc.src, func(t *testing.T) {
			cfg, diags := hclconfig.Decode(schema, parse(t, "/etc/mesh/mesh.hcl", "\n"+tc.src), nil)
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

// Nested blocks are decoded against their own schema, with their own
// defaults and paths, and every mistake in them points at its own line.
func TestDecodeBlocks(t *testing.T) {
	schema := sdk.Schema{
		Attributes: []sdk.Attribute{{Name: "mode", Type: sdk.TypeString, Default: "fair"}},
		Blocks: []sdk.Block{
			{Name: "backend", Repeated: true, Required: true, Schema: sdk.Schema{
				Attributes: []sdk.Attribute{
					{Name: "url", Type: sdk.TypeString, Required: true},
					{Name: "weight", Type: sdk.TypeInt, Default: int64(1), Min: new(0.0)},
				},
				Blocks: []sdk.Block{{Name: "tls", Schema: sdk.Schema{Attributes: []sdk.Attribute{
					{Name: "ca", Type: sdk.TypePath, Required: true},
				}}}},
			}},
			{Name: "cache", Schema: sdk.Schema{Attributes: []sdk.Attribute{
				{Name: "dir", Type: sdk.TypePath, Default: "cache"},
			}}},
		},
	}
	ok := `
backend {
  url = "http://a"
  tls {
    ca = "certs/ca.pem"
  }
}
backend {
  url    = "http://b"
  weight = 3
}
cache {}
`
	cfg, diags := hclconfig.Decode(schema, parse(t, "/etc/mesh/mesh.hcl", ok), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := sdk.Config{
		"mode": "fair",
		"backend": []sdk.Config{
			{"url": "http://a", "weight": int64(1), "tls": sdk.Config{"ca": "/etc/mesh/certs/ca.pem"}},
			{"url": "http://b", "weight": int64(3)},
		},
		"cache": sdk.Config{"dir": "/etc/mesh/cache"},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("got  %#v\nwant %#v", cfg, want)
	}

	for _, tc := range []struct {
		name, src string
		line      int
		summary   string
	}{
		{"required block missing", "mode = \"x\"\n", 1, "Missing required block"},
		{"single block twice", "backend {\n url = \"a\"\n}\ncache {}\ncache {}\n", 5, "Duplicate block"},
		{"unknown attribute inside", "backend {\n url = \"a\"\n color = 1\n}\n", 3, "Unsupported argument"},
		{"missing attribute inside", "backend {\n weight = 1\n}\n", 1, "Missing required argument"},
		{"wrong type inside", "backend {\n url = \"a\"\n weight = \"heavy\"\n}\n", 3, "Incorrect attribute value type"},
		{"constraint inside", "backend {\n url = \"a\"\n weight = -2\n}\n", 3, "Invalid attribute value"},
		{"nested twice deep", "backend {\n url = \"a\"\n tls {\n  ca = [\"x\"]\n }\n}\n", 4, "Incorrect attribute value type"},
		{"labels refused", "backend \"x\" {\n url = \"a\"\n}\n", 1, "Extraneous label for backend"},
		{"unknown block", "backend {\n url = \"a\"\n}\nextra {}\n", 4, "Unsupported block type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := hclconfig.Decode(schema, parse(t, "/etc/mesh/mesh.hcl", tc.src), nil)
			if !diags.HasErrors() {
				t.Fatal("no error")
			}
			d := diags[0]
			if d.Summary != tc.summary || d.Subject == nil || d.Subject.Start.Line != tc.line || d.Subject.Filename != "/etc/mesh/mesh.hcl" {
				t.Fatalf("diags %v, want %q at line %d", diags, tc.summary, tc.line)
			}
		})
	}
}

func TestLocate(t *testing.T) {
	body := parse(t, "m.hcl", `mode = "x"
cache {
  dir = "d"
}
backend {
  url = "a"
}
backend {
  url = "b"
  tls {
    ca = "c"
  }
}
`)
	for _, tc := range []struct {
		path string
		line int // 0: not found
	}{
		{"mode", 1}, {"cache.dir", 3}, {"cache", 2}, {"backend.url", 6}, {"backend[0].url", 6},
		{"backend[1].url", 9}, {"backend[1].tls.ca", 11}, {"backend[1]", 8},
		{"backend[2].url", 0}, {"cache.size", 0}, {"nope", 0}, {"backend[x].url", 0}, {"", 0},
	} {
		rng, ok := hclconfig.Locate(body, tc.path)
		if got := map[bool]int{true: rng.Start.Line}[ok]; got != tc.line {
			t.Errorf("Locate(%q) = line %d (%v), want %d", tc.path, rng.Start.Line, ok, tc.line)
		}
	}
}
