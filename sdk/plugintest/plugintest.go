// Package plugintest serves a plugin implementation over real gRPC inside
// the test process (go-plugin's test connection) and hands back the client
// the host would use, so plugin authors can unit-test their plugin through
// the same encoding, streams and error mapping as in production.
//
//	func TestCheck(t *testing.T) {
//		hc := plugintest.Health(t, myhealth.New())
//		if err := hc.Configure(ctx, sdk.Config{"path": "/ready"}); err != nil { ... }
//		res, err := hc.Check(ctx, sdk.HealthCheck{URL: srv.URL, Timeout: time.Second})
//	}
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
