package mesh

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/config"
)

var updateSchema = flag.Bool("update-schema", false, "rewrite testdata/json_schema.golden from the types")

// jsonDocuments are the control API answers that `mesh ... -json` prints.
var jsonDocuments = []struct {
	name string
	v    any
}{
	{"status", Status{}},                    // GET /v1/status, mesh status -json
	{"history", HistoryResponse{}},          // GET /v1/apps/{app}/history, mesh history -json
	{"reload_plan", ReloadPlan{}},           // mesh reload -json
	{"reload_response", reloadResponse{}},   // POST /v1/reload
	{"event", EventLine{}},                  // each line of GET /v1/events, mesh events -json
	{"console_snapshot", ConsoleSnapshot{}}, // GET /console/api/snapshot on the admin listener
}

var snakeKey = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// jsonKeys lists every key path t encodes to: "a.b", "list[].c", "map{}.d".
func jsonKeys(t reflect.Type, prefix string, out *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		jsonKeys(t.Elem(), prefix+"[]", out)
		return
	case reflect.Map:
		jsonKeys(t.Elem(), prefix+"{}", out)
		return
	case reflect.Struct:
	default:
		return
	}
	if t == reflect.TypeOf(time.Time{}) || reflect.PointerTo(t).Implements(reflect.TypeOf((*json.Marshaler)(nil)).Elem()) {
		return // encodes as a value, not an object
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			jsonKeys(f.Type, prefix, out) // encoding/json lifts its fields
			continue
		}
		if name == "" {
			name = f.Name // what encoding/json does; fails the snake_case check
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		*out = append(*out, path)
		jsonKeys(f.Type, path, out)
	}
}

// TestJSONSchema fails when a key of the control API's JSON (and so of
// every -json output) changes, is added or goes away: update
// testdata/json_schema.golden with -update-schema, raise SchemaVersion when
// a key was renamed or removed, and update the README's list.
func TestJSONSchema(t *testing.T) {
	var b strings.Builder
	for _, d := range jsonDocuments {
		var keys []string
		jsonKeys(reflect.TypeOf(d.v), "", &keys)
		sort.Strings(keys)
		if !slices.Contains(keys, "schema_version") {
			t.Errorf("%s: no top-level schema_version", d.name)
		}
		b.WriteString("# " + d.name + "\n")
		for _, k := range keys {
			for _, part := range strings.Split(k, ".") {
				if part = strings.TrimRight(part, "[]{}"); !snakeKey.MatchString(part) {
					t.Errorf("%s: key %q of %s is not snake_case", d.name, part, k)
				}
			}
			b.WriteString(k + "\n")
		}
	}
	golden := filepath.Join("testdata", "json_schema.golden")
	if *updateSchema {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read %s: %v (create it with -update-schema)", golden, err)
	}
	if got := b.String(); got != string(want) {
		t.Fatalf("JSON keys changed (SchemaVersion %d): diff against %s:\n%s", SchemaVersion, golden, lineDiff(string(want), got))
	}
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	w, g := in(want), in(got)
	var out []string
	for _, l := range strings.Split(want, "\n") {
		if !g[l] {
			out = append(out, "- "+l)
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if !w[l] {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// TestStatusJSONCarriesVersion checks the values, not only the types: the
// status a mesh builds says which schema it speaks, and views keep every
// field of what they show.
func TestStatusJSONCarriesVersion(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want []string
	}{
		{"status", Status{SchemaVersion: SchemaVersion, Instances: []InstanceStatus{{App: "a", NodeID: "n1", PID: 7}},
			Edge: map[string]EdgeCounters{"a": {Requests: 3, Errors5xx: 1}}, Apps: []AppStatus{{Name: "a", Endpoints: []Endpoint{{AppName: "a", NodeID: "n1"}}}}},
			[]string{`"schema_version":1`, `"node_id":"n1"`, `"pid":7`, `"requests":3`, `"errors_5xx":1`, `"endpoints":[{"app":"a","url":"","node_id":"n1"}]`}},
		{"history", HistoryResponse{SchemaVersion: SchemaVersion}, []string{`"schema_version":1`, `"rollouts":null`}},
		{"reload", computePlan(planInput{next: &config.Config{}}), []string{`"schema_version":1`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("%s lacks %s", b, w)
				}
			}
		})
	}
}
