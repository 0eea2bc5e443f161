package pluginhost

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

// DecodeConfig decodes a plugin's `config { ... }` block against the
// schema the plugin declares. A nil body is an empty block. Unknown
// attributes, missing required ones, values of the wrong type and
// malformed durations come back as diagnostics pointing at mesh.hcl.
// Absent attributes take the schema's defaults.
func DecodeConfig(schema sdk.Schema, body hcl.Body) (sdk.Config, hcl.Diagnostics) {
	return DecodeConfigContext(schema, body, nil)
}

// DecodeConfigContext is DecodeConfig with an evaluation context for
// expressions (functions and variables mesh.hcl allows).
func DecodeConfigContext(schema sdk.Schema, body hcl.Body, ectx *hcl.EvalContext) (sdk.Config, hcl.Diagnostics) {
	if body == nil {
		body = hcl.EmptyBody()
	}
	bs := &hcl.BodySchema{}
	byName := make(map[string]sdk.Attribute, len(schema.Attributes))
	for _, a := range schema.Attributes {
		bs.Attributes = append(bs.Attributes, hcl.AttributeSchema{Name: a.Name, Required: a.Required})
		byName[a.Name] = a
	}
	content, diags := body.Content(bs)
	cfg := sdk.Config{}
	if content == nil {
		return cfg, diags
	}
	for name, attr := range content.Attributes {
		a := byName[name]
		v, d := attr.Expr.Value(ectx)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		if !v.IsWhollyKnown() {
			diags = append(diags, attrDiag(attr, "Unknown value", fmt.Sprintf("The value of %q must be known when mesh starts.", name)))
			continue
		}
		if v.IsNull() {
			if a.Required {
				diags = append(diags, attrDiag(attr, "Missing value", fmt.Sprintf("The attribute %q is required and must not be null.", name)))
			}
			continue
		}
		val, detail := convertValue(a, v)
		if detail != "" {
			diags = append(diags, attrDiag(attr, "Incorrect attribute value type", fmt.Sprintf("Inappropriate value for attribute %q: %s.", name, detail)))
			continue
		}
		if msg := a.Check(val); msg != "" {
			diags = append(diags, attrDiag(attr, "Invalid attribute value", fmt.Sprintf("The value of %q %s.", name, msg)))
			continue
		}
		if p, ok := val.(string); ok && a.Type == sdk.TypePath {
			val = resolvePath(p, attr.Expr.Range().Filename)
		}
		cfg[name] = val
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
	return cfg.WithDefaults(schema), diags
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

// convertValue turns a cty value into the Go type the sdk documents for
// the attribute's type, or says why it cannot.
func convertValue(a sdk.Attribute, v cty.Value) (any, string) {
	switch a.Type {
	case sdk.TypeString, sdk.TypePath:
		cv, err := convert.Convert(v, cty.String)
		if err != nil {
			return nil, "a string is required"
		}
		if a.Type == sdk.TypePath && cv.AsString() == "" {
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
	case sdk.TypeStringList:
		cv, err := convert.Convert(v, cty.List(cty.String))
		if err != nil {
			return nil, "a list of strings is required"
		}
		out := make([]string, 0, cv.LengthInt())
		for it := cv.ElementIterator(); it.Next(); {
			_, e := it.Element()
			if e.IsNull() {
				return nil, "the list must not contain null"
			}
			out = append(out, e.AsString())
		}
		return out, ""
	}
	return nil, fmt.Sprintf("the plugin declares unknown type %q", a.Type)
}
