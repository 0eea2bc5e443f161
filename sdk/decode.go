package sdk

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"
)

// Decode stores the configuration into the struct dst points to. Each
// field tagged `mesh:"name"` receives the attribute or nested block of
// that name; untagged fields and fields tagged `mesh:"-"` are left alone,
// as are fields whose attribute is absent (set defaults in the Schema, or
// in dst before the call).
//
//	type settings struct {
//		Weights map[string]uint32 `mesh:"weights"`
//		Mode    string            `mesh:"mode"`
//		Every   time.Duration     `mesh:"every"`
//		Backend []backend         `mesh:"backend"` // a repeated block
//	}
//	var s settings
//	if err := cfg.Decode(&s); err != nil { ... }
//
// A field takes a value of its own kind: a string field a string (a
// time.Duration field a duration string), any integer field an int that
// fits it, a float field a number or int, a bool field a bool, a slice a
// list, a map[string]T a map, a struct (or pointer to struct) a single
// block and a slice of structs a repeated block. Anything else is an
// error naming the attribute and the field, a mistake of the plugin's
// code rather than of the operator's block.
func (c Config) Decode(dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config decode: want a non-nil pointer to a struct, got %T", dst)
	}
	return decodeStruct(c, rv.Elem(), "")
}

func decodeStruct(c Config, sv reflect.Value, prefix string) error {
	st := sv.Type()
	for i := range st.NumField() {
		f := st.Field(i)
		name, ok := f.Tag.Lookup("mesh")
		if !ok || name == "-" || !f.IsExported() {
			continue
		}
		name, _, _ = strings.Cut(name, ",")
		v, present := c[name]
		if !present || v == nil {
			continue
		}
		if err := assign(sv.Field(i), v, prefix+name); err != nil {
			return fmt.Errorf("config decode: field %s (%s): %w", f.Name, f.Type, err)
		}
	}
	return nil
}

var durationType = reflect.TypeFor[time.Duration]()

// assign stores v into dst, converting where the kinds agree.
func assign(dst reflect.Value, v any, path string) error {
	mismatch := func() error {
		return fmt.Errorf("attribute %q holds %s, which does not fit", path, describe(v))
	}
	if dst.Type() == durationType {
		s, ok := v.(string)
		if !ok {
			return mismatch()
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("attribute %q: %w", path, err)
		}
		dst.SetInt(int64(d))
		return nil
	}
	switch dst.Kind() {
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			return mismatch()
		}
		dst.SetString(s)
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			return mismatch()
		}
		dst.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := toInt(v)
		if !ok || !isWhole(v) {
			return mismatch()
		}
		if dst.OverflowInt(n) {
			return fmt.Errorf("attribute %q: %d does not fit in %s", path, n, dst.Type())
		}
		dst.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := toInt(v)
		if !ok || !isWhole(v) {
			return mismatch()
		}
		if n < 0 || dst.OverflowUint(uint64(n)) {
			return fmt.Errorf("attribute %q: %d does not fit in %s", path, n, dst.Type())
		}
		dst.SetUint(uint64(n))
	case reflect.Float32, reflect.Float64:
		f, ok := toFloat(v)
		if !ok {
			return mismatch()
		}
		dst.SetFloat(f)
	case reflect.Struct:
		m, ok := asConfig(v)
		if !ok {
			return mismatch()
		}
		return decodeStruct(m, dst, path+".")
	case reflect.Pointer:
		if dst.Type().Elem().Kind() != reflect.Struct {
			return fmt.Errorf("attribute %q: pointer fields must point to a struct", path)
		}
		p := reflect.New(dst.Type().Elem())
		if err := assign(p.Elem(), v, path); err != nil {
			return err
		}
		dst.Set(p)
	case reflect.Slice:
		return assignSlice(dst, v, path, mismatch)
	case reflect.Map:
		if dst.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("attribute %q: map fields must have string keys", path)
		}
		src := reflect.ValueOf(v)
		if src.Kind() != reflect.Map || src.Type().Key().Kind() != reflect.String {
			return mismatch()
		}
		out := reflect.MakeMapWithSize(dst.Type(), src.Len())
		for it := src.MapRange(); it.Next(); {
			e := reflect.New(dst.Type().Elem()).Elem()
			k := it.Key().String()
			if err := assign(e, it.Value().Interface(), fmt.Sprintf("%s[%q]", path, k)); err != nil {
				return err
			}
			out.SetMapIndex(reflect.ValueOf(k).Convert(dst.Type().Key()), e)
		}
		dst.Set(out)
	case reflect.Interface:
		if !reflect.TypeOf(v).AssignableTo(dst.Type()) {
			return mismatch()
		}
		dst.Set(reflect.ValueOf(v))
	default:
		return fmt.Errorf("attribute %q: fields of kind %s cannot be decoded", path, dst.Kind())
	}
	return nil
}

func assignSlice(dst reflect.Value, v any, path string, mismatch func() error) error {
	if list, ok := asConfigList(v); ok && len(list) > 0 {
		v = list
	}
	src := reflect.ValueOf(v)
	if src.Kind() != reflect.Slice {
		return mismatch()
	}
	out := reflect.MakeSlice(dst.Type(), src.Len(), src.Len())
	for i := range src.Len() {
		if err := assign(out.Index(i), src.Index(i).Interface(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
	dst.Set(out)
	return nil
}

// isWhole reports whether a numeric value has no fractional part.
func isWhole(v any) bool {
	f, ok := toFloat(v)
	return !ok || f == math.Trunc(f)
}

// describe names the Go type of a configuration value for an error.
func describe(v any) string {
	switch v.(type) {
	case json.Number:
		return "a number"
	case Config, map[string]any:
		return "a block"
	case []Config:
		return "repeated blocks"
	}
	return fmt.Sprintf("%T %v", v, v)
}
