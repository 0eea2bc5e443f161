package sdk_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/sdk"
)

func TestConfigHelpers(t *testing.T) {
	c := sdk.Config{
		"s": "text", "n": 2.5, "i": 3, "b": true, "d": "250ms", "bad_d": "soon",
		"l": []string{"x", "y"}, "jl": []any{"p", "q"}, "mixed": []any{"p", 1.0},
	}
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"string", c.String("s", "def"), "text"},
		{"string absent", c.String("nope", "def"), "def"},
		{"string wrong type", c.String("n", "def"), "def"},
		{"number", c.Number("n", 1), 2.5},
		{"number from int", c.Number("i", 1), 3.0},
		{"number absent", c.Number("nope", 7), 7.0},
		{"number wrong type", c.Number("s", 7), 7.0},
		{"bool", c.Bool("b", false), true},
		{"bool absent", c.Bool("nope", true), true},
		{"duration", c.Duration("d", time.Second), 250 * time.Millisecond},
		{"duration absent", c.Duration("nope", time.Second), time.Second},
		{"duration malformed", c.Duration("bad_d", time.Second), time.Second},
		{"list", c.StringList("l", nil), []string{"x", "y"}},
		{"list from JSON", c.StringList("jl", nil), []string{"p", "q"}},
		{"list mixed", c.StringList("mixed", []string{"def"}), []string{"def"}},
		{"list absent", c.StringList("nope", []string{"def"}), []string{"def"}},
		{"int", c.Int("i", 9), int64(3)},
		{"int from a whole float", sdk.Config{"f": 4.0}.Int("f", 9), int64(4)},
		{"int from a fraction", c.Int("n", 9), int64(9)},
		{"int absent", c.Int("nope", 9), int64(9)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Fatalf("got %#v, want %#v", tt.got, tt.want)
			}
		})
	}
	// StringList hands out a copy.
	l := c.StringList("l", nil)
	l[0] = "changed"
	if c.StringList("l", nil)[0] != "x" {
		t.Fatal("StringList returned the config's own slice")
	}
}

func TestWithDefaults(t *testing.T) {
	s := sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "a", Type: sdk.TypeString, Default: "da"},
		{Name: "b", Type: sdk.TypeNumber, Default: 2.0},
		{Name: "c", Type: sdk.TypeBool},
	}}
	got := sdk.Config{"a": "set"}.WithDefaults(s)
	want := sdk.Config{"a": "set", "b": 2.0}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestSchemaValidate(t *testing.T) {
	tests := []struct {
		name  string
		attrs []sdk.Attribute
		err   string
	}{
		{"empty", nil, ""},
		{"all types with defaults", []sdk.Attribute{
			{Name: "s", Type: sdk.TypeString, Default: "x"},
			{Name: "n", Type: sdk.TypeNumber, Default: 1.0},
			{Name: "b", Type: sdk.TypeBool, Default: false},
			{Name: "d", Type: sdk.TypeDuration, Default: "1s"},
			{Name: "l", Type: sdk.TypeStringList, Default: []string{}},
		}, ""},
		{"empty name", []sdk.Attribute{{Type: sdk.TypeString}}, "empty name"},
		{"duplicate", []sdk.Attribute{{Name: "a", Type: sdk.TypeString}, {Name: "a", Type: sdk.TypeBool}}, "declared twice"},
		{"unknown type", []sdk.Attribute{{Name: "a", Type: "map"}}, "unknown type"},
		{"string default not a string", []sdk.Attribute{{Name: "a", Type: sdk.TypeString, Default: 1}}, "not a string"},
		{"bad duration default", []sdk.Attribute{{Name: "a", Type: sdk.TypeDuration, Default: "soon"}}, "not a duration"},
		{"number default not a number", []sdk.Attribute{{Name: "a", Type: sdk.TypeNumber, Default: "1"}}, "not a number"},
		{"int with bounds and default", []sdk.Attribute{{Name: "a", Type: sdk.TypeInt, Default: 3, Min: new(0.0), Max: new(5.0)}}, ""},
		{"int default a fraction", []sdk.Attribute{{Name: "a", Type: sdk.TypeInt, Default: 2.5}}, "not an int"},
		{"default below min", []sdk.Attribute{{Name: "a", Type: sdk.TypeInt, Default: 0, Min: new(1.0)}}, "at least 1"},
		{"min above max", []sdk.Attribute{{Name: "a", Type: sdk.TypeNumber, Min: new(2.0), Max: new(1.0)}}, "above max"},
		{"bounds on a string", []sdk.Attribute{{Name: "a", Type: sdk.TypeString, Min: new(1.0)}}, "apply to number and int"},
		{"one_of on a number", []sdk.Attribute{{Name: "a", Type: sdk.TypeNumber, OneOf: []string{"x"}}}, "applies to string"},
		{"default not one of", []sdk.Attribute{{Name: "a", Type: sdk.TypeString, Default: "slow", OneOf: []string{"fast", "fair"}}}, "must be one of"},
		{"lists and maps with defaults", []sdk.Attribute{
			{Name: "li", Type: sdk.TypeIntList, Default: []int64{1, 2}, Min: new(0.0)},
			{Name: "ln", Type: sdk.TypeNumberList, Default: []float64{0.5}},
			{Name: "lb", Type: sdk.TypeBoolList, Default: []bool{true}},
			{Name: "ms", Type: sdk.TypeStringMap, Default: map[string]string{"a": "fast"}, OneOf: []string{"fast"}},
			{Name: "mi", Type: sdk.TypeIntMap, Default: map[string]int{"a": 1}},
			{Name: "mn", Type: sdk.TypeNumberMap},
			{Name: "mb", Type: sdk.TypeBoolMap, Default: map[string]any{"x": false}},
		}, ""},
		{"list default of the wrong element type", []sdk.Attribute{{Name: "a", Type: sdk.TypeIntList, Default: []string{"1"}}}, "is not a list(int)"},
		{"map default element below min", []sdk.Attribute{{Name: "a", Type: sdk.TypeIntMap, Default: map[string]int64{"x": -1}, Min: new(0.0)}}, `element "x" must be at least 0`},
		{"bounds on a list of strings", []sdk.Attribute{{Name: "a", Type: sdk.TypeStringList, Max: new(1.0)}}, "apply to number and int"},
		{"list of durations", []sdk.Attribute{{Name: "a", Type: "list(duration)"}}, "unknown type"},
		{"map of lists", []sdk.Attribute{{Name: "a", Type: "map(list(string))"}}, "unknown type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sdk.Schema{Attributes: tt.attrs}.Validate()
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err %v, want it to mention %q", err, tt.err)
			}
		})
	}
}

func TestSchemaValidateBlocks(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    sdk.Schema
		err  string
	}{
		{"nested", sdk.Schema{Blocks: []sdk.Block{{Name: "backend", Repeated: true, Schema: sdk.Schema{
			Attributes: []sdk.Attribute{{Name: "url", Type: sdk.TypeString, Required: true}},
			Blocks:     []sdk.Block{{Name: "tls"}}}}}}, ""},
		{"empty block name", sdk.Schema{Blocks: []sdk.Block{{}}}, "block with empty name"},
		{"block named like an attribute", sdk.Schema{Attributes: []sdk.Attribute{{Name: "x", Type: sdk.TypeBool}},
			Blocks: []sdk.Block{{Name: "x"}}}, `name "x" declared twice`},
		{"mistake inside a block", sdk.Schema{Blocks: []sdk.Block{{Name: "b", Schema: sdk.Schema{
			Attributes: []sdk.Attribute{{Name: "n", Type: sdk.TypeInt, Default: "one"}}}}}}, `block "b": attribute "n": default one is not an int`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Validate()
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err %v, want it to mention %q", err, tc.err)
			}
		})
	}
}
