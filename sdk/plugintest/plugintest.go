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
	"testing"

	"github.com/hashicorp/go-plugin"

	"github.com/mycelium-mesh/mesh/sdk"
)

// Start serves impl and returns the client side: a *sdk.HealthClient,
// *sdk.BalancerClient or *sdk.RepoClient depending on impl's kind. The
// connection is closed when the test ends.
func Start(t testing.TB, impl sdk.Plugin) sdk.Plugin {
	t.Helper()
	ps, err := sdk.ServerPluginSet(impl)
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	if err := impl.Schema().Validate(); err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	// Closing the client shuts the server down through go-plugin's
	// controller; stopping it here as well would race with that.
	client, _ := plugin.TestPluginGRPCConn(t, false, ps)
	t.Cleanup(func() { _ = client.Close() })
	raw, err := client.Dispense(impl.Info().Kind)
	if err != nil {
		t.Fatalf("plugintest: dispense %s: %v", impl.Info().Kind, err)
	}
	p, ok := raw.(sdk.Plugin)
	if !ok {
		t.Fatalf("plugintest: dispensed %T is not an sdk.Plugin", raw)
	}
	return p
}

// Health serves a health checker and returns its client.
func Health(t testing.TB, impl sdk.HealthChecker) *sdk.HealthClient {
	t.Helper()
	return Start(t, impl).(*sdk.HealthClient)
}

// Balancer serves a balancer and returns its client.
func Balancer(t testing.TB, impl sdk.Balancer) *sdk.BalancerClient {
	t.Helper()
	c := Start(t, impl).(*sdk.BalancerClient)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Repo serves a repo backend and returns its client.
func Repo(t testing.TB, impl sdk.RepoBackend) *sdk.RepoClient {
	t.Helper()
	return Start(t, impl).(*sdk.RepoClient)
}
