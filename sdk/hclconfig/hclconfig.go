// Package hclconfig decodes a plugin's `config { ... }` block of mesh.hcl
// against the schema the plugin declares, exactly as the mesh host does:
// the host calls it before it configures a plugin, and plugintest calls it
// so a plugin's tests see the configuration the host would send.
//
// Decoding checks what the schema says: unknown attributes and blocks,
// missing required ones, values of the wrong type, malformed durations,
// Min, Max and OneOf, single blocks written twice. Each mistake is an
// hcl.Diagnostic at the attribute's or block's own file and line.
// Absent attributes take their defaults, and a TypePath arrives absolute:
// relative to the directory of the file it was written in (a relative
// default as if written there).
//
// Plugin authors rarely import it: sdk/plugintest wraps it.
package hclconfig

import (
	"fmt"
	"math"
	"math/big"
	"path/filepath"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/mycelium-mesh/mesh/sdk"
)

// Decode decodes body against schema. A nil body is an empty block; ectx
// (may be nil) offers the functions and variables expressions may use.
func Decode(schema sdk.Schema, body hcl.Body, ectx *hcl.EvalContext) (sdk.Config, hcl.Diagnostics) {
	if body == nil {
		body = hcl.EmptyBody()
	}
	return decodeBody(schema, body, ectx)
}

func decodeBody(schema sdk.Schema, body hcl.Body, ectx *hcl.EvalContext) (sdk.Config, hcl.Diagnostics) {
	bs := &hcl.BodySchema{}
	byName := make(map[string]sdk.Attribute, len(schema.Attributes))
	for _, a := range schema.Attributes {
		bs.Attributes = append(bs.Attributes, hcl.AttributeSchema{Name: a.Name, Required: a.Required})
		byName[a.Name] = a
	}
	for _, b := range schema.Blocks {
		bs.Blocks = append(bs.Blocks, hcl.BlockHeaderSchema{Type: b.Name})
	}
	content, diags := body.Content(bs)
	cfg := sdk.Config{}
	if content == nil {
		return cfg, diags
	}
	for name, attr := range content.Attributes {
		val, d := decodeAttr(byName[name], attr, ectx)
		diags = append(diags, d...)
		if val != nil {
			cfg[name] = val
		}
	}
	// A path left to its default is resolved as if it were written in
	// the block.
	for _, a := range schema.Attributes {
		if p, ok := a.Default.(string); ok && a.Type == sdk.TypePath && p != "" {
			if _, set := cfg[a.Name]; !set {
				cfg[a.Name] = resolvePath(p, body.MissingItemRange().Filename)
			}
		}
	}
	for _, b := range schema.Blocks {
		v, d := decodeBlocks(b, content.Blocks.OfType(b.Name), body, ectx)
		diags = append(diags, d...)
		if v != nil {
			cfg[b.Name] = v
		}
	}
	return cfg.WithDefaults(schema), diags
}

// decodeBlocks decodes the blocks of one type: a []sdk.Config for a
// repeated block, an sdk.Config for a single one, nil when none is written.
func decodeBlocks(b sdk.Block, blocks hcl.Blocks, parent hcl.Body, ectx *hcl.EvalContext) (any, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	if len(blocks) == 0 {
		if b.Required {
			rng := parent.MissingItemRange()
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing required block",
				Detail: fmt.Sprintf("At least one %q block is required here.", b.Name), Subject: &rng})
		}
		return nil, diags
	}
	if !b.Repeated && len(blocks) > 1 {
		first := blocks[0].DefRange
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate block",
			Detail:  fmt.Sprintf("Only one %q block is allowed; the first is at %s.", b.Name, first),
			Subject: blocks[1].DefRange.Ptr()})
		return nil, diags
	}
	out := make([]sdk.Config, 0, len(blocks))
	for _, blk := range blocks {
		c, d := decodeBody(b.Schema, blk.Body, ectx)
		diags = append(diags, d...)
		out = append(out, c)
	}
	if !b.Repeated {
		if len(out) == 0 {
			return nil, diags
		}
		return out[0], diags
	}
	return out, diags
}

// decodeAttr evaluates, converts and checks one attribute; the value is
// nil when it is null or wrong.
func decodeAttr(a sdk.Attribute, attr *hcl.Attribute, ectx *hcl.EvalContext) (any, hcl.Diagnostics) {
	v, diags := attr.Expr.Value(ectx)
	if diags.HasErrors() {
		return nil, diags
	}
	if !v.IsWhollyKnown() {
		return nil, append(diags, attrDiag(attr, "Unknown value", fmt.Sprintf("The value of %q must be known when mesh starts.", a.Name)))
	}
	if v.IsNull() {
		if a.Required {
			diags = append(diags, attrDiag(attr, "Missing value", fmt.Sprintf("The attribute %q is required and must not be null.", a.Name)))
		}
		return nil, diags
	}
	val, detail := convertValue(a.Type, v)
	if detail != "" {
		return nil, append(diags, attrDiag(attr, "Incorrect attribute value type", fmt.Sprintf("Inappropriate value for attribute %q: %s.", a.Name, detail)))
	}
	if msg := a.Check(val); msg != "" {
		return nil, append(diags, attrDiag(attr, "Invalid attribute value", fmt.Sprintf("The value of %q %s.", a.Name, msg)))
	}
	if p, ok := val.(string); ok && a.Type == sdk.TypePath {
		val = resolvePath(p, attr.Expr.Range().Filename)
	}
	return val, diags
}

// resolvePath makes a path absolute: a relative one is taken against the
// directory of the configuration file it was written in (as mesh.hcl's own
// paths are), or against the working directory when there is no file.
// Plugins therefore always get an absolute path, whatever their working
// directory.
func resolvePath(p, file string) string {
	if !filepath.IsAbs(p) && file != "" {
		p = filepath.Join(filepath.Dir(file), p)
	}
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return filepath.Clean(p)
}

func attrDiag(attr *hcl.Attribute, summary, detail string) *hcl.Diagnostic {
	rng := attr.Expr.Range()
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: &rng}
}

// ctyElem is the cty type of each element type a list or map may hold.
var ctyElem = map[sdk.AttrType]cty.Type{
	sdk.TypeString: cty.String, sdk.TypeInt: cty.Number, sdk.TypeNumber: cty.Number, sdk.TypeBool: cty.Bool,
}

// elemName is how a detail message names a list or map element type.
var elemName = map[sdk.AttrType]string{
	sdk.TypeString: "strings", sdk.TypeInt: "whole numbers", sdk.TypeNumber: "numbers", sdk.TypeBool: "bools",
}

// convertValue turns a cty value into the Go type the sdk documents for
// type t, or says why it cannot.
func convertValue(t sdk.AttrType, v cty.Value) (any, string) {
	switch t {
	case sdk.TypeStringList, sdk.TypeIntList, sdk.TypeNumberList, sdk.TypeBoolList:
		return convertList(t, v)
	case sdk.TypeStringMap, sdk.TypeIntMap, sdk.TypeNumberMap, sdk.TypeBoolMap:
		return convertMap(t, v)
	}
	return convertScalar(t, v)
}

func convertList(t sdk.AttrType, v cty.Value) (any, string) {
	elem := listElem(t)
	cv, err := convert.Convert(v, cty.List(ctyElem[elem]))
	if err != nil {
		return nil, "a list of " + elemName[elem] + " is required"
	}
	var out []any
	for it := cv.ElementIterator(); it.Next(); {
		k, e := it.Element()
		if e.IsNull() {
			return nil, "the list must not contain null"
		}
		x, detail := convertScalar(elem, e)
		if detail != "" {
			i, _ := k.AsBigFloat().Int64()
			return nil, fmt.Sprintf("element %d: %s", i, detail)
		}
		out = append(out, x)
	}
	return typed(t, out), ""
}

func convertMap(t sdk.AttrType, v cty.Value) (any, string) {
	elem := mapElem(t)
	cv, err := convert.Convert(v, cty.Map(ctyElem[elem]))
	if err != nil {
		return nil, `a map of ` + elemName[elem] + ` is required, written as { key = value }`
	}
	out := map[string]any{}
	for it := cv.ElementIterator(); it.Next(); {
		k, e := it.Element()
		if e.IsNull() {
			return nil, fmt.Sprintf("element %q must not be null", k.AsString())
		}
		x, detail := convertScalar(elem, e)
		if detail != "" {
			return nil, fmt.Sprintf("element %q: %s", k.AsString(), detail)
		}
		out[k.AsString()] = x
	}
	return typedMap(t, out), ""
}

func convertScalar(t sdk.AttrType, v cty.Value) (any, string) {
	switch t {
	case sdk.TypeString, sdk.TypePath:
		cv, err := convert.Convert(v, cty.String)
		if err != nil {
			return nil, "a string is required"
		}
		if t == sdk.TypePath && cv.AsString() == "" {
			return nil, "a non-empty path is required"
		}
		return cv.AsString(), ""
	case sdk.TypeNumber:
		cv, err := convert.Convert(v, cty.Number)
		if err != nil {
			return nil, "a number is required"
		}
		f, _ := cv.AsBigFloat().Float64()
		if math.IsInf(f, 0) {
			return nil, "the number is out of range"
		}
		return f, ""
	case sdk.TypeInt:
		cv, err := convert.Convert(v, cty.Number)
		if err != nil {
			return nil, "a whole number is required"
		}
		bf := cv.AsBigFloat()
		n, acc := bf.Int64()
		if !bf.IsInt() || acc != big.Exact {
			return nil, fmt.Sprintf("a whole number is required, got %s", bf.Text('g', -1))
		}
		return n, ""
	case sdk.TypeBool:
		cv, err := convert.Convert(v, cty.Bool)
		if err != nil {
			return nil, "a bool is required"
		}
		return cv.True(), ""
	case sdk.TypeDuration:
		cv, err := convert.Convert(v, cty.String)
		if err != nil {
			return nil, `a duration string such as "250ms" is required`
		}
		s := cv.AsString()
		if _, err := time.ParseDuration(s); err != nil {
			return nil, fmt.Sprintf(`%q is not a duration (use a string such as "250ms" or "2s")`, s)
		}
		return s, ""
	}
	return nil, fmt.Sprintf("the plugin declares unknown type %q", t)
}
