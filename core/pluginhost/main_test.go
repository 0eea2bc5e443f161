package pluginhost_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/mycelium-mesh/mesh/core/pluginhost"
	"github.com/mycelium-mesh/mesh/internal/testutil"
	"github.com/mycelium-mesh/mesh/sdk"
)

// Binaries built once for the whole package.
var (
	binDir     string
	serveBin   string // serves bundled plugins like `mesh plugin-serve`
	testPlugin string // external health plugin, see internal/testplugin
	examplePlg string // examples/balancer-plugin
	v1Plugin   string // a plugin of the first protocol release, see internal/v1plugin
)

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		childHost()
		return
	}
	dir, err := os.MkdirTemp("", "pluginhost-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	serveBin = filepath.Join(dir, "mesh-serve")
	testPlugin = filepath.Join(dir, "test-health")
	examplePlg = filepath.Join(dir, "weighted-static")
	v1Plugin = filepath.Join(dir, "old-health")
	builds := [][2]string{
		{serveBin, "./core/pluginhost/internal/testserve"},
		{testPlugin, "./core/pluginhost/internal/testplugin"},
		{examplePlg, "./examples/balancer-plugin"},
		{v1Plugin, "./core/pluginhost/internal/v1plugin"},
	}
	var wg sync.WaitGroup
	errs := make([]error, len(builds))
	for i, b := range builds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command("go", "build", "-o", b[0], b[1])
			cmd.Dir = moduleRoot()
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("go build %s: %v\n%s", b[1], err, out)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type syncBuffer = testutil.SyncBuffer

// newHost returns a host serving bundled plugins from serveBin, closed
// when the test ends, and the buffer its logs go to.
func newHost(t testing.TB, mod func(*pluginhost.Options)) (*pluginhost.Host, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	opts := pluginhost.Options{
		Logger:      hclog.New(&hclog.LoggerOptions{Name: "host", Level: hclog.Debug, Output: logs}),
		SelfExe:     serveBin,
		CallTimeout: 3 * time.Second,
	}
	if mod != nil {
		mod(&opts)
	}
	h, err := pluginhost.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, logs
}

// hclBody parses src as the body of a config block in file mesh.hcl.
func hclBody(t testing.TB, src string) hcl.Body {
	t.Helper()
	f, diags := hclsyntax.ParseConfig([]byte(src), "mesh.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return f.Body
}

// pluginBlock parses a mesh.hcl holding one plugin block and returns its
// spec, the way the config package hands it over.
func pluginBlock(t testing.TB, file, src string) pluginhost.Spec {
	t.Helper()
	f, diags := hclsyntax.ParseConfig([]byte(src), file, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	content, _, diags := f.Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "plugin", LabelNames: []string{"kind", "name"}}}})
	if diags.HasErrors() || len(content.Blocks) != 1 {
		t.Fatalf("want one plugin block: %v", diags)
	}
	b := content.Blocks[0]
	inner, diags := b.Body.Content(&hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "command"}, {Name: "sha256"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "config"}},
	})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	spec := pluginhost.Spec{Kind: b.Labels[0], Name: b.Labels[1], DeclRange: b.DefRange}
	if a, ok := inner.Attributes["command"]; ok {
		v, _ := a.Expr.Value(nil)
		spec.Command = v.AsString()
	}
	if a, ok := inner.Attributes["sha256"]; ok {
		v, _ := a.Expr.Value(nil)
		spec.SHA256 = v.AsString()
	}
	if len(inner.Blocks) == 1 {
		spec.Config = inner.Blocks[0].Body
	}
	return spec
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	return s[i+2] != 'Z'
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Child process for TestHostSIGKILLLeavesNoPlugin: loads plugins, prints
// their pids and waits to be killed.
const childEnv = "PLUGINHOST_TEST_CHILD"

func childHost() {
	h, err := pluginhost.New(pluginhost.Options{SelfExe: os.Getenv("PLUGINHOST_TEST_SELF")})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	ctx := context.Background()
	var pids []string
	specs := []pluginhost.Spec{
		{Kind: sdk.KindHealth, Name: "http"},
		{Kind: sdk.KindBalancer, Name: "round-robin"},
		{Kind: sdk.KindHealth, Name: "external", Command: os.Getenv("PLUGINHOST_TEST_EXTERNAL")},
	}
	for _, s := range specs {
		p, err := h.Load(ctx, s)
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
		pids = append(pids, fmt.Sprint(p.Status().PID))
	}
	fmt.Println("PIDS", strings.Join(pids, " "))
	select {}
}

func startChildHost(t *testing.T) (*exec.Cmd, []int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", "PLUGINHOST_TEST_SELF="+serveBin, "PLUGINHOST_TEST_EXTERNAL="+testPlugin)
	cmd.SysProcAttr = setpgid()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("child host: %v", err)
	}
	fields := strings.Fields(line)
	if len(fields) == 0 || fields[0] != "PIDS" {
		t.Fatalf("child host said %q", line)
	}
	var pids []int
	for _, f := range fields[1:] {
		var pid int
		fmt.Sscan(f, &pid)
		pids = append(pids, pid)
	}
	return cmd, pids
}
