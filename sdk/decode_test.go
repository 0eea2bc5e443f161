package sdk_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/sdk"
)

type backend struct {
	URL    string `mesh:"url"`
	Weight uint8  `mesh:"weight"`
}

type settings struct {
	Name     string            `mesh:"name"`
	Count    int               `mesh:"count"`
	Ratio    float64           `mesh:"ratio"`
	On       bool              `mesh:"on"`
	Every    time.Duration     `mesh:"every"`
	Tags     []string          `mesh:"tags"`
	Ports    []uint16          `mesh:"ports"`
	Weights  map[string]uint32 `mesh:"weights"`
	Backends []backend         `mesh:"backend"`
	TLS      *struct {
		CA string `mesh:"ca"`
	} `mesh:"tls"`
	Untagged string
	Skipped  string `mesh:"-"`
}

func TestConfigDecode(t *testing.T) {
	cfg := sdk.Config{
		"name": "lb", "count": int64(3), "ratio": int64(2), "on": true, "every": "250ms",
		"tags": []string{"a", "b"}, "ports": []int64{80, 443}, "weights": map[string]int64{"node-1": 5},
		"backend":  []sdk.Config{{"url": "http://a", "weight": int64(2)}, {"url": "http://b"}},
		"tls":      sdk.Config{"ca": "/etc/ca.pem"},
		"Untagged": "x", "-": "y",
	}
	got := settings{Untagged: "keep", Skipped: "keep"}
	if err := cfg.Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := settings{Name: "lb", Count: 3, Ratio: 2, On: true, Every: 250 * time.Millisecond,
		Tags: []string{"a", "b"}, Ports: []uint16{80, 443}, Weights: map[string]uint32{"node-1": 5},
		Backends: []backend{{"http://a", 2}, {"http://b", 0}}, Untagged: "keep", Skipped: "keep"}
	want.TLS = &struct {
		CA string `mesh:"ca"`
	}{CA: "/etc/ca.pem"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	// Absent attributes leave fields as they were.
	keep := settings{Name: "preset"}
	if err := (sdk.Config{}).Decode(&keep); err != nil || keep.Name != "preset" {
		t.Fatalf("%+v %v", keep, err)
	}
}

// What arrives over the wire (JSON) decodes the same once normalised.
func TestConfigDecodeFromJSON(t *testing.T) {
	var cfg sdk.Config
	if err := json.Unmarshal([]byte(`{"ports":[80],"weights":{"a":1},"backend":[{"url":"u","weight":3}]}`), &cfg); err != nil {
		t.Fatal(err)
	}
	var s settings
	if err := cfg.Decode(&s); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Ports, []uint16{80}) || s.Weights["a"] != 1 || s.Backends[0].Weight != 3 {
		t.Fatalf("%+v", s)
	}
}

func TestConfigDecodeMismatch(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  sdk.Config
		err  string
	}{
		{"string into int", sdk.Config{"count": "3"}, `field Count (int): attribute "count" holds string 3`},
		{"fraction into int", sdk.Config{"count": 2.5}, `attribute "count" holds float64 2.5`},
		{"negative into uint", sdk.Config{"ports": []int64{-1}}, `attribute "ports[0]": -1 does not fit in uint16`},
		{"too large for uint8", sdk.Config{"backend": []sdk.Config{{"weight": int64(300)}}}, `attribute "backend[0].weight": 300 does not fit in uint8`},
		{"map element of the wrong type", sdk.Config{"weights": map[string]string{"a": "x"}}, `attribute "weights[\"a\"]" holds string x`},
		{"list into map", sdk.Config{"weights": []string{"node-1=5"}}, `field Weights (map[string]uint32)`},
		{"bad duration", sdk.Config{"every": "soon"}, `attribute "every": time: invalid duration`},
		{"block into string", sdk.Config{"name": sdk.Config{}}, `attribute "name" holds a block`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s settings
			err := tc.cfg.Decode(&s)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err %v, want it to contain %q", err, tc.err)
			}
		})
	}
	if err := (sdk.Config{}).Decode(settings{}); err == nil || !strings.Contains(err.Error(), "pointer to a struct") {
		t.Fatalf("non-pointer: %v", err)
	}
}
