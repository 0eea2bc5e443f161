package pluginreg_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The engine imports no plugin: the binary registers them. go list walks
// the real import graph of the packages that once imported plugins/*
// and of the engine around them (their non-test code).
func TestEngineImportsNoPlugin(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	for _, pkg := range []string{"../config", "../pluginhost", "../mesh", "../edge"} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, "github.com/mycelium-mesh/mesh/plugins") {
				t.Errorf("%s depends on %s", pkg, dep)
			}
		}
	}
}
