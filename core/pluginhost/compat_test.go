package pluginhost_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/mycelium-mesh/mesh/core/pluginhost"
	"github.com/mycelium-mesh/mesh/sdk"
)

// A plugin built against the first protocol release (no nested blocks in
// its schema, no ValidateConfig) still loads and works, and validation
// says plainly that only its schema was checked. One that offers only a
// later API version is refused with a message naming both versions.
func TestCompatibilityWithOlderPlugins(t *testing.T) {
	meshHCL := filepath.Join(t.TempDir(), "mesh.hcl")
	spec := pluginBlock(t, meshHCL, "plugin \"health\" \"old\" {\n  command = \""+v1Plugin+"\"\n  config {\n    greeting = \"hi\"\n    names = [\"a\", \"b\"]\n  }\n}\n")

	h, _ := newHost(t, nil)
	hc, err := h.Health(ctxT(t), spec)
	if err != nil {
		t.Fatalf("an old plugin does not load: %v", err)
	}
	res, err := hc.Check(ctxT(t), sdk.HealthCheck{URL: "http://127.0.0.1:1", Timeout: time.Second})
	if err != nil || !res.Healthy || res.Reason != "hi a,b http://127.0.0.1:1" {
		t.Fatalf("check through an old plugin: %+v %v", res, err)
	}

	info, diags, err := h.Check(ctxT(t), spec)
	if err != nil || info.Version != "0.9.0" {
		t.Fatalf("check: %+v %v", info, err)
	}
	if diags.HasErrors() || len(diags) != 1 || diags[0].Severity != hcl.DiagWarning || diags[0].Summary != "Config checked against the schema only" {
		t.Fatalf("diags %v, want one warning that only the schema was checked", diags)
	}
	// Schema mistakes are still found, from the old plugin's schema.
	bad := pluginBlock(t, meshHCL, "plugin \"health\" \"old\" {\n  command = \""+v1Plugin+"\"\n  config {\n    colour = 1\n  }\n}\n")
	if _, diags, _ := h.Check(ctxT(t), bad); !diags.HasErrors() || !strings.Contains(diags.Error(), "mesh.hcl:4,") {
		t.Fatalf("diags %v, want an unknown attribute at line 4", diags)
	}

	// The same build, offering only API version 2.
	v2 := filepath.Join(t.TempDir(), "old-health-v2only")
	if err := os.Link(v1Plugin, v2); err != nil {
		t.Fatal(err)
	}
	_, err = h.Health(ctxT(t), pluginhost.Spec{Kind: sdk.KindHealth, Name: "newer", Command: v2})
	if !errors.Is(err, pluginhost.ErrAPIVersion) || !strings.Contains(err.Error(), "versions [1]") || !strings.Contains(err.Error(), "Plugin version: 2") {
		t.Fatalf("err %v, want ErrAPIVersion naming host version [1] and plugin version 2", err)
	}
	t.Logf("refusal: %v", err)
}
