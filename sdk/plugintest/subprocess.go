package plugintest

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/mycelium-mesh/mesh/sdk"
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
func ServeIfLaunched(newImpl func() sdk.Plugin) {
	if os.Getenv(envServe) != "1" {
		return
	}
	sdk.Serve(newImpl())
	os.Exit(0)
}

// Launch starts the test binary itself as a plugin subprocess, through the
// same go-plugin handshake, AutoMTLS and gRPC transport the mesh host uses,
// and returns the dispensed client of the given kind. TestMain must call
// ServeIfLaunched. The process is killed when the test ends.
func Launch(t testing.TB, kind string) sdk.Plugin {
	t.Helper()
	p, _, err := launch(t, kind)
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	return p
}

// LaunchPID is Launch that also returns the plugin's process id.
func LaunchPID(t testing.TB, kind string) (sdk.Plugin, int) {
	t.Helper()
	p, pid, err := launch(t, kind)
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	return p, pid
}

func launch(t testing.TB, kind string) (sdk.Plugin, int, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envServe+"=1")
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: sdk.VersionedClientPlugins(sdk.SupportedAPIVersions),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:   "plugintest",
			Level:  hclog.Warn,
			Output: testWriter{t},
		}),
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		return nil, 0, fmt.Errorf("start plugin: %w", err)
	}
	raw, err := rpc.Dispense(kind)
	if err != nil {
		return nil, 0, fmt.Errorf("dispense %s: %w", kind, err)
	}
	p, ok := raw.(sdk.Plugin)
	if !ok {
		return nil, 0, fmt.Errorf("dispensed %T is not an sdk.Plugin", raw)
	}
	pid := 0
	if rc := client.ReattachConfig(); rc != nil {
		pid = rc.Pid
	}
	return p, pid, nil
}

// testWriter sends the plugin's log lines to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", p)
	return len(p), nil
}
