package sdk_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A plugin written outside the repository, in a module of its own that
// requires only the sdk module (with a replace pointing at this checkout,
// as the README tells authors to develop), builds, and nothing of the
// engine is compiled into it.
func TestPluginModuleOutsideTheRepository(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module with the go tool")
	}
	sdkDir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/my-health\n\ngo 1.26.8\n\n" +
			"require github.com/mycelium-mesh/mesh/sdk v0.0.0\n\n" +
			"replace github.com/mycelium-mesh/mesh/sdk => " + sdkDir + "\n",
		"main.go": `package main

import (
	"context"

	"github.com/mycelium-mesh/mesh/sdk"
)

type ok struct{}

func (ok) Info() sdk.Info     { return sdk.Info{Kind: sdk.KindHealth, Name: "ok", Version: "1"} }
func (ok) Schema() sdk.Schema { return sdk.Schema{} }
func (ok) Configure(context.Context, sdk.Config) error { return nil }
func (ok) Check(context.Context, sdk.HealthCheck) (sdk.HealthResult, error) {
	return sdk.HealthResult{Healthy: true}, nil
}

func main() { sdk.Serve(ok{}) }
`,
		"main_test.go": `package main

import (
	"testing"

	"github.com/mycelium-mesh/mesh/sdk"
	"github.com/mycelium-mesh/mesh/sdk/plugintest"
)

func TestMain(m *testing.M) { plugintest.Main(m, func() sdk.Plugin { return ok{} }) }

func TestOK(t *testing.T) { plugintest.Run(t).MustConfigure("") }
`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	goTool := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	goTool("mod", "tidy")
	goTool("build", "-o", filepath.Join(dir, "my-health"), ".")
	goTool("test", "-count=1", "./...")
	deps := goTool("list", "-deps", "-test", "./...")
	for _, dep := range strings.Fields(deps) {
		engine := strings.HasPrefix(dep, "github.com/mycelium-mesh/mesh/") && !strings.HasPrefix(dep, "github.com/mycelium-mesh/mesh/sdk")
		if engine || strings.Contains(dep, "etcd") || strings.Contains(dep, "prometheus") || strings.Contains(dep, "bbolt") {
			t.Errorf("the plugin depends on %s", dep)
		}
	}
	mods := goTool("list", "-m", "all")
	if strings.Contains(mods, "github.com/mycelium-mesh/mesh ") || strings.Contains(mods, "etcd") {
		t.Errorf("the plugin's module graph holds the engine:\n%s", mods)
	}
}
