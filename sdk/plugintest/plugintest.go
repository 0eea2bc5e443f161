// Package plugintest tests a plugin the way the mesh host runs it.
//
// The main tool is Run: it starts the test binary itself as the plugin's
// process through go-plugin (handshake, AutoMTLS, gRPC, as the host does)
// and configures it from an HCL snippet, the inside of the plugin's
// `config { }` block, decoded by the host's own decoder (package
// sdk/hclconfig): schema checks, defaults, nested blocks, and TypePath
// values made absolute against the snippet's directory. Mistakes come back
// as the diagnostics `mesh validate` would print, at their line. The
// plugin's log and go-plugin's reach t.Log.
//
//	func TestMain(m *testing.M) { plugintest.Main(m, func() sdk.Plugin { return &lb{} }) }
//
//	func TestWeights(t *testing.T) {
//		p := plugintest.Run(t)
//		p.MustConfigure(`weights = { "node-1" = 5 }`)
//		pol, err := p.Balancer().Balance(ctx, state)
//		...
//		err = p.Configure(`weights = { "node-1" = -1 }`)
//		// err names mesh.hcl line 1; plugintest.Line(err) == 1
//	}
//
// Start, Health, Balancer and Repo serve an implementation inside the test
// process instead (go-plugin's in-memory gRPC connection), for quick
// tests of the calls themselves; they take an sdk.Config, not HCL.
package plugintest

import (
	"context"
	"testing"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/mycelium-mesh/mesh/sdk"
	"github.com/mycelium-mesh/mesh/sdk/internal/hostapi"
	"github.com/mycelium-mesh/mesh/sdk/pluginclient"
)

// Start serves impl inside the test process and returns the client side,
// the pluginclient.Balancer, Health, Repo or Hosting of impl's kind. The
// connection is closed when the test ends.
func Start(t testing.TB, impl sdk.Plugin) pluginclient.Remote {
	t.Helper()
	ps, err := hostapi.ServerPluginSet(impl)
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	if err := impl.Schema().Validate(); err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	// The client end dispenses pluginclient's clients; the server end
	// serves impl.
	both := plugin.PluginSet{}
	clients := pluginclient.PluginSet()
	for kind, srv := range ps {
		both[kind] = &pair{server: srv.(plugin.GRPCPlugin), client: clients[kind].(plugin.GRPCPlugin)}
	}
	// Closing the client shuts the server down through go-plugin's
	// controller; stopping it here as well would race with that.
	client, _ := plugin.TestPluginGRPCConn(t, false, both)
	t.Cleanup(func() { _ = client.Close() })
	raw, err := client.Dispense(impl.Info().Kind)
	if err != nil {
		t.Fatalf("plugintest: dispense %s: %v", impl.Info().Kind, err)
	}
	p, ok := raw.(pluginclient.Remote)
	if !ok {
		t.Fatalf("plugintest: dispensed %T is not a pluginclient.Remote", raw)
	}
	return p
}

// pair serves with one GRPCPlugin and dispenses with another.
type pair struct {
	plugin.NetRPCUnsupportedPlugin
	server, client plugin.GRPCPlugin
}

func (p *pair) GRPCServer(b *plugin.GRPCBroker, s *grpc.Server) error {
	return p.server.GRPCServer(b, s)
}

func (p *pair) GRPCClient(ctx context.Context, b *plugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return p.client.GRPCClient(ctx, b, cc)
}

// Health serves a health checker and returns its client.
func Health(t testing.TB, impl sdk.HealthChecker) pluginclient.Health {
	t.Helper()
	return Start(t, impl).(pluginclient.Health)
}

// Balancer serves a balancer and returns its client.
func Balancer(t testing.TB, impl sdk.Balancer) pluginclient.Balancer {
	t.Helper()
	c := Start(t, impl).(pluginclient.Balancer)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Repo serves a repo backend and returns its client.
func Repo(t testing.TB, impl sdk.RepoBackend) pluginclient.Repo {
	t.Helper()
	return Start(t, impl).(pluginclient.Repo)
}

// Hosting serves a hosting backend and returns its client.
func Hosting(t testing.TB, impl sdk.HostingBackend) pluginclient.Hosting {
	t.Helper()
	return Start(t, impl).(pluginclient.Hosting)
}
