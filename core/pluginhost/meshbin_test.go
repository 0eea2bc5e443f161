package pluginhost_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mycelium-mesh/mesh/core/pluginhost"
	"github.com/mycelium-mesh/mesh/sdk"
)

// The real mesh binary serves its bundled plugins in `mesh plugin-serve`
// mode. The other tests use testserve, which calls the same ServeBundled,
// so that they do not depend on the whole CLI compiling.
func TestMeshBinaryServesBundled(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the mesh binary")
	}
	mesh := filepath.Join(t.TempDir(), "mesh")
	cmd := exec.Command("go", "build", "-o", mesh, "./cmd/mesh")
	cmd.Dir = moduleRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build cmd/mesh: %v\n%s", err, out)
	}
	h, _ := newHost(t, func(o *pluginhost.Options) { o.SelfExe = mesh })
	for _, info := range pluginhost.Bundled() {
		if info.Kind == sdk.KindRepo {
			continue // needs a dir; covered through testserve
		}
		p, err := h.Load(context.Background(), pluginhost.Spec{Kind: info.Kind, Name: info.Name})
		if err != nil {
			t.Fatalf("%s/%s: %v", info.Kind, info.Name, err)
		}
		if got := p.Info(); got.Name != info.Name || got.Kind != info.Kind || got.Version != info.Version {
			t.Fatalf("info %+v, want %+v", got, info)
		}
	}
}
