package sdk_test

import (
	"archive/zip"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A plugin written outside the repository, in a module of its own that
// requires only the sdk module, builds and passes its harness tests, and
// nothing of the engine is compiled into it: in the released layout (the
// sdk fetched as a tagged version from a module proxy, no replace) and in
// the layout the README gives for developing against a checkout (a
// replace pointing at it).
func TestPluginModuleOutsideTheRepository(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module with the go tool")
	}
	sdkDir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	// A version of its own per run, which no tag will ever have: the go
	// tool never re-reads a version it has in its module cache, and the
	// cache must not keep a made-up release (removed again at the end).
	released := fmt.Sprintf("v0.0.0-layouttest.%d", time.Now().UnixNano())
	proxy := modProxy(t, sdkDir, released)
	t.Cleanup(func() { dropFromModCache(t, "github.com/mycelium-mesh/mesh/sdk", released) })
	for _, tc := range []struct {
		name   string
		gomod  string
		env    []string
		sdkVer string // what go list -m says of the sdk
	}{
		{"released layout, no replace",
			"require github.com/mycelium-mesh/mesh/sdk " + released + "\n",
			// The sdk comes from the file proxy, everything else from
			// the usual one; the test version is in no checksum database.
			[]string{"GOPROXY=file://" + proxy + "," + goEnv(t, "GOPROXY"), "GONOSUMDB=github.com/mycelium-mesh/mesh/sdk"},
			"github.com/mycelium-mesh/mesh/sdk " + released},
		{"checkout layout, replace",
			"require github.com/mycelium-mesh/mesh/sdk v0.0.0\n\nreplace github.com/mycelium-mesh/mesh/sdk => " + sdkDir + "\n",
			nil,
			"github.com/mycelium-mesh/mesh/sdk v0.0.0 => " + sdkDir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{
				"go.mod":       "module example.com/my-health\n\ngo 1.26.8\n\n" + tc.gomod,
				"main.go":      outsideMain,
				"main_test.go": outsideTest,
			})
			goTool := func(args ...string) string {
				t.Helper()
				cmd := exec.Command("go", args...)
				cmd.Dir = dir
				cmd.Env = append(os.Environ(), append([]string{"GOFLAGS=-mod=mod", "GOWORK=off"}, tc.env...)...)
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
				}
				return string(out)
			}
			goTool("mod", "tidy")
			if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err != nil {
				t.Fatal(err)
			} else if tc.env != nil && strings.Contains(string(b), "replace") {
				t.Fatalf("go.mod of the released layout has a replace:\n%s", b)
			}
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
			if !strings.Contains(mods, tc.sdkVer+"\n") {
				t.Errorf("the sdk is not %q in the module graph:\n%s", tc.sdkVer, mods)
			}
		})
	}
}

const outsideMain = `package main

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
`

const outsideTest = `package main

import (
	"testing"

	"github.com/mycelium-mesh/mesh/sdk"
	"github.com/mycelium-mesh/mesh/sdk/plugintest"
)

func TestMain(m *testing.M) { plugintest.Main(m, func() sdk.Plugin { return ok{} }) }

func TestOK(t *testing.T) { plugintest.Run(t).MustConfigure("") }
`

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func goEnv(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", name, err)
	}
	return strings.TrimSpace(string(out))
}

// modProxy lays the sdk module out at version as a file-based module
// proxy serves it (list, .info, .mod and the .zip of its files under
// module@version/), the way a tag of the repository reaches authors, and
// returns the proxy's directory.
func modProxy(t *testing.T, sdkDir, version string) string {
	t.Helper()
	const mod = "github.com/mycelium-mesh/mesh/sdk"
	root := t.TempDir()
	at := filepath.Join(root, filepath.FromSlash(mod), "@v")
	if err := os.MkdirAll(at, 0o755); err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(sdkDir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, at, map[string]string{
		"list":            version + "\n",
		version + ".info": `{"Version":"` + version + `","Time":"2026-01-01T00:00:00Z"}`,
		version + ".mod":  string(gomod),
	})
	f, err := os.Create(filepath.Join(at, version+".zip"))
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	err = filepath.WalkDir(sdkDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(sdkDir, path)
		if err != nil {
			return err
		}
		w, err := zw.Create(mod + "@" + version + "/" + filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	})
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("zip the sdk module: %v", err)
	}
	return root
}

// dropFromModCache removes one version of a module from the go tool's
// module cache, whose files and directories are read-only.
func dropFromModCache(t *testing.T, mod, version string) {
	cache := goEnv(t, "GOMODCACHE")
	for _, p := range []string{
		filepath.Join(cache, filepath.FromSlash(mod)+"@"+version),
		filepath.Join(cache, "cache", "download", filepath.FromSlash(mod), "@v", version+".info"),
		filepath.Join(cache, "cache", "download", filepath.FromSlash(mod), "@v", version+".mod"),
		filepath.Join(cache, "cache", "download", filepath.FromSlash(mod), "@v", version+".zip"),
		filepath.Join(cache, "cache", "download", filepath.FromSlash(mod), "@v", version+".ziphash"),
		filepath.Join(cache, "cache", "download", filepath.FromSlash(mod), "@v", version+".lock"),
	} {
		_ = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(path, 0o755)
			}
			return nil
		})
		if err := os.RemoveAll(p); err != nil {
			t.Errorf("remove %s from the module cache: %v", p, err)
		}
	}
	// The cached version list names it too.
	list := filepath.Join(cache, "cache", "download", filepath.FromSlash(mod), "@v", "list")
	b, err := os.ReadFile(list)
	if err != nil {
		return
	}
	var kept []string
	for _, v := range strings.Fields(string(b)) {
		if v != version {
			kept = append(kept, v)
		}
	}
	if len(kept) == 0 {
		err = os.Remove(list)
	} else {
		err = os.WriteFile(list, []byte(strings.Join(kept, "\n")+"\n"), 0o644)
	}
	if err != nil {
		t.Errorf("drop %s from %s: %v", version, list, err)
	}
}
