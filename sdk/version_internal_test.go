package sdk

import (
	"slices"
	"testing"

	"github.com/mycelium-mesh/mesh/sdk/internal/hostapi"
)

// The version plugin authors write in Info is one the sdk serves and the
// handshake announces.
func TestAPIVersionIsServed(t *testing.T) {
	if !slices.Contains(supportedAPIVersions, APIVersion) || hostapi.Handshake.ProtocolVersion != APIVersion {
		t.Fatalf("APIVersion %d, served %v, handshake %d", APIVersion, supportedAPIVersions, hostapi.Handshake.ProtocolVersion)
	}
}
