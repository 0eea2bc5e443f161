package sdk

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/mycelium-mesh/mesh/sdk/internal/hostapi"
)

var (
	loggerMu sync.Mutex
	logger   hclog.Logger
)

// useDeathSignal turns the kernel hook of watchParent on; tests turn it
// off to exercise the poller alone.
var useDeathSignal = true

// Logger returns the plugin's logger. It writes JSON lines to stderr, which
// the host reads and re-logs under the plugin's name. Plugins must never
// write to stdout: before Serve it carries the handshake.
func Logger() hclog.Logger {
	loggerMu.Lock()
	defer loggerMu.Unlock()
	if logger == nil {
		logger = newLogger("plugin")
	}
	return logger
}

func newLogger(name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Level:      hclog.Trace, // the host filters by its own level
		Output:     os.Stderr,
		JSONFormat: true,
	})
}

// Serve serves impl as a plugin of the kind impl.Info() declares, over gRPC,
// until the host tells it to stop or goes away. A plugin's main calls it
// and nothing else:
//
//	func main() { sdk.Serve(mylb.New()) }
//
// Serve exits the process with status 1 if impl cannot be served. It also
// watches the parent process: when the host dies, even by SIGKILL, the
// plugin exits within a fraction of a second.
func Serve(impl Plugin) {
	if err := serve(impl); err != nil {
		fmt.Fprintln(os.Stderr, err) // serve's errors name the plugin
		os.Exit(1)
	}
}

func serve(impl Plugin) error {
	info := impl.Info()
	if err := impl.Schema().Validate(); err != nil {
		return fmt.Errorf("plugin %q: %w", info.Name, err)
	}
	ps, err := serverPluginSet(impl)
	if err != nil {
		return err
	}
	versions := map[int]plugin.PluginSet{}
	want := info.APIVersions
	if len(want) == 0 {
		want = supportedAPIVersions
	}
	for _, v := range want {
		for _, s := range supportedAPIVersions {
			if v == s {
				versions[int(v)] = ps
			}
		}
	}
	if len(versions) == 0 {
		return fmt.Errorf("plugin %q: none of its API versions %v is implemented by this sdk (%v)", info.Name, want, supportedAPIVersions)
	}

	loggerMu.Lock()
	logger = newLogger(info.Name)
	l := logger
	loggerMu.Unlock()

	// Only watch the parent when a host launched us; run by hand, go-plugin
	// prints its note about the missing cookie and exits.
	if os.Getenv(hostapi.Handshake.MagicCookieKey) == hostapi.Handshake.MagicCookieValue {
		watchParent(l, 200*time.Millisecond)
	}

	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  hostapi.Handshake,
		VersionedPlugins: versions,
		GRPCServer:       plugin.DefaultGRPCServer,
		Logger:           l,
	})
	return nil
}

// watchParent makes the process exit when its parent goes away. On Linux
// the kernel is asked to deliver SIGKILL at once; on every platform a
// poller notices the change of parent within interval.
func watchParent(l hclog.Logger, interval time.Duration) {
	ppid := os.Getppid()
	if useDeathSignal {
		setParentDeathSignal()
	}
	if os.Getppid() != ppid {
		// The parent died before the kernel hook was in place.
		l.Error("parent process is gone; exiting")
		os.Exit(1)
	}
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for range t.C {
			if os.Getppid() != ppid {
				l.Error("parent process is gone; exiting", "parent", ppid)
				os.Exit(1)
			}
		}
	}()
}
