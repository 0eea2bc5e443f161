package sdk

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
)

// split says how an attribute type is built: container is "" for a
// scalar, "list" or "map", and elem is the type of the elements (t itself
// for a scalar).
func (t AttrType) split() (container string, elem AttrType) {
	s := string(t)
	for _, c := range []string{"list", "map"} {
		if strings.HasPrefix(s, c+"(") && strings.HasSuffix(s, ")") {
			return c, AttrType(s[len(c)+1 : len(s)-1])
		}
	}
	return "", t
}

// known reports whether t is a type the host can decode.
func (t AttrType) known() bool {
	c, e := t.split()
	switch e {
	case TypeString, TypeInt, TypeNumber, TypeBool:
		return true
	case TypeDuration, TypePath:
		return c == ""
	}
	return false
}

// toInt reads a whole number held by any Go numeric type or json.Number.
func toInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case uint32:
		return int64(n), true
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return i, true
		}
		f, err := n.Float64()
		if err != nil {
			return 0, false
		}
		return toInt(f)
	case float64:
		if n == math.Trunc(n) && math.Abs(n) <= 1<<53 {
			return int64(n), true
		}
	}
	return 0, false
}

// toFloat reads a number held by any Go numeric type or json.Number.
func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case int32:
		return float64(n), true
	case uint32:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

// normalizeScalar returns v as the Go type of scalar type t.
func normalizeScalar(t AttrType, v any) (any, bool) {
	switch t {
	case TypeString, TypePath, TypeDuration:
		s, ok := v.(string)
		return s, ok
	case TypeBool:
		b, ok := v.(bool)
		return b, ok
	case TypeInt:
		return toInt(v)
	case TypeNumber:
		return toFloat(v)
	}
	return nil, false
}

// normalizeValue returns v as the Go type attribute type t documents,
// accepting what JSON decoding produces ([]any, map[string]any,
// json.Number) and any slice or map of convertible elements.
func normalizeValue(t AttrType, v any) (any, bool) {
	container, elem := t.split()
	if container == "" {
		return normalizeScalar(t, v)
	}
	rv := reflect.ValueOf(v)
	et := map[AttrType]reflect.Type{TypeString: reflect.TypeFor[string](), TypeInt: reflect.TypeFor[int64](),
		TypeNumber: reflect.TypeFor[float64](), TypeBool: reflect.TypeFor[bool]()}[elem]
	if et == nil {
		return nil, false
	}
	switch container {
	case "list":
		if rv.Kind() != reflect.Slice {
			return nil, false
		}
		out := reflect.MakeSlice(reflect.SliceOf(et), rv.Len(), rv.Len())
		for i := range rv.Len() {
			e, ok := normalizeScalar(elem, rv.Index(i).Interface())
			if !ok {
				return nil, false
			}
			out.Index(i).Set(reflect.ValueOf(e))
		}
		return out.Interface(), true
	case "map":
		if rv.Kind() != reflect.Map || rv.Type().Key().Kind() != reflect.String {
			return nil, false
		}
		out := reflect.MakeMapWithSize(reflect.MapOf(reflect.TypeFor[string](), et), rv.Len())
		for it := rv.MapRange(); it.Next(); {
			e, ok := normalizeScalar(elem, it.Value().Interface())
			if !ok {
				return nil, false
			}
			out.SetMapIndex(reflect.ValueOf(it.Key().String()), reflect.ValueOf(e))
		}
		return out.Interface(), true
	}
	return nil, false
}

// normalizeConfig turns a configuration decoded from JSON into the Go
// types the schema documents, nested blocks included. Values that do not
// fit their type are left as they are.
func normalizeConfig(c Config, s Schema) Config {
	if c == nil {
		c = Config{}
	}
	for _, a := range s.Attributes {
		if v, ok := c[a.Name]; ok {
			if n, ok := normalizeValue(a.Type, v); ok {
				c[a.Name] = n
			}
		}
	}
	for _, b := range s.Blocks {
		v, ok := c[b.Name]
		if !ok {
			continue
		}
		if b.Repeated {
			if list, ok := asConfigList(v); ok {
				for i := range list {
					list[i] = normalizeConfig(list[i], b.Schema)
				}
				c[b.Name] = list
			}
			continue
		}
		if one, ok := asConfig(v); ok {
			c[b.Name] = normalizeConfig(one, b.Schema)
		}
	}
	return c
}

func asConfig(v any) (Config, bool) {
	switch m := v.(type) {
	case Config:
		return m, true
	case map[string]any:
		return Config(m), true
	}
	return nil, false
}

func asConfigList(v any) ([]Config, bool) {
	switch l := v.(type) {
	case []Config:
		return l, true
	case []map[string]any:
		out := make([]Config, len(l))
		for i, m := range l {
			out[i] = m
		}
		return out, true
	case []any:
		out := make([]Config, 0, len(l))
		for _, e := range l {
			m, ok := asConfig(e)
			if !ok {
				return nil, false
			}
			out = append(out, m)
		}
		return out, true
	}
	return nil, false
}

// Block returns the nested block of the configuration called name (a
// block declared without Repeated), and whether it was written.
func (c Config) Block(name string) (Config, bool) {
	return asConfig(c[name])
}

// Blocks returns the repeated nested blocks called name, in the order
// they were written.
func (c Config) Blocks(name string) []Config {
	l, _ := asConfigList(c[name])
	return l
}

// checkElements applies check to every element of a list or map value.
func checkElements(v any, check func(any) string) string {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice:
		for i := range rv.Len() {
			if msg := check(rv.Index(i).Interface()); msg != "" {
				return fmt.Sprintf("element %d %s", i, msg)
			}
		}
	case reflect.Map:
		keys := make([]string, 0, rv.Len())
		for _, k := range rv.MapKeys() {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		for _, k := range keys {
			if msg := check(rv.MapIndex(reflect.ValueOf(k)).Interface()); msg != "" {
				return fmt.Sprintf("element %q %s", k, msg)
			}
		}
	}
	return ""
}
