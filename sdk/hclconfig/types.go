package hclconfig

import "github.com/mycelium-mesh/mesh/sdk"

func listElem(t sdk.AttrType) sdk.AttrType {
	return map[sdk.AttrType]sdk.AttrType{sdk.TypeStringList: sdk.TypeString, sdk.TypeIntList: sdk.TypeInt,
		sdk.TypeNumberList: sdk.TypeNumber, sdk.TypeBoolList: sdk.TypeBool}[t]
}

func mapElem(t sdk.AttrType) sdk.AttrType {
	return map[sdk.AttrType]sdk.AttrType{sdk.TypeStringMap: sdk.TypeString, sdk.TypeIntMap: sdk.TypeInt,
		sdk.TypeNumberMap: sdk.TypeNumber, sdk.TypeBoolMap: sdk.TypeBool}[t]
}

// typed turns converted list elements into the slice type the sdk
// documents for t.
func typed(t sdk.AttrType, in []any) any {
	switch t {
	case sdk.TypeStringList:
		return each[string](in)
	case sdk.TypeIntList:
		return each[int64](in)
	case sdk.TypeNumberList:
		return each[float64](in)
	default:
		return each[bool](in)
	}
}

// typedMap turns converted map elements into the map type the sdk
// documents for t.
func typedMap(t sdk.AttrType, in map[string]any) any {
	switch t {
	case sdk.TypeStringMap:
		return eachMap[string](in)
	case sdk.TypeIntMap:
		return eachMap[int64](in)
	case sdk.TypeNumberMap:
		return eachMap[float64](in)
	default:
		return eachMap[bool](in)
	}
}

func each[T any](in []any) []T {
	out := make([]T, len(in))
	for i, v := range in {
		out[i] = v.(T)
	}
	return out
}

func eachMap[T any](in map[string]any) map[string]T {
	out := make(map[string]T, len(in))
	for k, v := range in {
		out[k] = v.(T)
	}
	return out
}
