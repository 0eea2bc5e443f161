package plugintest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/mycelium-mesh/mesh/sdk"
	"github.com/mycelium-mesh/mesh/sdk/pluginclient"
)

// envServe marks a test binary re-executed by Launch.
const envServe = "MYCELIUM_PLUGINTEST_SERVE"

// ServeIfLaunched serves the plugin newImpl returns and exits when the
// test binary was started by Launch; otherwise it returns at once. Call it
// first thing in TestMain:
//
//	func TestMain(m *testing.M) {
//		plugintest.ServeIfLaunched(func() sdk.Plugin { return mylb.New() })
//		os.Exit(m.Run())
//	}
func ServeIfLaunched(newPlugin func() sdk.Plugin) {
	implMu.Lock()
	newImpl = newPlugin
	implMu.Unlock()
	if os.Getenv(envServe) != "1" {
		return
	}
	sdk.Serve(newPlugin())
	os.Exit(0)
}

// Launch starts the test binary itself as a plugin subprocess, through the
// same go-plugin handshake, AutoMTLS and gRPC transport the mesh host uses,
// and returns the dispensed client of the given kind. TestMain must call
// ServeIfLaunched. The process is killed when the test ends.
func Launch(t testing.TB, kind string) pluginclient.Remote {
	t.Helper()
	p, _, err := launch(t, kind)
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	return p
}

// LaunchPID is Launch that also returns the plugin's process id.
func LaunchPID(t testing.TB, kind string) (pluginclient.Remote, int) {
	t.Helper()
	p, pid, err := launch(t, kind)
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	return p, pid
}

func launch(t testing.TB, kind string) (pluginclient.Remote, int, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envServe+"=1")
	w := &testWriter{t: t}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  pluginclient.Handshake,
		VersionedPlugins: pluginclient.VersionedPlugins(pluginclient.APIVersions),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		// go-plugin re-logs the plugin's own lines through this logger,
		// so both reach the test log.
		Logger: pluginclient.RelayLogger(hclog.New(&hclog.LoggerOptions{
			Name:   "plugintest",
			Level:  hclog.Debug,
			Output: w,
		})),
	})
	// Cleanups run last-in first-out: the process is gone before the
	// writer stops, and a line that still arrives is dropped rather than
	// logged to a finished test.
	t.Cleanup(w.stop)
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		return nil, 0, fmt.Errorf("start plugin: %w", err)
	}
	raw, err := rpc.Dispense(kind)
	if err != nil {
		return nil, 0, fmt.Errorf("dispense %s: %w", kind, err)
	}
	p, ok := raw.(pluginclient.Remote)
	if !ok {
		return nil, 0, fmt.Errorf("dispensed %T is not a pluginclient.Remote", raw)
	}
	pid := 0
	if rc := client.ReattachConfig(); rc != nil {
		pid = rc.Pid
	}
	return p, pid, nil
}

// testWriter sends the plugin's log lines to the test log until stop.
type testWriter struct {
	mu      sync.Mutex
	t       testing.TB
	stopped bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}
