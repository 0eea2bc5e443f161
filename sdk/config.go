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
	if f, ok := toFloat(c[name]); ok {
		return f
	}
	return def
}

// Int returns the int attribute name, or def when it is absent or not a
// whole number.
func (c Config) Int(name string, def int64) int64 {
	if n, ok := toInt(c[name]); ok {
		return n
	}
	return def
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
// absent from c and has a default carries that default, in the nested
// blocks written as well.
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
	for _, b := range s.Blocks {
		if b.Repeated {
			if list, ok := asConfigList(out[b.Name]); ok {
				filled := make([]Config, len(list))
				for i, e := range list {
					filled[i] = e.WithDefaults(b.Schema)
				}
				out[b.Name] = filled
			}
		} else if one, ok := asConfig(out[b.Name]); ok {
			out[b.Name] = one.WithDefaults(b.Schema)
		}
	}
	return out
}

// Validate checks a schema for mistakes an author can make: empty or
// duplicate names, unknown types, constraints that do not fit the type, a
// default of the wrong type; in nested blocks too.
func (s Schema) Validate() error {
	return s.validate("schema: ")
}

func (s Schema) validate(prefix string) error {
	seen := map[string]bool{}
	for _, a := range s.Attributes {
		if a.Name == "" {
			return fmt.Errorf("%sattribute with empty name", prefix)
		}
		if seen[a.Name] {
			return fmt.Errorf("%sattribute %q declared twice", prefix, a.Name)
		}
		seen[a.Name] = true
		if !a.Type.known() {
			return fmt.Errorf("%sattribute %q: unknown type %q", prefix, a.Name, a.Type)
		}
		_, elem := a.Type.split()
		if (a.Min != nil || a.Max != nil) && elem != TypeNumber && elem != TypeInt {
			return fmt.Errorf("%sattribute %q: min and max apply to number and int (or lists and maps of them) only, not %s", prefix, a.Name, a.Type)
		}
		if a.Min != nil && a.Max != nil && *a.Min > *a.Max {
			return fmt.Errorf("%sattribute %q: min %v is above max %v", prefix, a.Name, *a.Min, *a.Max)
		}
		if len(a.OneOf) > 0 && elem != TypeString {
			return fmt.Errorf("%sattribute %q: one_of applies to string (or lists and maps of strings) only, not %s", prefix, a.Name, a.Type)
		}
		if a.Default == nil {
			continue
		}
		v, ok := normalizeValue(a.Type, a.Default)
		if ok && a.Type == TypeDuration {
			_, err := time.ParseDuration(v.(string))
			ok = err == nil
		}
		if !ok {
			article := "a"
			if a.Type == TypeInt {
				article = "an"
			}
			return fmt.Errorf("%sattribute %q: default %v is not %s %s", prefix, a.Name, a.Default, article, a.Type)
		}
		if msg := a.Check(v); msg != "" {
			return fmt.Errorf("%sattribute %q: default %v: %s", prefix, a.Name, a.Default, msg)
		}
	}
	for _, b := range s.Blocks {
		if b.Name == "" {
			return fmt.Errorf("%sblock with empty name", prefix)
		}
		if seen[b.Name] {
			return fmt.Errorf("%sname %q declared twice", prefix, b.Name)
		}
		seen[b.Name] = true
		if err := b.Schema.validate(fmt.Sprintf("%sblock %q: ", prefix, b.Name)); err != nil {
			return err
		}
	}
	return nil
}

// Check says what is wrong with v against the attribute's Min, Max and
// OneOf, or "" when nothing is. v is a decoded value of the attribute's
// type; for a list or map every element is checked.
func (a Attribute) Check(v any) string {
	container, elem := a.Type.split()
	if container != "" {
		return checkElements(v, func(e any) string {
			return Attribute{Type: elem, Min: a.Min, Max: a.Max, OneOf: a.OneOf}.Check(e)
		})
	}
	if a.Type == TypeNumber || a.Type == TypeInt {
		f, ok := toFloat(v)
		if !ok {
			f = math.NaN()
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
