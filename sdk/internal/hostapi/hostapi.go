// Package hostapi carries what the plugin side (package sdk) and the host
// side (package sdk/pluginclient) of the plugin protocol share, so that
// neither has to put it in the API plugin authors read. Package sdk fills
// in the functions when it is initialised.
package hostapi

import (
	"errors"

	"github.com/hashicorp/go-plugin"
)

// Handshake is shared by the host and every plugin. A process started
// without the magic cookie refuses to serve, so running a plugin by hand
// prints a note instead of hanging. ProtocolVersion is the oldest plugin
// API version; go-plugin negotiates the version from the sets both sides
// offer.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "MYCELIUM_PLUGIN",
	MagicCookieValue: "d6c1f0a2-mycelium-mesh-plugin",
}

// APIVersions lists the plugin API versions this sdk implements.
var APIVersions = []uint32{1}

// ErrStreamClosed is returned by a balancer client's Balance when the
// stream to the plugin broke while the call waited for its policy.
var ErrStreamClosed = errors.New("balancer stream closed")

// ErrNotValidated is returned by a client's ValidateConfig when the plugin
// cannot check a configuration without applying it.
var ErrNotValidated = errors.New("the plugin does not check configurations without applying them")

var (
	// ClientPluginSet returns the go-plugin set a host dispenses from.
	ClientPluginSet func() plugin.PluginSet
	// ServerPluginSet returns the go-plugin set that serves impl, an
	// sdk.Plugin.
	ServerPluginSet func(impl any) (plugin.PluginSet, error)
)
