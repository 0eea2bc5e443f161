package sdk

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// String returns the string attribute name, or def when it is absent or not
// a string.
func (c Config) String(name, def string) string {
	if s, ok := c[name].(string); ok {
		return s
	}
	return def
}

// Number returns the number attribute name, or def when it is absent or not
// a number.
func (c Config) Number(name string, def float64) float64 {
	switch v := c[name].(type) {
	case float64:
		return v
	case float32:
		return float64(v)
	case int:
		return float64(v)
	case int64:
		return float64(v)
	case uint32:
		return float64(v)
	}
	return def
}

// Int returns the int attribute name, or def when it is absent or not a
// whole number.
func (c Config) Int(name string, def int64) int64 {
	if n, ok := c.intValue(name); ok {
		return n
	}
	return def
}

// intValue reads a whole number of any Go numeric type, JSON's float64
// included.
func (c Config) intValue(name string) (int64, bool) {
	switch v := c[name].(type) {
	case int64:
		return v, true
	case int:
		return int64(v), true
	case int32:
		return int64(v), true
	case uint32:
		return int64(v), true
	case float64:
		if v == math.Trunc(v) && math.Abs(v) <= 1<<53 {
			return int64(v), true
		}
	}
	return 0, false
}

// Bool returns the bool attribute name, or def when it is absent or not a
// bool.
func (c Config) Bool(name string, def bool) bool {
	if b, ok := c[name].(bool); ok {
		return b
	}
	return def
}

// Duration returns the duration attribute name (a string such as "250ms"),
// or def when it is absent or does not parse. The host validates durations
// declared in the schema before the plugin sees them.
func (c Config) Duration(name string, def time.Duration) time.Duration {
	switch v := c[name].(type) {
	case string:
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	case time.Duration:
		return v
	}
	return def
}

// StringList returns the list(string) attribute name, or def when it is
// absent. Lists decoded from JSON ([]any of strings) are accepted too.
func (c Config) StringList(name string, def []string) []string {
	switch v := c[name].(type) {
	case []string:
		out := make([]string, len(v))
		copy(out, v)
		return out
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return def
			}
			out = append(out, s)
		}
		return out
	}
	return def
}

// Attribute returns the schema attribute called name.
func (s Schema) Attribute(name string) (Attribute, bool) {
	for _, a := range s.Attributes {
		if a.Name == name {
			return a, true
		}
	}
	return Attribute{}, false
}

// WithDefaults returns a copy of c in which every attribute of s that is
// absent from c and has a default carries that default.
func (c Config) WithDefaults(s Schema) Config {
	out := make(Config, len(c)+len(s.Attributes))
	for k, v := range c {
		out[k] = v
	}
	for _, a := range s.Attributes {
		if _, ok := out[a.Name]; !ok && a.Default != nil {
			out[a.Name] = a.Default
		}
	}
	return out
}

// Validate checks a schema for mistakes an author can make: empty or
// duplicate names, unknown types, a default of the wrong type.
func (s Schema) Validate() error {
	seen := map[string]bool{}
	for _, a := range s.Attributes {
		if a.Name == "" {
			return fmt.Errorf("schema: attribute with empty name")
		}
		if seen[a.Name] {
			return fmt.Errorf("schema: attribute %q declared twice", a.Name)
		}
		seen[a.Name] = true
		switch a.Type {
		case TypeString, TypeNumber, TypeInt, TypeBool, TypeDuration, TypeStringList, TypePath:
		default:
			return fmt.Errorf("schema: attribute %q: unknown type %q", a.Name, a.Type)
		}
		if (a.Min != nil || a.Max != nil) && a.Type != TypeNumber && a.Type != TypeInt {
			return fmt.Errorf("schema: attribute %q: min and max apply to number and int only, not %s", a.Name, a.Type)
		}
		if a.Min != nil && a.Max != nil && *a.Min > *a.Max {
			return fmt.Errorf("schema: attribute %q: min %v is above max %v", a.Name, *a.Min, *a.Max)
		}
		if len(a.OneOf) > 0 && a.Type != TypeString {
			return fmt.Errorf("schema: attribute %q: one_of applies to string only, not %s", a.Name, a.Type)
		}
		if a.Default == nil {
			continue
		}
		ok := false
		switch a.Type {
		case TypeString, TypePath:
			_, ok = a.Default.(string)
		case TypeNumber:
			ok = Config{"v": a.Default}.Number("v", -1) == Config{"v": a.Default}.Number("v", -2)
		case TypeInt:
			_, ok = Config{"v": a.Default}.intValue("v")
		case TypeBool:
			_, ok = a.Default.(bool)
		case TypeDuration:
			if s, isStr := a.Default.(string); isStr {
				_, err := time.ParseDuration(s)
				ok = err == nil
			}
		case TypeStringList:
			ok = Config{"v": a.Default}.StringList("v", nil) != nil
		}
		if !ok {
			article := "a"
			if a.Type == TypeInt {
				article = "an"
			}
			return fmt.Errorf("schema: attribute %q: default %v is not %s %s", a.Name, a.Default, article, a.Type)
		}
		if msg := a.Check(a.Default); msg != "" {
			return fmt.Errorf("schema: attribute %q: default %v: %s", a.Name, a.Default, msg)
		}
	}
	return nil
}

// Check says what is wrong with v against the attribute's Min, Max and
// OneOf, or "" when nothing is. v is a decoded value of the attribute's
// type.
func (a Attribute) Check(v any) string {
	if a.Type == TypeNumber || a.Type == TypeInt {
		f := Config{"v": v}.Number("v", math.NaN())
		if n, ok := v.(int64); ok {
			f = float64(n)
		}
		low := a.Min != nil && f < *a.Min
		high := a.Max != nil && f > *a.Max
		switch {
		case !low && !high: // NaN (not a number) lands here too
		case a.Min != nil && a.Max != nil:
			return fmt.Sprintf("must be between %v and %v, got %v", *a.Min, *a.Max, v)
		case low:
			return fmt.Sprintf("must be at least %v, got %v", *a.Min, v)
		default:
			return fmt.Sprintf("must be at most %v, got %v", *a.Max, v)
		}
	}
	if s, ok := v.(string); ok && len(a.OneOf) > 0 && !slices.Contains(a.OneOf, s) {
		return fmt.Sprintf("must be one of %q, got %q", a.OneOf, s)
	}
	return ""
}
