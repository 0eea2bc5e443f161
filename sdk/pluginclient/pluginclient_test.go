package pluginclient_test

import (
	"testing"

	"github.com/mycelium-mesh/mesh/sdk"
	"github.com/mycelium-mesh/mesh/sdk/pluginclient"
)

// Every kind the sdk serves has a client, and the version map offers the
// same set under each version.
func TestPluginSet(t *testing.T) {
	set := pluginclient.PluginSet()
	for _, kind := range []string{sdk.KindRepo, sdk.KindBalancer, sdk.KindHealth, sdk.KindHosting} {
		if set[kind] == nil {
			t.Errorf("no client for kind %q", kind)
		}
	}
	vs := pluginclient.VersionedPlugins([]uint32{1, 2})
	if len(vs) != 2 || len(vs[1]) != len(set) || len(vs[2]) != len(set) {
		t.Fatalf("versioned plugins %v", vs)
	}
	if pluginclient.Handshake.MagicCookieKey == "" || len(pluginclient.APIVersions) == 0 || pluginclient.APIVersions[0] != sdk.APIVersion {
		t.Fatalf("handshake %+v versions %v", pluginclient.Handshake, pluginclient.APIVersions)
	}
}
