package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/mycelium-mesh/mesh/sdk"
	"github.com/mycelium-mesh/mesh/sdk/plugintest"
)

func TestMain(m *testing.M) { plugintest.Main(m, func() sdk.Plugin { return &publisher{} }) }

// Configured from its mesh.hcl block with paths relative to that file,
// the plugin publishes a site once, finds it unchanged the second time
// and updates it when a file changes.
func TestPublish(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sites", "blog", "public"), 0o755); err != nil {
		t.Fatal(err)
	}
	index := filepath.Join(dir, "sites", "blog", "public", "index.html")
	if err := os.WriteFile(index, []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := plugintest.Run(t)
	p.File = filepath.Join(dir, "mesh.hcl")
	if err := p.Configure(`sites_root = "./sites"`); plugintest.Line(err) != 1 {
		t.Fatalf("publish_dir missing: %v", err)
	}
	p.MustConfigure("sites_root  = \"./sites\"\npublish_dir = \"www\"\n")

	h, ctx := p.Hosting(), context.Background()
	req := sdk.HostingRequest{Site: sdk.SiteConfig{Site: sdk.SiteInfo{ID: "blog"}, Build: &sdk.BuildInfo{OutputDir: "public"}}}
	deploy := func() []sdk.HostingAction {
		t.Helper()
		actual, err := h.Observe(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		plan, err := h.Plan(ctx, req, actual)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Apply(ctx, req, plan, func(sdk.HostingAction) {}); err != nil {
			t.Fatal(err)
		}
		return plan
	}
	published := filepath.Join(dir, "www", "blog", "index.html")
	for i, step := range []struct {
		content, op string
	}{{"v1", sdk.OpCreate}, {"v1", ""}, {"v2", sdk.OpUpdate}} {
		if err := os.WriteFile(index, []byte(step.content), 0o644); err != nil {
			t.Fatal(err)
		}
		plan := deploy()
		if (step.op == "" && len(plan) != 0) || (step.op != "" && (len(plan) != 1 || plan[0].Op != step.op)) {
			t.Fatalf("step %d: plan %+v, want %q", i, plan, step.op)
		}
		if b, err := os.ReadFile(published); err != nil || string(b) != step.content {
			t.Fatalf("step %d: published %q %v, want %q", i, b, err, step.content)
		}
	}
}
