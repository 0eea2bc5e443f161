package pluginclient

import (
	"reflect"
	"testing"
)

func TestRelayed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in, want []any
	}{
		{"a plugin's line: integers, sorted, no timestamp or @module",
			[]any{"url", "http://x", "@module", "lb", "bytes", 8.9e6, "ratio", 0.5, "timestamp", "2026-01-01T00:00:00.000Z"},
			[]any{"bytes", int64(8900000), "ratio", 0.5, "url", "http://x"}},
		{"go-plugin's own line is left in its order",
			[]any{"path", "/bin/p", "pid", 12.0},
			[]any{"path", "/bin/p", "pid", int64(12)}},
		{"too large to be exact stays a float",
			[]any{"n", 1e300, "timestamp", "t"},
			[]any{"n", 1e300}},
		{"odd fields are left alone", []any{"a", 1.5, "timestamp"}, []any{"a", 1.5, "timestamp"}},
		{"nothing but the timestamp", []any{"timestamp", "t"}, []any{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := relayed(append([]any(nil), tc.in...)); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("relayed(%v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}
